"""Every query of the portal domain. Repositories take the session and never commit.

Link lookups by token hash run in the system session (a token arrives before the
organization is known); everything else runs in the tenant session and is scoped by the
caller's guarantor.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from carecollect.ledger.models import Account, LedgerEntry
from carecollect.payment.models import Payment, SavedPaymentMethod
from carecollect.payment_plan.models import PaymentPlan, PlanInstallment
from carecollect.portal.models import PortalLink, PortalSession, PortalVerificationAttempt


def link_by_token_hash(session: Session, token_hash: str) -> PortalLink | None:
    return session.scalars(
        select(PortalLink).where(PortalLink.token_hash == token_hash)
    ).one_or_none()


def link(session: Session, link_id: uuid.UUID) -> PortalLink | None:
    return session.get(PortalLink, link_id)


def links_of_guarantor(session: Session, guarantor_id: uuid.UUID) -> list[PortalLink]:
    return list(
        session.scalars(
            select(PortalLink)
            .where(PortalLink.guarantor_id == guarantor_id)
            .order_by(PortalLink.created_at, PortalLink.id)
        )
    )


def lock_link(session: Session, link_id: uuid.UUID) -> PortalLink | None:
    """The link row under a write lock (PostgreSQL row lock; SQLite holds the database
    write lock for the whole request transaction already)."""
    return session.scalars(
        select(PortalLink).where(PortalLink.id == link_id).with_for_update()
    ).one_or_none()


def session_by_token_hash(session: Session, token_hash: str) -> PortalSession | None:
    return session.scalars(
        select(PortalSession).where(PortalSession.token_hash == token_hash)
    ).one_or_none()


def live_sessions_of_link(session: Session, link_id: uuid.UUID) -> list[PortalSession]:
    return list(
        session.scalars(
            select(PortalSession).where(
                PortalSession.link_id == link_id, PortalSession.revoked_at.is_(None)
            )
        )
    )


def add_attempt(session: Session, attempt: PortalVerificationAttempt) -> None:
    session.add(attempt)
    session.flush()


def attempts_by_client_since(session: Session, client_key: str, since: datetime) -> int:
    return int(
        session.scalar(
            select(func.count())
            .select_from(PortalVerificationAttempt)
            .where(
                PortalVerificationAttempt.client_key == client_key,
                PortalVerificationAttempt.attempted_at >= since,
            )
        )
        or 0
    )


def attempts_by_link_since(session: Session, link_id: uuid.UUID, since: datetime) -> int:
    return int(
        session.scalar(
            select(func.count())
            .select_from(PortalVerificationAttempt)
            .where(
                PortalVerificationAttempt.link_id == link_id,
                PortalVerificationAttempt.attempted_at >= since,
            )
        )
        or 0
    )


# -- the guarantor's own records (every query filtered by the session's guarantor) ---------


def accounts_of_guarantor(session: Session, guarantor_id: uuid.UUID) -> list[Account]:
    return list(
        session.scalars(
            select(Account)
            .where(Account.guarantor_id == guarantor_id)
            .order_by(Account.opened_at, Account.id)
        )
    )


def account_of_guarantor(
    session: Session, guarantor_id: uuid.UUID, account_id: uuid.UUID
) -> Account | None:
    return session.scalars(
        select(Account).where(Account.id == account_id, Account.guarantor_id == guarantor_id)
    ).one_or_none()


def entries_of_accounts(session: Session, account_ids: list[uuid.UUID]) -> list[LedgerEntry]:
    if not account_ids:
        return []
    return list(
        session.scalars(
            select(LedgerEntry)
            .where(LedgerEntry.account_id.in_(account_ids))
            .order_by(LedgerEntry.posted_at, LedgerEntry.id)
        )
    )


def plans_of_guarantor(session: Session, guarantor_id: uuid.UUID) -> list[PaymentPlan]:
    return list(
        session.scalars(
            select(PaymentPlan)
            .where(PaymentPlan.guarantor_id == guarantor_id)
            .order_by(PaymentPlan.created_at, PaymentPlan.id)
        )
    )


def plan_of_guarantor(
    session: Session, guarantor_id: uuid.UUID, plan_id: uuid.UUID
) -> PaymentPlan | None:
    return session.scalars(
        select(PaymentPlan).where(
            PaymentPlan.id == plan_id, PaymentPlan.guarantor_id == guarantor_id
        )
    ).one_or_none()


def installments_of_plan(session: Session, plan_id: uuid.UUID) -> list[PlanInstallment]:
    return list(
        session.scalars(
            select(PlanInstallment)
            .where(PlanInstallment.plan_id == plan_id)
            .order_by(PlanInstallment.sequence)
        )
    )


def payment_of_guarantor(
    session: Session, guarantor_id: uuid.UUID, payment_id: uuid.UUID
) -> Payment | None:
    return session.scalars(
        select(Payment).where(Payment.id == payment_id, Payment.guarantor_id == guarantor_id)
    ).one_or_none()


def payments_of_guarantor(session: Session, guarantor_id: uuid.UUID) -> list[Payment]:
    return list(
        session.scalars(
            select(Payment)
            .where(Payment.guarantor_id == guarantor_id)
            .order_by(Payment.received_at.desc(), Payment.id)
        )
    )


def method_of_guarantor(
    session: Session, guarantor_id: uuid.UUID, method_id: uuid.UUID
) -> SavedPaymentMethod | None:
    return session.scalars(
        select(SavedPaymentMethod).where(
            SavedPaymentMethod.id == method_id, SavedPaymentMethod.guarantor_id == guarantor_id
        )
    ).one_or_none()
