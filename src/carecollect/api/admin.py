"""Administrative actions shared by the API and the staff app: organization settings, the
BAA register, and audit-trail verification. Each change records its audit event in the
caller's transaction."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy.orm import Session

from carecollect.api.context import AppContext
from carecollect.api.schemas import BusinessAssociateIn, BusinessAssociateOut
from carecollect.audit import Actor, Subject, record
from carecollect.errors import BadInput, NotFound
from carecollect.identity.service import Principal
from carecollect.tenant.models import BusinessAssociate, Organization

# PLAT-NEUTRAL-NAME: words that would disclose a debt or a sensitive specialty on caller
# ID, an envelope or an e-mail From line (FDCPA 1692f(8) spirit; HIPAA minimum necessary).
_DISCLOSING_WORDS = (
    "collection", "collections", "debt", "recovery", "oncology", "cancer", "psychiatr",
    "behavioral", "addiction", "hiv", "fertility", "abortion", "rehab",
)


def update_organization(
    session: Session,
    *,
    actor: Actor,
    organization_id: uuid.UUID,
    billing_display_name: str | None,
    timezone: str | None,
) -> Organization:
    org = session.get(Organization, organization_id)
    if org is None:
        raise NotFound("no such organization")
    changed: list[str] = []
    if billing_display_name is not None:
        folded = billing_display_name.casefold()
        if any(word in folded for word in _DISCLOSING_WORDS):
            raise BadInput(
                "the billing display name must be neutral: it may not mention debt, "
                "collections or a sensitive specialty (PLAT-NEUTRAL-NAME)"
            )
        org.billing_display_name = billing_display_name
        changed.append("billing_display_name")
    if timezone is not None:
        try:
            ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise BadInput("unknown IANA time zone") from None
        org.timezone = timezone
        changed.append("timezone")
    session.flush()
    record(
        session,
        actor=actor,
        action="config.change",
        subject=Subject("organization", organization_id, organization_id=organization_id),
        details={"fields": changed},
    )
    return org


def business_associate_out(row: BusinessAssociate, today: date) -> BusinessAssociateOut:
    return BusinessAssociateOut(
        id=row.id,
        name=row.name,
        service=row.service,
        baa_status=row.baa_status,
        baa_effective_on=row.baa_effective_on,
        baa_expires_on=row.baa_expires_on,
        baa_document_sha256=row.baa_document_sha256,
        active_today=row.baa_is_active(today),
    )


def save_business_associate(
    session: Session,
    *,
    actor: Actor,
    organization_id: uuid.UUID,
    data: BusinessAssociateIn,
    associate_id: uuid.UUID | None,
    now: datetime,
) -> BusinessAssociate:
    """Add or update a vendor in the BAA register (HIPAA 45 CFR 164.502(e), 164.504(e))."""
    if (
        data.baa_effective_on is not None
        and data.baa_expires_on is not None
        and data.baa_expires_on < data.baa_effective_on
    ):
        raise BadInput("the BAA cannot expire before it takes effect")
    if data.baa_status == "active" and data.baa_effective_on is None:
        raise BadInput("an active BAA needs its effective date")
    from sqlalchemy import select

    clash = session.scalar(
        select(BusinessAssociate.id).where(BusinessAssociate.name == data.name)
    )
    if associate_id is None:
        if clash is not None:
            raise BadInput("a business associate with this name already exists")
        row = BusinessAssociate(organization_id=organization_id, name=data.name)
        session.add(row)
    else:
        found = session.get(BusinessAssociate, associate_id)
        if found is None:
            raise NotFound("no such business associate")
        if clash is not None and clash != associate_id:
            raise BadInput("a business associate with this name already exists")
        row = found
        row.name = data.name
    row.service = data.service
    row.baa_status = data.baa_status
    row.baa_effective_on = data.baa_effective_on
    row.baa_expires_on = data.baa_expires_on
    row.baa_document_sha256 = data.baa_document_sha256
    row.recorded_at = now
    row.recorded_by = uuid.UUID(actor.id) if actor.type == "staff" else None
    session.flush()
    record(
        session,
        actor=actor,
        action="baa.change",
        subject=Subject("business_associate", row.id, organization_id=organization_id),
        details={"baa_status": data.baa_status, "service": data.service},
    )
    return row


def verify_audit_trail(context: AppContext, principal: Principal) -> dict[str, Any]:
    """Integrate pending events, verify the whole log, and record that it was verified."""
    from carecollect.audit.integrator import integrate
    from carecollect.audit.keys import default_verifier, load_signer
    from carecollect.audit.verification import verify_database

    settings = context.settings
    signing_path = settings.resolved_audit_signing_key_path
    checkpoints = settings.resolved_checkpoint_dir
    integrate(context.db.engine, signer=load_signer(signing_path), checkpoint_dir=checkpoints)
    report = verify_database(
        context.db.engine, verifier=default_verifier(signing_path), checkpoint_dir=checkpoints
    )
    result = report.as_dict()
    with context.session(principal.organization_id) as session:
        record(
            session,
            actor=principal.actor,
            action="audit.verify",
            subject=Subject("audit_trail", None, organization_id=principal.organization_id),
            outcome="success" if report.ok else "failure",
            details={"tree_size": report.tree_size, "ok": report.ok},
        )
    return result
