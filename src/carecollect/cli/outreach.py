"""`carecollect outreach`: the planner (and its dry-run simulator), default cadences and
the consent evidence export.

    carecollect outreach plan [--at ISO] [--dry-run] [--json] [--csv FILE] [--limit N]
    carecollect outreach cadences install-defaults
    carecollect outreach evidence GUARANTOR_ID --out DIR [--format json|pdf|both]

The plan table and files carry ids, channels, times and rule ids, never PHI.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from pathlib import Path
from typing import Annotated

import typer

from carecollect.cli.common import DataDirOption, OrganizationOption, open_context
from carecollect.cli.output import console, emit, emit_json
from carecollect.errors import BadInput

app = typer.Typer(name="outreach", help="Outreach planning, cadences and consent evidence.",
                  no_args_is_help=True)
cadences_app = typer.Typer(name="cadences", help="Cadences (campaigns).",
                           no_args_is_help=True)
app.add_typer(cadences_app)


def _parse_at(value: str | None) -> dt.datetime:
    if value is None:
        return dt.datetime.now(dt.UTC)
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        raise BadInput("--at must be an ISO-8601 instant, e.g. 2026-05-04T02:00:00-04:00")\
            from None
    if parsed.tzinfo is None:
        raise BadInput("--at needs a UTC offset (naive times are ambiguous)")
    return parsed.astimezone(dt.UTC)


@app.command("plan")
def plan(
    at: Annotated[str | None, typer.Option("--at", help="Plan as of this ISO instant.")]
    = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Simulate; write nothing.")]
    = False,
    as_json: Annotated[bool, typer.Option("--json", help="Every decision as JSON.")] = False,
    csv_file: Annotated[Path | None, typer.Option("--csv", help="Write every decision here.")]
    = None,
    limit: Annotated[int, typer.Option("--limit", help="Rows shown in the table.")] = 50,
    data_dir: DataDirOption = None,
    organization: OrganizationOption = None,
) -> None:
    """Plan tonight's outreach: for each account due a step, send, re-time or block."""
    from carecollect.outreach.planner import plan_and_persist

    when = _parse_at(at)
    ctx = open_context(data_dir)
    try:
        org_id = ctx.resolve_organization(organization)
        with ctx.db.tenant_session(org_id) as session:
            result, counts = plan_and_persist(session, organization_id=org_id, at=when,
                                              dry_run=dry_run)
    finally:
        ctx.close()
    if csv_file is not None:
        csv_file.write_text(result.to_csv(), encoding="utf-8")
    if as_json:
        emit_json({"at": when.isoformat(), "dry_run": dry_run, "counts": counts,
                   "decisions": result.to_json()})
        return
    from rich.table import Table

    table = Table(title=f"Outreach plan at {when.isoformat()}"
                  + (" (dry run)" if dry_run else ""))
    for column in ("account", "campaign", "step", "cohort", "outcome", "channel", "when",
                   "reasons"):
        table.add_column(column)
    for row in result.to_json()[:limit]:
        table.add_row(row["account_id"][:8], row["campaign"], str(row["step"]),
                      row["cohort"] + (f"/{row['variant']}" if row["variant"] else ""),
                      row["outcome"], row["channel"] or "-", row["scheduled_for"] or "-",
                      " ".join(row["reasons"]) or "-")
    console.print(table)
    emit(" ".join(f"{k}={v}" for k, v in counts.items()))


@cadences_app.command("install-defaults")
def install_defaults(data_dir: DataDirOption = None,
                     organization: OrganizationOption = None) -> None:
    """Create the default cadences for the organization's kind (dental or physician)."""
    from carecollect.audit import Actor
    from carecollect.outreach.cadence import cadence_service
    from carecollect.tenant.models import Organization

    ctx = open_context(data_dir)
    try:
        org_id = ctx.resolve_organization(organization)
        with ctx.db.tenant_session(org_id) as session:
            org = session.get(Organization, org_id)
            kind = org.entity_kind if org else "physician_group"
            created = cadence_service.install_defaults(
                session, organization_id=org_id, actor=Actor.system("cli"), entity_kind=kind)
            keys = [c.key for c in created]
    finally:
        ctx.close()
    emit(f"installed {len(keys)} cadence(s): {', '.join(keys) or 'none (already present)'}")


@app.command("evidence")
def evidence(
    guarantor_id: Annotated[str, typer.Argument(help="Guarantor id (UUID).")],
    out: Annotated[Path, typer.Option("--out", help="Directory for the files.")],
    fmt: Annotated[str, typer.Option("--format", help="json, pdf or both.")] = "both",
    data_dir: DataDirOption = None,
    organization: OrganizationOption = None,
) -> None:
    """Export one patient's consent and contact evidence for a dispute (audited)."""
    from carecollect.audit import Actor
    from carecollect.consent.evidence import export_evidence

    try:
        gid = uuid.UUID(guarantor_id)
    except ValueError:
        raise BadInput("the guarantor id must be a UUID") from None
    formats = {"json": ("json",), "pdf": ("pdf",), "both": ("json", "pdf")}.get(fmt)
    if formats is None:
        raise BadInput("--format is json, pdf or both")
    ctx = open_context(data_dir)
    try:
        org_id = ctx.resolve_organization(organization)
        keys = ctx.organization_keys(org_id)
        with ctx.db.tenant_session(org_id) as session:
            files = export_evidence(session, keys=keys, actor=Actor.system("cli"),
                                    guarantor_id=gid, generated_at=dt.datetime.now(dt.UTC),
                                    formats=formats)
    finally:
        ctx.close()
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, data in files.items():
        path = out / f"consent-evidence-{gid}.{name}"
        path.write_bytes(data)
        written.append(str(path))
    emit(json.dumps({"written": written}))
