"""Ledger rules: open accounts, post entries with the right sign, derive balances and aging.

Aging follows the usual receivables convention: credits are applied to the oldest charges
first (FIFO), and what remains of each charge is bucketed by days since it was posted.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import date, datetime

from sqlalchemy.orm import Session

from carecollect.audit import Actor, Subject, record
from carecollect.errors import BadInput, NotFound
from carecollect.kit.crypto.keys import OrganizationKeys
from carecollect.kit.ids import uuid7
from carecollect.kit.models import utcnow
from carecollect.ledger.models import ENTRY_KINDS, Account, LedgerEntry
from carecollect.ledger.repository import ledger_repository

AGING_BUCKETS = (
    (0, 30, "0-30"),
    (31, 60, "31-60"),
    (61, 90, "61-90"),
    (91, 120, "91-120"),
    (121, None, "120+"),
)
MAX_ENTRY_CENTS = 100_000_000_00  # one hundred million dollars: larger is a data error


def bucket_for(days: int) -> str:
    for low, high, label in AGING_BUCKETS:
        if days >= low and (high is None or days <= high):
            return label
    return AGING_BUCKETS[0][2]


class LedgerService:
    def open_account(
        self,
        session: Session,
        *,
        keys: OrganizationKeys,
        actor: Actor,
        guarantor_id: uuid.UUID,
        account_number: str,
        opened_at: datetime,
        debt_kind: str = "dental",
        location_id: uuid.UUID | None = None,
    ) -> Account:
        if debt_kind not in ("medical", "dental"):
            raise BadInput("debt kind must be medical or dental")
        row_id = uuid7()
        account = Account(
            id=row_id,
            organization_id=keys.organization_id,
            guarantor_id=guarantor_id,
            location_id=location_id,
            account_number=keys.cipher().seal("account", "account_number", row_id, account_number),
            account_number_bidx=keys.blind().account_number(account_number),
            debt_kind=debt_kind,
            opened_at=opened_at,
        )
        session.add(account)
        session.flush()
        record(
            session,
            actor=actor,
            action="account.create",
            subject=Subject(
                "account", row_id, organization_id=keys.organization_id, patient_id=guarantor_id
            ),
        )
        return account

    def post(
        self,
        session: Session,
        *,
        keys: OrganizationKeys,
        actor: Actor,
        account_id: uuid.UUID,
        kind: str,
        amount_cents: int,
        posted_at: datetime,
        patient_id: uuid.UUID | None = None,
        service_date: date | None = None,
        procedure_codes: str | None = None,
        description: str | None = None,
        external_reference: str | None = None,
    ) -> LedgerEntry:
        """Post one entry. `amount_cents` is the magnitude; the kind gives the sign
        (an `adjustment` carries its own sign)."""
        if kind not in ENTRY_KINDS:
            raise BadInput(f"unknown ledger entry kind {kind!r}")
        if isinstance(amount_cents, bool) or not isinstance(amount_cents, int):
            raise BadInput("amount must be a whole number of cents")
        sign = ENTRY_KINDS[kind]
        if sign != 0 and amount_cents <= 0:
            raise BadInput("amount must be positive; the entry kind gives its direction")
        if abs(amount_cents) > MAX_ENTRY_CENTS or amount_cents == 0:
            raise BadInput("amount is zero or implausibly large")
        account = ledger_repository.account(session, account_id)
        if account is None:
            raise NotFound("no such account")
        row_id = uuid7()
        cipher = keys.cipher()
        entry = LedgerEntry(
            id=row_id,
            organization_id=keys.organization_id,
            account_id=account_id,
            patient_id=patient_id,
            kind=kind,
            amount_cents=amount_cents * sign if sign else amount_cents,
            posted_at=posted_at,
            service_date=cipher.seal(
                "ledger_entry",
                "service_date",
                row_id,
                service_date.isoformat() if service_date else None,
            ),
            procedure_codes=cipher.seal("ledger_entry", "procedure_codes", row_id, procedure_codes),
            description=cipher.seal("ledger_entry", "description", row_id, description),
            external_reference=external_reference,
            created_at=utcnow(),
        )
        session.add(entry)
        session.flush()
        record(
            session,
            actor=actor,
            action="ledger.post",
            subject=Subject(
                "account",
                account_id,
                organization_id=keys.organization_id,
                patient_id=account.guarantor_id,
            ),
            details={"entry_id": str(row_id), "kind": kind},
        )
        return entry

    def balance_cents(self, session: Session, *, account_id: uuid.UUID) -> int:
        return ledger_repository.balance_cents(session, account_id)

    def aging(self, session: Session, *, as_of: datetime) -> dict[str, int]:
        """Open balance (cents) per aging bucket across the organization, FIFO-applied."""
        charges: dict[uuid.UUID, list[tuple[datetime, int]]] = defaultdict(list)
        for account_id, posted_at, amount in ledger_repository.charges_by_age(session, as_of):
            charges[account_id].append((posted_at, amount))
        credits = ledger_repository.credits_by_account(session)
        buckets = {label: 0 for _, _, label in AGING_BUCKETS}
        for account_id, items in charges.items():
            remaining_credit = -credits.get(account_id, 0)
            for posted_at, amount in sorted(items):
                applied = min(max(remaining_credit, 0), amount)
                remaining_credit -= applied
                open_amount = amount - applied
                if open_amount > 0:
                    days = (as_of.date() - posted_at.date()).days
                    buckets[bucket_for(days)] += open_amount
        return buckets


ledger_service = LedgerService()
