"""`/api/v1/outreach/attempts`: outreach attempts with each compliance decision.

An attempt is ids, states, rule ids and times; who was contacted and when is still PHI
(it is a person's contact history), so every list and read records one `patient.read`
event per person whose attempts were returned (HIPAA 164.312(b)). Message text is stored
only for inbound replies (sealed); it is returned unmasked only to callers who may read
PHI unmasked, like every other view (`api.views`).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from sqlalchemy import select
from sqlalchemy.orm import Session

from carecollect.api import views
from carecollect.api.masking import MASK
from carecollect.api.problems import PROBLEM_RESPONSES
from carecollect.api.schemas import Page
from carecollect.api.schemas_campaigns import (
    AttemptDetailOut,
    AttemptOut,
    ComplianceDecisionOut,
    RuleOut,
)
from carecollect.api.v1_common import Context, Cursor, Limit, page_of
from carecollect.errors import BadInput, NotFound
from carecollect.identity.auth import api_permission
from carecollect.identity.permissions import Permission
from carecollect.identity.service import Principal
from carecollect.outreach.cadence import explain_rule
from carecollect.outreach.models import ContactEvent
from carecollect.outreach.outbox import OutreachAttempt

router = APIRouter(prefix="/api/v1", tags=["outreach"], responses=PROBLEM_RESPONSES)
State = Literal["planned", "sending", "sent", "unknown", "failed", "blocked", "cancelled"]
Channel = Literal["email", "sms", "letter", "call", "voicemail"]


def attempt_out(row: OutreachAttempt) -> AttemptOut:
    return AttemptOut(
        id=row.id,
        guarantor_id=row.guarantor_id,
        account_id=row.account_id,
        contact_point_id=row.contact_point_id,
        channel=row.channel,
        template_key=row.template_key,
        language=row.language,
        cadence_key=row.cadence_key,
        step_key=row.step_key,
        state=row.state,
        scheduled_for=row.scheduled_for,
        created_at=row.created_at,
        updated_at=row.updated_at,
        sent_at=row.sent_at,
        delivery_status=row.delivery_status,
        error_code=row.error_code,
    )


def decision_of(row: OutreachAttempt) -> ComplianceDecisionOut:
    """The attempt's compliance decision as the account page shows it. `reasons` holds
    rule ids for blocked and re-timed attempts and fixed error codes for failed ones."""
    reasons = list(row.reasons or [])
    outcome: Any
    if row.state in ("blocked", "failed", "cancelled"):
        outcome = row.state
    elif row.next_allowed_at is not None and reasons:
        outcome = "retimed"
    elif row.state in ("sending", "sent", "unknown"):
        outcome = "allowed"
    else:
        outcome = "pending"
    rules = [] if row.state == "failed" else reasons
    return ComplianceDecisionOut(
        outcome=outcome,
        rules=[
            RuleOut(rule_id=r, title=explain_rule(r)[0], citation=explain_rule(r)[1]) for r in rules
        ],
        next_allowed_at=row.next_allowed_at,
    )


@router.get("/outreach/attempts", response_model=Page[AttemptOut])
def list_attempts(
    context: Context,
    principal: Principal = api_permission(Permission.ACCOUNT_READ),
    guarantor_id: uuid.UUID | None = None,
    account_id: uuid.UUID | None = None,
    state: State | None = None,
    channel: Channel | None = None,
    scheduled_from: Annotated[
        datetime | None, Query(description="scheduled at or after (ISO 8601 with offset)")
    ] = None,
    scheduled_to: Annotated[
        datetime | None, Query(description="scheduled before (ISO 8601 with offset)")
    ] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Any:
    for bound in (scheduled_from, scheduled_to):
        if bound is not None and bound.tzinfo is None:
            raise BadInput("dates need a UTC offset, like 2026-11-27T10:00:00Z")
        if bound is not None and not 1900 <= bound.year <= 2200:
            raise BadInput("dates are between the years 1900 and 2200")
    if scheduled_from and scheduled_to and scheduled_from > scheduled_to:
        raise BadInput("scheduled_from is after scheduled_to")
    a = OutreachAttempt
    query = select(a).order_by(a.id).limit(limit)
    if guarantor_id is not None:
        query = query.where(a.guarantor_id == guarantor_id)
    if account_id is not None:
        query = query.where(a.account_id == account_id)
    if state is not None:
        query = query.where(a.state == state)
    if channel is not None:
        query = query.where(a.channel == channel)
    if scheduled_from is not None:
        query = query.where(a.scheduled_for >= scheduled_from)
    if scheduled_to is not None:
        query = query.where(a.scheduled_for < scheduled_to)
    if cursor is not None:
        query = query.where(a.id > cursor)
    with context.session(principal.organization_id) as session:
        rows = list(session.scalars(query))
        for person in sorted({r.guarantor_id for r in rows}):
            views.record_read(
                session, principal, person, fields=["outreach_attempts"], purpose="api"
            )
        return page_of([attempt_out(r) for r in rows], limit, rows[-1].id if rows else None)


@router.get("/outreach/attempts/{attempt_id}", response_model=AttemptDetailOut)
def get_attempt(
    context: Context,
    attempt_id: uuid.UUID,
    principal: Principal = api_permission(Permission.ACCOUNT_READ),
) -> Any:
    with context.session(principal.organization_id) as session:
        row = session.get(OutreachAttempt, attempt_id)
        if row is None:
            raise NotFound("no such outreach attempt")
        event = session.get(ContactEvent, row.contact_event_id) if row.contact_event_id else None
        show = views.unmasked(principal)
        text = _message_text(session, context, principal, event) if event else None
        views.record_read(
            session,
            principal,
            row.guarantor_id,
            fields=["outreach_attempt", *(["message_text"] if text is not None else [])],
            purpose="api",
            subject_type="outreach_attempt",
            subject_id=row.id,
        )
        return AttemptDetailOut(
            **attempt_out(row).model_dump(),
            decision=decision_of(row),
            contact_event_id=row.contact_event_id,
            contact_outcome=event.outcome if event else None,
            message_text=text if show or text is None else MASK,
            masked=not show,
        )


def _message_text(
    session: Session, context: Any, principal: Principal, event: ContactEvent
) -> str | None:
    if event.text is None:
        return None
    if not views.unmasked(principal):
        return MASK
    keys = context.org_keys(session, principal.organization_id)
    text: str | None = keys.cipher().open_row(event, "text")
    return text


__all__ = ["router"]
