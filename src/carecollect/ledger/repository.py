"""Every query of the ledger domain."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from carecollect.ledger.models import Account, LedgerEntry


class LedgerRepository:
    def account(self, session: Session, account_id: uuid.UUID) -> Account | None:
        return session.get(Account, account_id)

    def balance_cents(self, session: Session, account_id: uuid.UUID) -> int:
        total = session.scalar(
            select(func.coalesce(func.sum(LedgerEntry.amount_cents), 0)).where(
                LedgerEntry.account_id == account_id
            )
        )
        return int(total or 0)

    def entries(self, session: Session, account_id: uuid.UUID) -> list[LedgerEntry]:
        return list(
            session.scalars(
                select(LedgerEntry)
                .where(LedgerEntry.account_id == account_id)
                .order_by(LedgerEntry.posted_at, LedgerEntry.id)
            )
        )

    def portfolio_totals(self, session: Session) -> tuple[int, int]:
        """(number of accounts, total balance in cents) for the session's organization."""
        accounts = session.scalar(select(func.count(Account.id))) or 0
        total = session.scalar(select(func.coalesce(func.sum(LedgerEntry.amount_cents), 0))) or 0
        return int(accounts), int(total)

    def charges_by_age(
        self, session: Session, as_of: datetime
    ) -> list[tuple[uuid.UUID, datetime, int]]:
        """(account id, posted_at, amount) of every charge, for aging."""
        rows = session.execute(
            select(LedgerEntry.account_id, LedgerEntry.posted_at, LedgerEntry.amount_cents).where(
                LedgerEntry.kind == "charge", LedgerEntry.posted_at <= as_of
            )
        )
        return [(r[0], r[1], int(r[2])) for r in rows]

    def credits_by_account(self, session: Session) -> dict[uuid.UUID, int]:
        """Sum of everything that is not a charge, per account (negative reduces)."""
        rows = session.execute(
            select(
                LedgerEntry.account_id,
                func.sum(case((LedgerEntry.kind == "charge", 0), else_=LedgerEntry.amount_cents)),
            ).group_by(LedgerEntry.account_id)
        )
        return {r[0]: int(r[1] or 0) for r in rows}


ledger_repository = LedgerRepository()
