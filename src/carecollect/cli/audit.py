"""`carecollect audit`: integrate, verify, prove, check-proof and export the audit trail."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from carecollect.cli.common import DataDirOption, open_context
from carecollect.cli.output import emit, emit_json, fail
from carecollect.errors import BadInput

audit_app = typer.Typer(name="audit", help="The tamper-evident audit trail.", no_args_is_help=True)

PublicKeyOption = Annotated[
    Path | None,
    typer.Option("--public-key", help="Verify with this public key file instead of the "
                 "data directory's key.", show_default=False),
]


def _parse_instant(value: str | None, name: str) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise BadInput(f"{name} must be an ISO 8601 date or instant") from None
    if parsed.tzinfo is None:
        # A bare date or local time means UTC: the audit trail is kept in UTC.
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


@audit_app.command("integrate")
def integrate_command(
    data_dir: DataDirOption = None,
    json_output: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Sequence, hash and sign pending events (the worker does this continuously)."""
    from carecollect.audit.integrator import integrate
    from carecollect.audit.keys import load_signer

    ctx = open_context(data_dir)
    try:
        signer = load_signer(ctx.settings.resolved_audit_signing_key_path)
        result = integrate(ctx.db.engine, signer=signer,
                           checkpoint_dir=ctx.settings.resolved_checkpoint_dir)
    finally:
        ctx.close()
    summary = {"integrated": result.integrated, "tree_size": result.tree_size,
               "skipped": result.skipped}
    if json_output:
        emit_json(summary)
    elif result.skipped:
        emit("another integrator is running; nothing done")
    else:
        emit(f"integrated {result.integrated} events; log size {result.tree_size}")


@audit_app.command("verify")
def verify_command(
    data_dir: DataDirOption = None,
    json_output: Annotated[bool, typer.Option("--json")] = False,
    public_key: PublicKeyOption = None,
) -> None:
    """Recompute and check the whole log; exit 0 only when everything holds."""
    from carecollect.audit.keys import default_verifier, load_verifier
    from carecollect.audit.verification import verify_database

    ctx = open_context(data_dir)
    try:
        verifier = (load_verifier(public_key) if public_key is not None
                    else default_verifier(ctx.settings.resolved_audit_signing_key_path))
        report = verify_database(ctx.db.engine, verifier=verifier,
                                 checkpoint_dir=ctx.settings.resolved_checkpoint_dir)
    finally:
        ctx.close()
    if json_output:
        emit_json(report.as_dict())
    elif report.ok:
        emit(f"audit trail intact: {report.tree_size} entries, "
             f"{report.checkpoints_checked} signed checkpoints verified")
    else:
        first = report.sorted_problems()[0]
        where = "" if first.seq is None else f"sequence number {first.seq}: "
        emit(f"audit trail NOT intact: {where}{first.message}")
        for problem in report.sorted_problems()[1:]:
            emit(f"  also: {problem.message}")
    if not report.ok:
        raise typer.Exit(1)


@audit_app.command("prove")
def prove_command(
    seq: Annotated[int, typer.Argument(help="Sequence number of the event.")],
    data_dir: DataDirOption = None,
    output: Annotated[Path | None, typer.Option("--output", "-o")] = None,
) -> None:
    """Write an inclusion proof of one event (to stdout or --output)."""
    from carecollect.audit.keys import default_verifier
    from carecollect.audit.verification import prove

    ctx = open_context(data_dir)
    try:
        verifier = default_verifier(ctx.settings.resolved_audit_signing_key_path)
        document = prove(ctx.db.engine, seq, verifier=verifier)
    finally:
        ctx.close()
    text = json.dumps(document, indent=2, sort_keys=True) + "\n"
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text, encoding="utf-8")
        emit(f"wrote inclusion proof of sequence number {seq} to {output}")


@audit_app.command("check-proof")
def check_proof_command(
    file: Annotated[Path, typer.Argument(help="An inclusion proof from `audit prove`.")],
    public_key: PublicKeyOption = None,
    json_output: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Verify an inclusion proof offline, with nothing but the file (and optionally a
    public key you already trust)."""
    from carecollect.audit.keys import load_verifier
    from carecollect.audit.verification import check_proof
    from carecollect.kit.audit.checkpoint import CheckpointError
    from carecollect.kit.audit.merkle import ProofError

    try:
        document = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BadInput(f"proof file {file} does not exist") from None
    except (OSError, UnicodeDecodeError, ValueError):
        raise BadInput(f"proof file {file} is not JSON") from None
    trusted = load_verifier(public_key) if public_key is not None else None
    try:
        checked = check_proof(document, expected_key=trusted)
    except (ProofError, CheckpointError) as exc:
        fail(f"proof does not verify: {exc}")
        raise typer.Exit(1) from None
    if json_output:
        emit_json({"ok": True, "seq": checked.seq, "tree_size": checked.tree_size,
                   "origin": checked.origin})
    else:
        emit(f"proof verifies: event {checked.seq} is in the log {checked.origin} "
             f"of {checked.tree_size} entries")


@audit_app.command("export")
def export_command(
    data_dir: DataDirOption = None,
    fmt: Annotated[str, typer.Option("--format", help="jsonl or fhir")] = "jsonl",
    since: Annotated[str | None, typer.Option("--since", help="ISO date or instant")] = None,
    until: Annotated[str | None, typer.Option("--until", help="ISO date or instant")] = None,
    organization: Annotated[str | None, typer.Option("--organization")] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o")] = None,
) -> None:
    """Export sequenced events as JSON lines or FHIR R4 AuditEvent resources (one JSON
    object per line)."""
    from carecollect.audit import Actor, Subject, record
    from carecollect.audit.export import export_events

    if fmt not in ("jsonl", "fhir"):
        raise BadInput("--format must be jsonl or fhir")
    start, end = _parse_instant(since, "--since"), _parse_instant(until, "--until")
    ctx = open_context(data_dir)
    try:
        org_id = ctx.resolve_organization(organization) if organization else None
        handle = open(output, "w", encoding="utf-8") if output else sys.stdout  # noqa: SIM115
        count = 0
        try:
            with ctx.db.system_session() as session:
                for item in export_events(session, fmt=fmt, since=start, until=end,
                                          organization_id=org_id):
                    handle.write(json.dumps(item, sort_keys=True, separators=(",", ":")) + "\n")
                    count += 1
        finally:
            if output:
                handle.close()
        # Exporting the trail is itself an audited disclosure (HIPAA 164.312(b)).
        with ctx.db.system_session() as session:
            subject = None if org_id is None else Subject(
                "organization", org_id, organization_id=org_id)
            record(session, actor=Actor.system("cli"), action="audit.export",
                   subject=subject, details={"format": fmt, "count": count})
    finally:
        ctx.close()
    if output:
        emit(f"exported {count} events to {output}")


def register(app: typer.Typer) -> None:
    app.add_typer(audit_app)
