"""Queries of the portal's self-service pages, always for one guarantor of the session's
organization (the tenant session scopes every query; the guarantor filter keeps one
patient from another's rows). Never commits."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from carecollect.consent.models import (
    Consent,
    InconvenientDesignation,
    MediumOptOut,
    Revocation,
)
from carecollect.identity.models import StaffUser
from carecollect.ledger.models import Account, LedgerEntry
from carecollect.patient.models import ContactPoint, Flag, Guarantor
from carecollect.payment_plan.models import PaymentPlan
from carecollect.tenant.models import Organization


class SelfServiceRepository:
    def guarantor(self, session: Session, guarantor_id: uuid.UUID) -> Guarantor | None:
        return session.get(Guarantor, guarantor_id)

    def contact_points(self, session: Session, guarantor_id: uuid.UUID) -> list[ContactPoint]:
        return list(session.scalars(
            select(ContactPoint).where(ContactPoint.guarantor_id == guarantor_id,
                                       ContactPoint.active.is_(True))
            .order_by(ContactPoint.is_primary.desc(), ContactPoint.created_at)))

    def consents(self, session: Session, guarantor_id: uuid.UUID) -> Sequence[Consent]:
        return session.scalars(select(Consent).where(Consent.guarantor_id == guarantor_id)).all()

    def revocations(self, session: Session, guarantor_id: uuid.UUID) -> Sequence[Revocation]:
        return session.scalars(
            select(Revocation).where(Revocation.guarantor_id == guarantor_id)).all()

    def medium_opt_outs(self, session: Session,
                        guarantor_id: uuid.UUID) -> Sequence[MediumOptOut]:
        return session.scalars(
            select(MediumOptOut).where(MediumOptOut.guarantor_id == guarantor_id)).all()

    def designations(self, session: Session,
                     guarantor_id: uuid.UUID) -> Sequence[InconvenientDesignation]:
        return session.scalars(
            select(InconvenientDesignation).where(
                InconvenientDesignation.guarantor_id == guarantor_id,
                InconvenientDesignation.revoked_at.is_(None))
            .order_by(InconvenientDesignation.designated_at)).all()

    def accounts(self, session: Session, guarantor_id: uuid.UUID) -> list[Account]:
        return list(session.scalars(select(Account).where(Account.guarantor_id == guarantor_id)
                                    .order_by(Account.opened_at, Account.id)))

    def account(self, session: Session, guarantor_id: uuid.UUID,
                account_id: uuid.UUID) -> Account | None:
        return session.scalar(select(Account).where(Account.id == account_id,
                                                    Account.guarantor_id == guarantor_id))

    def charges(self, session: Session, account_ids: list[uuid.UUID]) -> list[LedgerEntry]:
        if not account_ids:
            return []
        return list(session.scalars(
            select(LedgerEntry).where(LedgerEntry.account_id.in_(account_ids),
                                      LedgerEntry.kind == "charge")
            .order_by(LedgerEntry.posted_at, LedgerEntry.id)))

    def charge(self, session: Session, account_id: uuid.UUID,
               entry_id: uuid.UUID) -> LedgerEntry | None:
        return session.scalar(select(LedgerEntry).where(
            LedgerEntry.id == entry_id, LedgerEntry.account_id == account_id,
            LedgerEntry.kind == "charge"))

    def open_flags(self, session: Session, guarantor_id: uuid.UUID, kind: str) -> list[Flag]:
        return list(session.scalars(select(Flag).where(
            Flag.guarantor_id == guarantor_id, Flag.kind == kind, Flag.cleared_at.is_(None))
            .order_by(Flag.raised_at)))

    def active_plans(self, session: Session, guarantor_id: uuid.UUID) -> list[PaymentPlan]:
        return list(session.scalars(select(PaymentPlan).where(
            PaymentPlan.guarantor_id == guarantor_id, PaymentPlan.status == "active")))

    def organization_timezone(self, session: Session, organization_id: uuid.UUID) -> str:
        org = session.get(Organization, organization_id)
        return org.timezone if org is not None else "UTC"

    def staff(self, session: Session, user_ids: set[str]) -> dict[str, StaffUser]:
        ids = []
        for value in user_ids:
            try:
                ids.append(uuid.UUID(value))
            except ValueError:
                continue
        if not ids:
            return {}
        return {str(u.id): u for u in session.scalars(select(StaffUser).where(
            StaffUser.id.in_(ids)))}


self_service_repository = SelfServiceRepository()
