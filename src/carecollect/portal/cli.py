"""`carecollect portal`: issue and revoke patient payment links from the command line.

    carecollect portal link GUARANTOR_ID [--ttl-days N] [--base-url URL] [--json]
    carecollect portal revoke LINK_ID

The link is printed once (only its hash is stored); nothing else about the person is.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated

import typer

from carecollect.audit import Actor
from carecollect.cli.common import DataDirOption, OrganizationOption, open_context
from carecollect.cli.output import emit, emit_json
from carecollect.errors import BadInput

app = typer.Typer(name="portal", help="Patient portal payment links.", no_args_is_help=True)
CLI_ACTOR = Actor.system("cli.portal")


def _uuid(value: str, what: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise BadInput(f"{what} must be a UUID") from None


@app.command("link")
def link(
    guarantor_id: Annotated[str, typer.Argument(help="The guarantor's id.")],
    ttl_days: Annotated[int | None, typer.Option("--ttl-days", help="Days until it expires "
                                                 "(default CARECOLLECT_PORTAL_LINK_TTL_DAYS).")]
    = None,
    base_url: Annotated[str | None, typer.Option("--base-url", help="Public origin of the "
                                                 "portal, e.g. https://billing.example.org.")]
    = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    data_dir: DataDirOption = None,
    organization: OrganizationOption = None,
) -> None:
    """Issue a payment link for one guarantor and print it."""
    from carecollect import all_models  # noqa: F401 - every mapper configured before use
    from carecollect.portal.config import PortalSettings
    from carecollect.portal.service import issue_link

    settings = PortalSettings()
    ttl = dt.timedelta(days=ttl_days) if ttl_days is not None else settings.link_ttl
    target = _uuid(guarantor_id, "GUARANTOR_ID")
    ctx = open_context(data_dir)
    try:
        org_id = ctx.resolve_organization(organization)
        with ctx.db.tenant_session(org_id) as session:
            issued = issue_link(session, actor=CLI_ACTOR, organization_id=org_id,
                                guarantor_id=target, ttl=ttl, now=dt.datetime.now(dt.UTC),
                                base_url=base_url or settings.public_base_url)
    finally:
        ctx.close()
    if as_json:
        emit_json({"link_id": str(issued.link_id), "url": issued.url,
                   "expires_at": issued.expires_at.isoformat()})
        return
    emit(issued.url)


@app.command("revoke")
def revoke(
    link_id: Annotated[str, typer.Argument(help="The link's id.")],
    data_dir: DataDirOption = None,
    organization: OrganizationOption = None,
) -> None:
    """Revoke a link and end the sessions opened through it."""
    from carecollect import all_models  # noqa: F401 - every mapper configured before use
    from carecollect.portal.service import revoke_link

    target = _uuid(link_id, "LINK_ID")
    ctx = open_context(data_dir)
    try:
        org_id = ctx.resolve_organization(organization)
        with ctx.db.tenant_session(org_id) as session:
            revoke_link(session, actor=CLI_ACTOR, link_id=target, now=dt.datetime.now(dt.UTC))
    finally:
        ctx.close()
    emit(f"revoked {target}")
