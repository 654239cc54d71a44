"""Every query of the payment domain (the session is tenant-scoped by the caller)."""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from carecollect.ledger.models import LedgerEntry
from carecollect.payment.allocation import OpenCharge
from carecollect.payment.models import (
    Payment,
    PaymentAllocation,
    PaymentReversal,
    SavedPaymentMethod,
    WebhookEvent,
)


class PaymentRepository:
    def by_processor_id(self, session: Session, processor: str,
                        processor_payment_id: str) -> Payment | None:
        return session.scalar(select(Payment).where(
            Payment.processor == processor, Payment.processor_payment_id == processor_payment_id))

    def get(self, session: Session, payment_id: uuid.UUID) -> Payment | None:
        return session.get(Payment, payment_id)

    def for_account(self, session: Session, account_id: uuid.UUID) -> list[Payment]:
        return list(session.scalars(select(Payment).where(Payment.account_id == account_id)
                                    .order_by(Payment.received_at, Payment.id)))

    def for_guarantor(self, session: Session, guarantor_id: uuid.UUID) -> list[Payment]:
        return list(session.scalars(select(Payment).where(Payment.guarantor_id == guarantor_id)
                                    .order_by(Payment.received_at, Payment.id)))

    def organization_of_payment(self, session: Session, processor: str,
                                processor_payment_id: str) -> uuid.UUID | None:
        """Cross-tenant (system session): whose payment a refund or dispute event is about;
        those Stripe objects carry no metadata of ours."""
        return session.scalar(select(Payment.organization_id).where(
            Payment.processor == processor, Payment.processor_payment_id == processor_payment_id))

    def reversal_by_processor_id(self, session: Session, processor: str,
                                 processor_reversal_id: str) -> PaymentReversal | None:
        return session.scalar(select(PaymentReversal).where(
            PaymentReversal.processor == processor,
            PaymentReversal.processor_reversal_id == processor_reversal_id))

    def allocations(self, session: Session, payment_id: uuid.UUID) -> list[PaymentAllocation]:
        return list(session.scalars(select(PaymentAllocation).where(
            PaymentAllocation.payment_id == payment_id).order_by(PaymentAllocation.id)))

    def net_allocations(self, session: Session,
                        payment_id: uuid.UUID) -> list[tuple[uuid.UUID, datetime, int]]:
        rows = session.execute(
            select(PaymentAllocation.charge_entry_id, LedgerEntry.posted_at,
                   func.sum(PaymentAllocation.amount_cents))
            .join(LedgerEntry, LedgerEntry.id == PaymentAllocation.charge_entry_id)
            .where(PaymentAllocation.payment_id == payment_id)
            .group_by(PaymentAllocation.charge_entry_id, LedgerEntry.posted_at))
        return [(r[0], r[1], int(r[2])) for r in rows if int(r[2]) > 0]

    def open_charges(self, session: Session, account_id: uuid.UUID) -> list[OpenCharge]:
        """What is still open on each charge of an account.

        A charge is reduced by entries aimed at it (`applies_to_entry_id`, e.g. insurance
        payments from an 835), by payment allocations, and then, oldest charge first, by
        every other credit (undirected adjustments, the unallocated part of payments)."""
        entries = session.execute(
            select(LedgerEntry.id, LedgerEntry.kind, LedgerEntry.amount_cents,
                   LedgerEntry.posted_at, LedgerEntry.applies_to_entry_id)
            .where(LedgerEntry.account_id == account_id)).all()
        payments = session.execute(
            select(Payment.id, Payment.amount_cents, Payment.reversed_cents,
                   Payment.ledger_entry_id).where(Payment.account_id == account_id)).all()
        reversal_entries = set(session.scalars(
            select(PaymentReversal.ledger_entry_id).join(
                Payment, Payment.id == PaymentReversal.payment_id)
            .where(Payment.account_id == account_id)))
        allocated = session.execute(
            select(PaymentAllocation.payment_id, PaymentAllocation.charge_entry_id,
                   PaymentAllocation.amount_cents)
            .join(Payment, Payment.id == PaymentAllocation.payment_id)
            .where(Payment.account_id == account_id)).all()
        payment_entries = {p.ledger_entry_id for p in payments}
        charges = {e.id: e for e in entries if e.kind == "charge"}
        open_cents = {cid: int(e.amount_cents) for cid, e in charges.items()}
        pool = 0
        for e in entries:
            if e.kind == "charge" or e.id in payment_entries or e.id in reversal_entries:
                continue
            if e.applies_to_entry_id in open_cents:
                open_cents[e.applies_to_entry_id] += int(e.amount_cents)
            else:
                pool += int(e.amount_cents)
        per_payment: dict[uuid.UUID, int] = defaultdict(int)
        for payment_id, charge_id, cents in allocated:
            per_payment[payment_id] += int(cents)
            if charge_id in open_cents:
                open_cents[charge_id] -= int(cents)
        for p in payments:
            pool -= int(p.amount_cents) - int(p.reversed_cents) - per_payment[p.id]
        credit = -pool
        out = []
        for cid in sorted(charges, key=lambda c: (charges[c].posted_at, c)):
            cents = open_cents[cid]
            if credit > 0 and cents > 0:
                applied = min(credit, cents)
                cents -= applied
                credit -= applied
            out.append(OpenCharge(cid, charges[cid].posted_at, max(cents, 0)))
        return [c for c in out if c.open_cents > 0]

    def methods(self, session: Session, guarantor_id: uuid.UUID) -> list[SavedPaymentMethod]:
        return list(session.scalars(select(SavedPaymentMethod).where(
            SavedPaymentMethod.guarantor_id == guarantor_id,
            SavedPaymentMethod.status == "active").order_by(SavedPaymentMethod.created_at)))

    def method(self, session: Session, method_id: uuid.UUID) -> SavedPaymentMethod | None:
        return session.get(SavedPaymentMethod, method_id)

    def webhook_seen(self, session: Session, processor: str, event_id: str) -> bool:
        return session.scalar(select(WebhookEvent.id).where(
            WebhookEvent.processor == processor, WebhookEvent.event_id == event_id)) is not None


payment_repository = PaymentRepository()
