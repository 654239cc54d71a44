"""`carecollect doctor`: configuration, key, database and production-safety checks."""

from __future__ import annotations

import stat
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from sqlalchemy import select

from carecollect.errors import AppError

if TYPE_CHECKING:
    from carecollect.cli.common import Context


@dataclass
class Check:
    name: str
    status: Literal["ok", "warn", "fail"]
    detail: str


def run_checks(ctx: Context) -> list[Check]:
    from carecollect.kit.crypto.keyring import load_key_provider
    from carecollect.migrations.runner import current_revision, head_revision
    from carecollect.tenant.models import Organization

    settings = ctx.settings
    checks: list[Check] = []
    if settings.database_url is None and not settings.data_dir.is_dir():
        checks.append(Check("data directory", "fail", f"{settings.data_dir} does not exist"))
        return checks
    checks.append(Check("data directory", "ok", str(settings.data_dir)))

    try:
        load_key_provider(settings)
        checks.append(Check("key provider", "ok", settings.key_provider))
    except AppError as exc:
        checks.append(Check("key provider", "fail", exc.message))
    if settings.key_provider == "local" and settings.resolved_keyring_path.exists():
        mode = stat.S_IMODE(settings.resolved_keyring_path.stat().st_mode)
        status: Literal["ok", "warn", "fail"] = "ok" if mode & 0o077 == 0 else "fail"
        checks.append(Check("keyring permissions", status, oct(mode)))

    signing = settings.resolved_audit_signing_key_path
    checks.append(
        Check(
            "audit signing key",
            "ok" if signing.exists() else "fail",
            "present" if signing.exists() else f"missing at {signing}",
        )
    )

    try:
        ctx.db.check_connection()
        revision = current_revision(ctx.db.engine)
        head = head_revision()
        checks.append(
            Check(
                "database schema",
                "ok" if revision == head else "fail",
                f"revision {revision} (head {head})",
            )
        )
    except AppError as exc:
        checks.append(Check("database", "fail", exc.message))
        return checks

    try:
        with ctx.db.system_session() as session:
            org_ids = list(session.scalars(select(Organization.id)))
            for org_id in org_ids:
                ctx.keys.for_organization(session, org_id)
        checks.append(Check("data keys", "ok", f"{len(org_ids)} organization(s) unwrap"))
    except AppError as exc:
        checks.append(Check("data keys", "fail", exc.message))

    problems = settings.production_problems()
    if problems:
        level: Literal["warn", "fail"] = "fail" if settings.environment == "production" else "warn"
        checks.extend(Check("production safety", level, problem) for problem in problems)
    else:
        checks.append(Check("production safety", "ok", "no insecure settings"))
    return checks
