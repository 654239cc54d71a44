"""Core commands: init, doctor, db upgrade, keys rotate, demo."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from carecollect.cli.common import DataDirOption, OrganizationOption, open_context
from carecollect.cli.output import console, emit, emit_json
from carecollect.config import Settings, load_settings
from carecollect.errors import BadInput, ConfigurationError


def import_all_models() -> None:
    """Load every model so metadata-driven work (rotation) sees every table."""
    import carecollect.all_models  # noqa: F401


db_app = typer.Typer(name="db", help="Database schema.", no_args_is_help=True)
keys_app = typer.Typer(name="keys", help="Key management.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.command("init")(init)
    app.command("doctor")(doctor)
    app.command("demo")(demo)
    app.add_typer(db_app)
    app.add_typer(keys_app)


def _ensure_private_dir(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o700)


def is_initialized(settings: Settings) -> bool:
    """Whether the configured database already holds an organization."""
    from sqlalchemy import inspect, select

    from carecollect.db import Database
    from carecollect.tenant.models import Organization

    if settings.database_url is None and not (settings.data_dir / "carecollect.db").exists():
        return False
    db = Database.from_settings(settings)
    try:
        db.check_connection()
        if "organization" not in inspect(db.engine).get_table_names():
            return False
        with db.system_session() as session:
            return session.scalar(select(Organization.id).limit(1)) is not None
    finally:
        db.dispose()


def initialize(
    data_dir: Path | None,
    *,
    organization_slug: str,
    organization_name: str,
    display_name: str,
    license_state: str,
    entity_kind: str,
    timezone: str,
    admin_email: str | None = None,
    operated_by_covered_entity: bool = False,
) -> dict[str, str]:
    """Create the data directory, key material, schema, first organization and its first
    administrator (a one-time password; two-factor set-up at the first sign-in)."""
    from carecollect.audit import Actor
    from carecollect.audit.keys import create_signing_key
    from carecollect.identity.service import provision_admin
    from carecollect.kit.crypto.keyring import create_local_keyring
    from carecollect.migrations.runner import upgrade
    from carecollect.tenant.service import create_organization

    ctx = open_context(data_dir, must_exist=False)
    settings = ctx.settings
    if is_initialized(settings):
        raise ConfigurationError(f"data directory {settings.data_dir} is already initialized")
    _ensure_private_dir(settings.data_dir)
    _ensure_private_dir(settings.resolved_keyring_path.parent)
    if settings.key_provider == "local" and not settings.resolved_keyring_path.exists():
        create_local_keyring(settings.resolved_keyring_path)
    signing_path = settings.resolved_audit_signing_key_path
    if not signing_path.exists():
        create_signing_key(signing_path)
    _ensure_private_dir(settings.resolved_checkpoint_dir)
    try:
        ctx.db.check_connection()
        upgrade(ctx.db.engine, app_role=settings.database_app_role)
        with ctx.db.system_session() as session:
            org = create_organization(
                session,
                keys=ctx.keys,
                actor=Actor.system("init"),
                slug=organization_slug,
                legal_name=organization_name,
                billing_display_name=display_name,
                provider_license_state=license_state,
                entity_kind=entity_kind,
                timezone=timezone,
                operated_by_covered_entity=operated_by_covered_entity,
                planned_patients=settings.planned_patients,
            )
            org_id = str(org.id)
            admin, password = provision_admin(
                session,
                actor=Actor.system("init"),
                organization_id=org.id,
                email=admin_email or f"admin@{organization_slug}.example",
            )
            email = admin.email
    finally:
        ctx.close()
    return {
        "data_dir": str(settings.data_dir),
        "organization_id": org_id,
        "organization": organization_slug,
        "admin_email": email,
        "admin_password": password,
    }


def init(
    data_dir: DataDirOption = None,
    organization: Annotated[str, typer.Option(help="Slug of the first organization.")] = "practice",
    name: Annotated[str, typer.Option(help="Legal name of the practice.")] = "My Practice",
    display_name: Annotated[
        str | None, typer.Option(help="Neutral billing display name (default: the name).")
    ] = None,
    license_state: Annotated[str, typer.Option(help="Provider license state.")] = "MA",
    entity_kind: Annotated[str, typer.Option(help="dental_practice, physician_group, ...")] = (
        "dental_practice"
    ),
    timezone: Annotated[str, typer.Option(help="The practice's IANA time zone.")] = (
        "America/New_York"
    ),
    admin_email: Annotated[
        str | None, typer.Option(help="E-mail of the first administrator.")
    ] = None,
    operated_by_covered_entity: Annotated[
        bool,
        typer.Option(
            "--operated-by-covered-entity",
            help="The practice itself operates this deployment, so no hosting BAA is needed "
            "before PHI is accepted (otherwise record the operator's BAA first).",
        ),
    ] = False,
    json_output: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Create the data directory, key material, database, first organization and admin."""
    result = initialize(
        data_dir,
        organization_slug=organization,
        organization_name=name,
        display_name=display_name or name,
        license_state=license_state,
        entity_kind=entity_kind,
        timezone=timezone,
        admin_email=admin_email,
        operated_by_covered_entity=operated_by_covered_entity,
    )
    if json_output:
        emit_json(result)
    else:
        emit(f"initialized {result['data_dir']} (organization {result['organization']})")
        _emit_admin_login(result["admin_email"], result["admin_password"])


def _emit_admin_login(email: str, password: str) -> None:
    emit(f"administrator: {email}")
    emit(f"one-time password: {password}  (shown once; set up two-factor sign-in at first login)")


def doctor(
    data_dir: DataDirOption = None,
    json_output: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Check configuration, keys, database and audit key; warn about unsafe production settings."""
    from carecollect.doctor import run_checks

    ctx = open_context(data_dir, must_exist=False)
    try:
        checks = run_checks(ctx)
    finally:
        ctx.close()
    failed = [c for c in checks if c.status == "fail"]
    if json_output:
        emit_json([c.__dict__ for c in checks])
    else:
        for check in checks:
            colour = {"ok": "green", "warn": "yellow", "fail": "red"}[check.status]
            console.print(f"[{colour}]{check.status:>4}[/{colour}]  {check.name}: {check.detail}")
    if failed:
        raise typer.Exit(1)


@db_app.command("upgrade")
def db_upgrade(data_dir: DataDirOption = None) -> None:
    """Apply pending migrations."""
    from carecollect.migrations.runner import current_revision, upgrade

    ctx = open_context(data_dir)
    try:
        ctx.db.check_connection()
        upgrade(ctx.db.engine, app_role=ctx.settings.database_app_role)
        emit(f"database at revision {current_revision(ctx.db.engine)}")
    finally:
        ctx.close()


@keys_app.command("rotate")
def keys_rotate(
    data_dir: DataDirOption = None,
    organization: OrganizationOption = None,
    kek: Annotated[
        bool, typer.Option("--kek", help="Rotate the key-encryption key (re-wraps data keys only).")
    ] = False,
    batch_size: Annotated[int, typer.Option(min=1, max=100_000)] = 1000,
) -> None:
    """Rotate data keys and re-encrypt in resumable batches (or the KEK with --kek)."""
    from carecollect.audit import Actor, Subject, record
    from carecollect.kit.crypto.keyring import rotate_local_keyring
    from carecollect.kit.crypto.rotation import rotate_organization_key

    import_all_models()
    ctx = open_context(data_dir)
    try:
        ctx.db.check_connection()
        if kek:
            if ctx.settings.key_provider != "local":
                raise BadInput("--kek rotates the local keyring; rotate other KEKs in their KMS")
            new_id = rotate_local_keyring(ctx.settings.resolved_keyring_path)
            ctx._keys = None  # reload the provider with the new current KEK
            with ctx.db.system_session() as session:
                count = ctx.keys.rewrap_all(session)
                record(
                    session,
                    actor=Actor.system("keys.rotate"),
                    action="key.rotate",
                    details={"scope": "kek", "kek_id": new_id, "count": count},
                )
            emit(f"rotated the key-encryption key; re-wrapped {count} data keys")
            return
        org_id = ctx.resolve_organization(organization)
        wait = ctx.settings.key_cache_ttl_seconds
        emit(
            "re-encrypting in batches; afterwards the old key is kept until every process's "
            f"key cache has expired (up to {wait} s), then retired"
        )
        with console.status("re-encrypting") as status:
            report = rotate_organization_key(
                ctx.db,
                org_id,
                keys=ctx.keys,
                batch_size=batch_size,
                progress=lambda done: status.update(f"re-encrypted {done} values"),
            )
        with ctx.db.system_session() as session:
            record(
                session,
                actor=Actor.system("keys.rotate"),
                action="key.rotate",
                subject=Subject("organization", org_id, organization_id=org_id),
                details={"scope": "data_key", "count": report.reencrypted},
            )
        emit(f"rotated data key; re-encrypted {report.reencrypted} values")
    finally:
        ctx.close()


@keys_app.command("shred")
def keys_shred(
    data_dir: DataDirOption = None,
    organization: OrganizationOption = None,
    confirm: Annotated[
        str | None,
        typer.Option("--confirm", help="Repeat the organization's slug to confirm."),
    ] = None,
) -> None:
    """Crypto-shred an organization: delete its data keys so its PHI can never be read."""
    from carecollect.audit import Actor, Subject, record
    from carecollect.kit.crypto.rotation import shred_organization
    from carecollect.tenant.service import get_organization

    ctx = open_context(data_dir)
    try:
        org_id = ctx.resolve_organization(organization)
        with ctx.db.system_session() as session:
            org = get_organization(session, str(org_id))
            if confirm != org.slug:
                raise BadInput("shredding is irreversible: pass --confirm with the slug")
            count = shred_organization(session, org_id, key_manager=ctx.keys)
            org.state = "shredded"
            record(
                session,
                actor=Actor.system("keys.shred"),
                action="key.shred",
                subject=Subject("organization", org_id, organization_id=org_id),
                details={"count": count},
            )
        emit(f"shredded {count} data keys; the organization's PHI is now unrecoverable")
    finally:
        ctx.close()


def demo(
    data_dir: DataDirOption = None,
    patients: Annotated[int, typer.Option(min=1, max=2_000_000)] = 200,
    seed: Annotated[int, typer.Option()] = 7,
    no_serve: Annotated[
        bool, typer.Option("--no-serve", help="Build the practice and exit.")
    ] = False,
) -> None:
    """Init + a realistic synthetic practice (synthetic people only)."""
    from carecollect.demo import build_demo

    target = data_dir or Path(os.environ.get("CARECOLLECT_DATA_DIR", "carecollect-data"))
    if not is_initialized(load_settings(data_dir=target)):
        initialize(
            target,
            organization_slug="demo-dental",
            organization_name="Riverside Family Dental",
            display_name="Riverside Billing Office",
            license_state="MA",
            entity_kind="dental_practice",
            timezone="America/New_York",
            # A demo runs on the practice's own machine: no hosting vendor holds PHI.
            operated_by_covered_entity=True,
        )
    summary = build_demo(target, patients=patients, seed=seed)
    for line in summary.lines():
        emit(line)
    if no_serve:
        return
    from carecollect.audit import Actor
    from carecollect.cli.serve import serve
    from carecollect.identity.service import provision_admin
    from carecollect.tenant.service import only_organization

    ctx = open_context(target)
    try:
        with ctx.db.system_session() as session:
            org = only_organization(session)
            admin, password = provision_admin(
                session,
                actor=Actor.system("demo"),
                organization_id=org.id,
                email=f"admin@{org.slug}.example",
            )
            email = admin.email
    finally:
        ctx.close()
    _emit_admin_login(email, password)
    serve(data_dir=target)
