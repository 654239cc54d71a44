"""Payment rules: validate amounts, call the processor, post to the ledger idempotently
with allocation, reverse refunds and chargebacks, accept webhooks exactly once, and
queue receipts.

Posting is keyed by the processor's payment id: the `payment` row (unique on
`(processor, processor_payment_id)`) and its ledger credit are written in one transaction,
so a webhook, the portal's own confirmation and an autopay retry that all report the same
payment post it once. A concurrent duplicate loses on the unique constraint inside a
savepoint and returns the row the winner wrote.

Processor calls are the one side effect made inline (the patient is waiting for the
answer); they carry idempotency keys, so a retried request cannot charge twice.
"""

from __future__ import annotations

import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from carecollect.audit import Actor, Subject, record
from carecollect.db import Database
from carecollect.errors import BadInput, Forbidden, NotFound
from carecollect.integration.service import emit_event
from carecollect.kit.crypto.keys import OrganizationKeys
from carecollect.kit.ids import uuid7
from carecollect.kit.jobs.sessions import write_locked_session
from carecollect.kit.models import utcnow
from carecollect.ledger.models import Account
from carecollect.ledger.service import MAX_ENTRY_CENTS, ledger_service
from carecollect.payment import processor as proc
from carecollect.payment.allocation import allocate, unallocate
from carecollect.payment.models import (
    Payment,
    PaymentAllocation,
    PaymentReversal,
    SavedPaymentMethod,
    WebhookEvent,
)
from carecollect.payment.processor import PaymentProcessor, PaymentSession, WebhookRejected
from carecollect.payment.repository import payment_repository
from carecollect.tenant.models import BusinessAssociate, Organization

RECEIPT_JOB = "payment.send_receipt"
_AMOUNT_RE = re.compile(r"^\$?\s*(\d{1,3}(,\d{3})+|\d+)?(\.\d{0,2})?$")


# -- amounts ------------------------------------------------------------------------------
def parse_amount_cents(value: str | int | Decimal) -> int:
    """Dollars as typed ("25", "25.5", "$1,025.50") or whole cents as an int; refuses
    negative, zero, non-numeric and over-precise amounts with a message for the payer."""
    if isinstance(value, bool):
        raise BadInput("Enter an amount in dollars and cents, like 25.00.")
    if isinstance(value, int):
        cents = value
    elif isinstance(value, Decimal):
        if not value.is_finite() or value != value.quantize(Decimal("0.01")):
            raise BadInput("Enter an amount in dollars and cents, like 25.00.")
        cents = int(value * 100)
    else:
        text = value.strip()
        if text.startswith(("-", "$-")):
            raise BadInput("The amount must be more than zero.")
        if not text or not _AMOUNT_RE.match(text) or not re.search(r"\d", text):
            raise BadInput("Enter an amount in dollars and cents, like 25.00.")
        try:
            cents = int(Decimal(text.lstrip("$").strip().replace(",", "") or "0") * 100)
        except InvalidOperation:
            raise BadInput("Enter an amount in dollars and cents, like 25.00.") from None
    if cents <= 0:
        raise BadInput("The amount must be more than zero.")
    if cents > MAX_ENTRY_CENTS:
        raise BadInput("The amount is too large.")
    return cents


def check_amount_against_balance(amount_cents: int, balance_cents: int) -> None:
    if balance_cents <= 0:
        raise BadInput("There is nothing to pay on this account.")
    if amount_cents > balance_cents:
        # The message never states the balance: errors are shown and logged PHI-free.
        raise BadInput("The amount is more than what is owed on this account.")


# -- the BAA gate -------------------------------------------------------------------------
def require_processor_baa(session: Session, processor: PaymentProcessor, on: datetime) -> None:
    """HIPAA-BAA (45 CFR 164.502(e)): an off-machine processor is a business associate;
    it is used only while a `payments` BAA is active. The sandbox sends nothing out."""
    if not processor.offsite:
        return
    vendors = session.scalars(select(BusinessAssociate).where(
        BusinessAssociate.service == "payments"))
    if not any(v.baa_is_active(on.date()) for v in vendors):
        raise Forbidden("payments are unavailable: no active business associate agreement "
                        "with the payment processor")


def account_of(session: Session, account_id: uuid.UUID,
               for_guarantor: uuid.UUID | None = None) -> Account:
    """The account, or NotFound; with `for_guarantor`, only that guarantor's account."""
    account = session.get(Account, account_id)
    if account is None or (for_guarantor is not None and account.guarantor_id != for_guarantor):
        raise NotFound("no such account")
    return account


def payments_of(session: Session, guarantor_id: uuid.UUID) -> list[Payment]:
    """A guarantor's payments, oldest first (the portal's receipts list)."""
    return payment_repository.for_guarantor(session, guarantor_id)


# -- results ------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class PostResult:
    payment: Payment
    created: bool


@dataclass(frozen=True, slots=True)
class ReversalResult:
    reversal: PaymentReversal
    created: bool


def _metadata(org_id: uuid.UUID, account: Account, **extra: Any) -> dict[str, str]:
    # Ids only: the processor learns which of our records a payment belongs to, nothing
    # about the person or the care.
    out = {"organization_id": str(org_id), "account_id": str(account.id),
           "guarantor_id": str(account.guarantor_id)}
    out.update({k: str(v) for k, v in extra.items() if v is not None})
    return out


def _receipt_number() -> str:
    return "R-" + secrets.token_hex(5).upper()


class PaymentService:
    # -- starting payments ----------------------------------------------------------------
    def start_payment(
        self,
        session: Session,
        *,
        keys: OrganizationKeys,
        actor: Actor,
        processor: PaymentProcessor,
        account_id: uuid.UUID,
        amount: str | int | Decimal,
        idempotency_key: str,
        payment_method: str | None = None,
        source: str = "portal",
        allocation: dict[uuid.UUID, int] | None = None,
        now: datetime | None = None,
        for_guarantor: uuid.UUID | None = None,
    ) -> tuple[PaymentSession, Payment | None]:
        """Validate the amount against the balance and ask the processor for a payment.

        Without `payment_method` the result carries a client secret for the processor's
        hosted fields, and posting happens on the `payment_intent.succeeded` webhook. With
        a method token (sandbox, or a Stripe PaymentMethod id from the Payment Element) the
        payment is confirmed now and posted at once when it succeeds. The portal passes
        `for_guarantor` (the verified session's guarantor): another guarantor's account
        answers exactly like a missing one."""
        now = now or utcnow()
        account = account_of(session, account_id, for_guarantor)
        amount_cents = parse_amount_cents(amount)
        check_amount_against_balance(amount_cents,
                                     ledger_service.balance_cents(session, account_id=account_id))
        require_processor_baa(session, processor, now)
        org = session.get(Organization, keys.organization_id)
        try:
            result = processor.create_payment(
                amount_cents=amount_cents,
                idempotency_key=idempotency_key,
                metadata=_metadata(keys.organization_id, account, source=source),
                payment_method=payment_method,
                statement_descriptor=org.billing_display_name if org else None,
            )
        except proc.PaymentDeclined as exc:
            # Stripe raises on a declined confirmation, the sandbox answers "failed":
            # callers see one shape either way.
            result = PaymentSession("", "failed", amount_cents, failure_code=exc.code)
        if result.status != "succeeded":
            if result.status == "failed":
                record(session, actor=actor, action="payment.attempt", outcome="failure",
                       subject=Subject("account", account_id,
                                       organization_id=keys.organization_id,
                                       patient_id=account.guarantor_id),
                       details={"code": result.failure_code or "failed", "source": source})
            return result, None
        posted = self.record_payment(
            session, keys=keys, actor=actor, processor=processor.name,
            processor_payment_id=result.processor_payment_id, account_id=account_id,
            amount_cents=result.amount_cents, received_at=now, source=source,
            allocation=allocation)
        return result, posted.payment

    # -- posting --------------------------------------------------------------------------
    def record_payment(
        self,
        session: Session,
        *,
        keys: OrganizationKeys,
        actor: Actor,
        processor: str,
        processor_payment_id: str,
        account_id: uuid.UUID,
        amount_cents: int,
        received_at: datetime,
        source: str = "portal",
        allocation: dict[uuid.UUID, int] | None = None,
        prefer_charges: tuple[uuid.UUID, ...] = (),
        plan_id: uuid.UUID | None = None,
        installment_id: uuid.UUID | None = None,
        payment_method_id: uuid.UUID | None = None,
        send_receipt: bool = True,
    ) -> PostResult:
        """Post a succeeded processor payment once; a repeat returns the first posting."""
        existing = payment_repository.by_processor_id(session, processor, processor_payment_id)
        if existing is not None:
            return PostResult(existing, False)
        if type(amount_cents) is not int or amount_cents <= 0:
            raise BadInput("The amount must be more than zero.")
        account = session.get(Account, account_id)
        if account is None:
            raise NotFound("no such account")
        open_charges = payment_repository.open_charges(session, account_id)
        split = allocate(open_charges, amount_cents, explicit=allocation, prefer=prefer_charges)
        try:
            with session.begin_nested():
                payment = Payment(
                    id=uuid7(), organization_id=keys.organization_id, account_id=account_id,
                    guarantor_id=account.guarantor_id, processor=processor,
                    processor_payment_id=processor_payment_id, amount_cents=amount_cents,
                    reversed_cents=0, status="succeeded", source=source, plan_id=plan_id,
                    installment_id=installment_id, payment_method_id=payment_method_id,
                    receipt_number=_receipt_number(), received_at=received_at,
                    created_at=utcnow(),
                )
                session.add(payment)
                session.flush()
        except IntegrityError:
            # Another worker or webhook posted the same processor payment concurrently.
            again = payment_repository.by_processor_id(session, processor, processor_payment_id)
            if again is None:
                raise
            return PostResult(again, False)
        entry = ledger_service.post(
            session, keys=keys, actor=actor, account_id=account_id, kind="patient_payment",
            amount_cents=amount_cents, posted_at=received_at,
            external_reference=f"{processor}:{processor_payment_id}"[:120],
        )
        payment.ledger_entry_id = entry.id
        for charge_id, cents in split:
            session.add(PaymentAllocation(id=uuid7(), organization_id=keys.organization_id,
                                          payment_id=payment.id, charge_entry_id=charge_id,
                                          amount_cents=cents))
        session.flush()
        record(session, actor=actor, action="payment.post",
               subject=Subject("payment", payment.id, organization_id=keys.organization_id,
                               patient_id=account.guarantor_id),
               details={"account_id": str(account_id), "amount_cents": amount_cents,
                        "processor": processor, "source": source,
                        "allocated_cents": sum(c for _, c in split),
                        "charges": len(split)})
        emit_event(session, organization_id=keys.organization_id, type="payment.succeeded",
                   data={"payment_id": payment.id, "account_id": account_id,
                         "plan_id": plan_id, "amount_cents": amount_cents,
                         "received_at": received_at})
        if send_receipt:
            enqueue_receipt(session, payment)
        _signal(session, keys.organization_id, account_id, "paid", received_at)
        return PostResult(payment, True)

    # -- refunds and chargebacks ----------------------------------------------------------
    def refund(
        self,
        session: Session,
        *,
        keys: OrganizationKeys,
        actor: Actor,
        processor: PaymentProcessor,
        payment_id: uuid.UUID,
        amount: str | int | Decimal,
        reason: str = "requested_by_customer",
        now: datetime | None = None,
    ) -> ReversalResult:
        """Staff refund: ask the processor, then post the reversal."""
        now = now or utcnow()
        payment = payment_repository.get(session, payment_id)
        if payment is None:
            raise NotFound("no such payment")
        amount_cents = parse_amount_cents(amount)
        if amount_cents > payment.amount_cents - payment.reversed_cents:
            raise BadInput("The refund is more than what is left of this payment.")
        if payment.processor != processor.name:
            raise BadInput("this payment belongs to another processor")
        require_processor_baa(session, processor, now)
        result = processor.refund(
            processor_payment_id=payment.processor_payment_id, amount_cents=amount_cents,
            idempotency_key=f"refund:{payment.id}:{payment.reversed_cents}:{amount_cents}",
            reason=reason)
        if result.status == "failed":
            raise proc.ProcessorError("refund_failed")
        return self.record_reversal(
            session, keys=keys, actor=actor, processor=processor.name, kind="refund",
            processor_reversal_id=result.processor_refund_id,
            processor_payment_id=payment.processor_payment_id, amount_cents=amount_cents,
            reason=reason, at=now)

    def record_reversal(
        self,
        session: Session,
        *,
        keys: OrganizationKeys,
        actor: Actor,
        processor: str,
        kind: str,
        processor_reversal_id: str,
        processor_payment_id: str,
        amount_cents: int,
        at: datetime,
        reason: str = "requested_by_customer",
    ) -> ReversalResult:
        """Post a refund or chargeback once (unique by the processor's reversal id): a
        positive ledger entry, negative allocations newest charge first."""
        if kind not in ("refund", "chargeback"):
            raise BadInput("a reversal is a refund or a chargeback")
        existing = payment_repository.reversal_by_processor_id(session, processor,
                                                               processor_reversal_id)
        if existing is not None:
            return ReversalResult(existing, False)
        payment = payment_repository.by_processor_id(session, processor, processor_payment_id)
        if payment is None:
            raise NotFound("no such payment")
        left = payment.amount_cents - payment.reversed_cents
        if amount_cents <= 0 or amount_cents > left:
            raise BadInput("The reversal is more than what is left of this payment.")
        net = payment_repository.net_allocations(session, payment.id)
        unallocated = left - sum(c for _, _, c in net)
        undo = unallocate(net, unallocated, amount_cents)
        try:
            with session.begin_nested():
                reversal = PaymentReversal(
                    id=uuid7(), organization_id=keys.organization_id, payment_id=payment.id,
                    kind=kind, processor=processor, processor_reversal_id=processor_reversal_id,
                    amount_cents=amount_cents, reason=reason[:40], created_at=utcnow())
                session.add(reversal)
                session.flush()
        except IntegrityError:
            again = payment_repository.reversal_by_processor_id(session, processor,
                                                                processor_reversal_id)
            if again is None:
                raise
            return ReversalResult(again, False)
        # A refund and a chargeback both put the money back on the account: Reg F
        # REGF-UNAUTH-AMOUNT forbids adding a chargeback fee unless the agreement allows it,
        # so none is added here.
        entry = ledger_service.post(
            session, keys=keys, actor=actor, account_id=payment.account_id, kind="refund",
            amount_cents=amount_cents, posted_at=at,
            external_reference=f"{processor}:{kind}:{processor_reversal_id}"[:120])
        reversal.ledger_entry_id = entry.id
        for charge_id, cents in undo:
            session.add(PaymentAllocation(id=uuid7(), organization_id=keys.organization_id,
                                          payment_id=payment.id, reversal_id=reversal.id,
                                          charge_entry_id=charge_id, amount_cents=cents))
        payment.reversed_cents += amount_cents
        if kind == "chargeback":
            payment.status = "charged_back"
        else:
            payment.status = ("refunded" if payment.reversed_cents == payment.amount_cents
                              else "partially_refunded")
        session.flush()
        record(session, actor=actor, action="payment.refund" if kind == "refund"
               else "payment.chargeback",
               subject=Subject("payment", payment.id, organization_id=keys.organization_id,
                               patient_id=payment.guarantor_id),
               details={"reversal_id": str(reversal.id), "amount_cents": amount_cents,
                        "kind": kind, "processor": processor})
        emit_event(session, organization_id=keys.organization_id,
                   type="payment.refunded" if kind == "refund" else "payment.charged_back",
                   data={"payment_id": payment.id, "reversal_id": reversal.id,
                         "account_id": payment.account_id, "amount_cents": amount_cents,
                         "reversed_cents": payment.reversed_cents, "status": payment.status,
                         "reversed_at": at})
        return ReversalResult(reversal, True)

    # -- saved methods (autopay) ----------------------------------------------------------
    def save_method(
        self,
        session: Session,
        *,
        keys: OrganizationKeys,
        actor: Actor,
        processor: PaymentProcessor,
        guarantor_id: uuid.UUID,
        processor_method_id: str,
        autopay_consent: bool,
        now: datetime | None = None,
    ) -> SavedPaymentMethod:
        """Store a method the processor saved (SetupIntent succeeded). Autopay needs the
        payer's express authorization (Reg E 12 CFR 1005.10(b) for bank debits, card
        network rules for cards); `autopay_consent` records when it was given."""
        now = now or utcnow()
        details = processor.method_details(processor_method_id)
        existing = session.scalar(select(SavedPaymentMethod).where(
            SavedPaymentMethod.processor == processor.name,
            SavedPaymentMethod.processor_method_id == processor_method_id))
        if existing is not None:
            if existing.guarantor_id != guarantor_id:
                raise Forbidden("this payment method belongs to someone else")
            return existing
        method = SavedPaymentMethod(
            id=uuid7(), organization_id=keys.organization_id, guarantor_id=guarantor_id,
            processor=processor.name, processor_customer_id=details.customer_id,
            processor_method_id=details.processor_method_id, brand=details.brand[:16],
            last4=details.last4[-4:], exp_month=details.exp_month, exp_year=details.exp_year,
            status="active", autopay_consented_at=now if autopay_consent else None,
            created_at=now)
        session.add(method)
        session.flush()
        record(session, actor=actor, action="payment_method.create",
               subject=Subject("saved_payment_method", method.id,
                               organization_id=keys.organization_id, patient_id=guarantor_id),
               details={"processor": processor.name, "autopay": autopay_consent})
        return method

    def setup_method(
        self,
        session: Session,
        *,
        keys: OrganizationKeys,
        actor: Actor,
        processor: PaymentProcessor,
        guarantor_id: uuid.UUID,
        idempotency_key: str,
        payment_method: str | None = None,
        autopay_consent: bool = True,
        now: datetime | None = None,
    ) -> tuple[proc.SetupSession, SavedPaymentMethod | None]:
        """Start (or, with a method token, complete) saving a method for autopay."""
        now = now or utcnow()
        require_processor_baa(session, processor, now)
        customer = processor.create_customer(
            idempotency_key=f"customer:{guarantor_id}",
            metadata={"organization_id": str(keys.organization_id),
                      "guarantor_id": str(guarantor_id)})
        setup = processor.save_payment_method(
            customer_id=customer, idempotency_key=idempotency_key,
            metadata={"organization_id": str(keys.organization_id),
                      "guarantor_id": str(guarantor_id)},
            payment_method=payment_method)
        if setup.status != "succeeded" or setup.payment_method_id is None:
            return setup, None
        method = self.save_method(session, keys=keys, actor=actor, processor=processor,
                                  guarantor_id=guarantor_id,
                                  processor_method_id=setup.payment_method_id,
                                  autopay_consent=autopay_consent, now=now)
        return setup, method

    # -- webhooks -------------------------------------------------------------------------
    def handle_webhook(
        self,
        db: Database,
        *,
        keys_for: Any,
        processor: PaymentProcessor,
        payload: bytes,
        signature_header: str | None,
        now: datetime | None = None,
    ) -> str:
        """Verify, refuse replays, and post. Returns the outcome (`posted`, `ignored`).

        `keys_for(organization_id)` returns that organization's `OrganizationKeys`. The
        event id is stored in the same transaction as the posting, so a replay (same
        event id) is refused and a crash leaves neither."""
        now = now or utcnow()
        event = processor.parse_webhook(payload, signature_header, now=now)
        org_text = event.metadata.get("organization_id")
        try:
            org_id = uuid.UUID(org_text) if org_text else None
        except ValueError:
            org_id = None
        if org_id is None and event.payment_id:
            with db.system_session() as session:
                org_id = payment_repository.organization_of_payment(
                    session, processor.name, event.payment_id)
        if org_id is None:
            with db.system_session() as session:
                self._remember_event(session, processor.name, event, None, "ignored")
            return "ignored"
        prepared = None
        from carecollect.payment import autopay

        if event.type in autopay.SETUP_EVENTS:
            # Autopay enrollment (payment/autopay.py): ask the processor for the saved
            # method before the transaction, never while holding the write lock. A replay
            # is refused first, so it calls nothing.
            with db.system_session() as session:
                if payment_repository.webhook_seen(session, processor.name, event.event_id):
                    raise WebhookRejected("replayed")
            prepared = autopay.prepare_setup_event(processor, event)
        keys = keys_for(org_id)
        # SQLite: take the write lock up front so two deliveries of one event serialize
        # instead of failing to upgrade a read lock (PostgreSQL: the unique index decides).
        with write_locked_session(db, org_id) as session:
            self._remember_event(session, processor.name, event, org_id, "pending")
            outcome = self._apply_event(session, keys, processor.name, event, now,
                                        prepared=prepared)
            row = session.scalar(select(WebhookEvent).where(
                WebhookEvent.processor == processor.name,
                WebhookEvent.event_id == event.event_id))
            if row is not None:
                row.outcome = outcome
        return outcome

    @staticmethod
    def _remember_event(session: Session, processor: str, event: proc.WebhookEventData,
                        org_id: uuid.UUID | None, outcome: str) -> None:
        if payment_repository.webhook_seen(session, processor, event.event_id):
            raise WebhookRejected("replayed")
        try:
            with session.begin_nested():
                session.add(WebhookEvent(
                    id=uuid7(), processor=processor, event_id=event.event_id[:120],
                    event_type=event.type[:64], organization_id=org_id, outcome=outcome,
                    signed_at=event.signed_at, received_at=utcnow(), livemode=event.livemode))
                session.flush()
        except IntegrityError:
            raise WebhookRejected("replayed") from None

    def _apply_event(self, session: Session, keys: OrganizationKeys, processor: str,
                     event: proc.WebhookEventData, now: datetime,
                     prepared: Any = None) -> str:
        actor = Actor.webhook(processor)
        meta = event.metadata
        from carecollect.payment import autopay

        if event.type in autopay.SETUP_EVENTS:
            return autopay.apply_setup_event(session, processor_name=processor, event=event,
                                             prepared=prepared, now=now)
        if event.type == proc.PAYMENT_SUCCEEDED:
            try:
                account_id = uuid.UUID(meta.get("account_id", ""))
            except ValueError:
                return "ignored"
            if session.get(Account, account_id) is None:
                return "ignored"
            plan_id = _uuid_or_none(meta.get("plan_id"))
            installment_id = _uuid_or_none(meta.get("installment_id"))
            result = self.record_payment(
                session, keys=keys, actor=actor, processor=processor,
                processor_payment_id=event.object_id, account_id=account_id,
                amount_cents=event.amount_cents, received_at=event.created_at,
                source=meta.get("source", "webhook")[:16], plan_id=plan_id,
                installment_id=installment_id)
            return "posted" if result.created else "duplicate"
        if event.type in (proc.REFUND_SUCCEEDED, proc.DISPUTE_CREATED):
            if not event.payment_id or event.amount_cents <= 0:
                return "ignored"
            kind = "refund" if event.type == proc.REFUND_SUCCEEDED else "chargeback"
            if payment_repository.by_processor_id(session, processor, event.payment_id) is None:
                return "ignored"
            reversal = self.record_reversal(
                session, keys=keys, actor=actor, processor=processor, kind=kind,
                processor_reversal_id=event.object_id, processor_payment_id=event.payment_id,
                amount_cents=event.amount_cents, at=event.created_at,
                reason=str(event.raw.get("data", {}).get("object", {}).get("reason")
                           or kind)[:40])
            return "posted" if reversal.created else "duplicate"
        return "ignored"


def _uuid_or_none(text: str | None) -> uuid.UUID | None:
    if not text:
        return None
    try:
        return uuid.UUID(text)
    except ValueError:
        return None


def enqueue_receipt(session: Session, payment: Payment) -> None:
    """Queue the receipt e-mail (job `payment.send_receipt`, one per payment)."""
    from carecollect.kit.jobs import enqueue

    # Due from the moment the payment was received (jobs run on the worker's clock).
    enqueue(session, RECEIPT_JOB, {"payment_id": str(payment.id)}, queue="outreach",
            organization_id=payment.organization_id, max_attempts=8,
            scheduled_at=payment.received_at, unique_key=f"receipt:{payment.id}")


def _signal(session: Session, org_id: uuid.UUID, account_id: uuid.UUID, kind: str,
            at: datetime) -> None:
    """Tell the outreach cadences what happened (a payment stops a reminder cadence)."""
    try:
        from carecollect.outreach.cadence import cadence_service
    except ImportError:  # the cadence module is not installed in this build
        return
    cadence_service.record_signal(session, organization_id=org_id, account_id=account_id,
                                  kind=kind, occurred_at=at, source="payment")


payment_service = PaymentService()
