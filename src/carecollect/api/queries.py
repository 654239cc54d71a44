"""Read queries the web layer needs that the domain repositories do not offer yet
(lists per guarantor, registers, dashboard aggregates). Every query is scoped to the
session's organization by the tenant session (and RLS on PostgreSQL).

These belong in the domains' repositories; they live here until those domains grow them.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from carecollect.audit.models import AuditEvent, AuditLogEntry
from carecollect.consent.models import Consent, Revocation
from carecollect.identity.models import StaffUser
from carecollect.ledger.models import Account, LedgerEntry
from carecollect.outreach.models import ContactEvent
from carecollect.patient.models import Flag
from carecollect.tenant.models import BusinessAssociate


def accounts_of(session: Session, guarantor_id: uuid.UUID) -> Sequence[Account]:
    return session.scalars(
        select(Account).where(Account.guarantor_id == guarantor_id).order_by(Account.id)
    ).all()


def accounts_page(
    session: Session, *, guarantor_id: uuid.UUID | None, after: uuid.UUID | None, limit: int
) -> Sequence[Account]:
    query = select(Account).order_by(Account.id).limit(limit)
    if guarantor_id is not None:
        query = query.where(Account.guarantor_id == guarantor_id)
    if after is not None:
        query = query.where(Account.id > after)
    return session.scalars(query).all()


def balances(session: Session, account_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, int]:
    if not account_ids:
        return {}
    rows = session.execute(
        select(LedgerEntry.account_id, func.coalesce(func.sum(LedgerEntry.amount_cents), 0))
        .where(LedgerEntry.account_id.in_(account_ids))
        .group_by(LedgerEntry.account_id)
    )
    found = {r[0]: int(r[1]) for r in rows}
    return {a: found.get(a, 0) for a in account_ids}


def entries_page(
    session: Session, account_id: uuid.UUID, *, after: uuid.UUID | None, limit: int
) -> Sequence[LedgerEntry]:
    query = (
        select(LedgerEntry)
        .where(LedgerEntry.account_id == account_id)
        .order_by(LedgerEntry.id)
        .limit(limit)
    )
    if after is not None:
        query = query.where(LedgerEntry.id > after)
    return session.scalars(query).all()


def flags_of(session: Session, guarantor_id: uuid.UUID) -> Sequence[Flag]:
    return session.scalars(
        select(Flag).where(Flag.guarantor_id == guarantor_id).order_by(Flag.raised_at, Flag.id)
    ).all()


def consents_of(session: Session, guarantor_id: uuid.UUID) -> Sequence[Consent]:
    return session.scalars(
        select(Consent).where(Consent.guarantor_id == guarantor_id).order_by(Consent.granted_at)
    ).all()


def revocations_of(session: Session, guarantor_id: uuid.UUID) -> Sequence[Revocation]:
    return session.scalars(
        select(Revocation)
        .where(Revocation.guarantor_id == guarantor_id)
        .order_by(Revocation.received_at)
    ).all()


def recent_revocations(session: Session, *, limit: int = 100) -> Sequence[Revocation]:
    return session.scalars(
        select(Revocation).order_by(Revocation.received_at.desc()).limit(limit)
    ).all()


def all_consents(session: Session) -> Sequence[Consent]:
    return session.scalars(select(Consent).order_by(Consent.granted_at, Consent.id)).all()


def contact_events_of(session: Session, guarantor_id: uuid.UUID) -> Sequence[ContactEvent]:
    return session.scalars(
        select(ContactEvent)
        .where(ContactEvent.guarantor_id == guarantor_id)
        .order_by(ContactEvent.occurred_at.desc())
        .limit(200)
    ).all()


def outreach_outcomes(session: Session) -> dict[str, int]:
    rows = session.execute(
        select(ContactEvent.outcome, func.count()).group_by(ContactEvent.outcome)
    )
    return {str(r[0]): int(r[1]) for r in rows}


def collections_by_month(session: Session, *, since: datetime) -> list[tuple[str, int]]:
    """Payments received per calendar month (UTC), in cents, oldest first."""
    rows = session.execute(
        select(LedgerEntry.posted_at, LedgerEntry.amount_cents).where(
            LedgerEntry.kind.in_(("patient_payment", "insurance_payment")),
            LedgerEntry.posted_at >= since,
        )
    )
    totals: dict[str, int] = {}
    for posted_at, amount in rows:
        month = posted_at.strftime("%Y-%m")
        totals[month] = totals.get(month, 0) - int(amount)
    return sorted(totals.items())


def business_associates(session: Session) -> Sequence[BusinessAssociate]:
    return session.scalars(select(BusinessAssociate).order_by(BusinessAssociate.name)).all()


def staff_users(session: Session) -> Sequence[StaffUser]:
    return session.scalars(select(StaffUser).order_by(StaffUser.email)).all()


def audit_events(
    session: Session,
    *,
    organization_id: uuid.UUID,
    patient_id: str | None = None,
    action: str | None = None,
    actor_id: str | None = None,
    before_ordinal: int | None = None,
    limit: int = 50,
) -> tuple[list[dict[str, Any]], int | None]:
    """The organization's audit events, newest first, filtered; returns (events, cursor).

    The audit tables are cross-tenant (no RLS), so the organization filter is explicit.
    Action and actor are inside the canonical body, so they are filtered after reading,
    over at most 20 pages' worth of rows per call.
    """
    event, entry = AuditEvent.__table__, AuditLogEntry.__table__
    scan = limit * 20
    query = (
        select(event.c.ordinal, event.c.recorded_at, event.c.patient_id, event.c.body, entry.c.seq)
        .select_from(event.outerjoin(entry, entry.c.event_ordinal == event.c.ordinal))
        .where(event.c.organization_id == str(organization_id))
        .order_by(event.c.ordinal.desc())
        .limit(scan)
    )
    if patient_id is not None:
        query = query.where(event.c.patient_id == patient_id)
    if before_ordinal is not None:
        query = query.where(event.c.ordinal < before_ordinal)
    events: list[dict[str, Any]] = []
    last_ordinal: int | None = None
    rows = session.execute(query).all()
    for ordinal, recorded_at, row_patient, body_text, seq in rows:
        last_ordinal = int(ordinal)
        body = json.loads(body_text)
        if action is not None and body.get("action") != action:
            continue
        if actor_id is not None and body.get("actor_id") != actor_id:
            continue
        events.append(
            {
                "event_id": body["id"],
                "seq": seq,
                "recorded_at": recorded_at,
                "actor_type": body["actor_type"],
                "actor_id": body["actor_id"],
                "action": body["action"],
                "outcome": body["outcome"],
                "subject_type": body.get("subject_type"),
                "subject_id": body.get("subject_id"),
                "patient_id": row_patient,
                "details": body.get("details") or {},
            }
        )
        if len(events) >= limit:
            break
    more = len(rows) == scan or len(events) >= limit
    return events, (last_ordinal if more and last_ordinal is not None else None)


def attempts_of(session: Session, guarantor_id: uuid.UUID, *, limit: int = 50) -> Sequence[Any]:
    """The person's latest outreach attempts with each compliance decision (state, rule
    ids, next allowed time), newest first."""
    from carecollect.outreach.outbox import OutreachAttempt

    return session.scalars(
        select(OutreachAttempt).where(OutreachAttempt.guarantor_id == guarantor_id)
        .order_by(OutreachAttempt.scheduled_for.desc(), OutreachAttempt.id).limit(limit)
    ).all()


def plans_of(session: Session, guarantor_id: uuid.UUID) -> Sequence[Any]:
    from carecollect.payment_plan.models import PaymentPlan

    return session.scalars(
        select(PaymentPlan).where(PaymentPlan.guarantor_id == guarantor_id)
        .order_by(PaymentPlan.created_at.desc(), PaymentPlan.id)
    ).all()


def autopay_of(session: Session, guarantor_id: uuid.UUID) -> tuple[dict[uuid.UUID, Any],
                                                                    Sequence[Any]]:
    """The guarantor's saved payment methods by id (brand, last four, expiry, status: no
    card number is ever stored) and autopay enrollments, newest first."""
    from carecollect.payment.models import AutopayEnrollment, SavedPaymentMethod

    methods = {m.id: m for m in session.scalars(
        select(SavedPaymentMethod).where(SavedPaymentMethod.guarantor_id == guarantor_id))}
    enrollments = session.scalars(
        select(AutopayEnrollment).where(AutopayEnrollment.guarantor_id == guarantor_id)
        .order_by(AutopayEnrollment.created_at.desc(), AutopayEnrollment.id)
    ).all()
    return methods, enrollments


def payments_of(session: Session, guarantor_id: uuid.UUID, *, limit: int = 50) -> Sequence[Any]:
    from carecollect.payment.models import Payment

    return session.scalars(
        select(Payment).where(Payment.guarantor_id == guarantor_id)
        .order_by(Payment.received_at.desc(), Payment.id).limit(limit)
    ).all()
