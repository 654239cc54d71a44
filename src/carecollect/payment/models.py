"""Payment-domain models.

A `Payment` is one processor payment (PaymentIntent, sandbox charge) and is unique by
`(processor, processor_payment_id)`: that constraint is what makes posting idempotent,
because the ledger entry is written in the same transaction as the payment row. Each
payment's ledger credit is spread over the account's charges by `PaymentAllocation`
rows (oldest charge first unless staff or a plan say otherwise); refunds and chargebacks
are `PaymentReversal` rows that post a positive ledger entry and negative allocations.

Nothing here is clinical: amounts, ids, processor references, a card brand and its last
four digits. `WebhookEvent` is not a tenant table: a webhook arrives before we know the
organization, and its event id alone must be enough to refuse a replay.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from carecollect.kit.models import Base, IdMixin, TenantMixin, UTCDateTime, utcnow

PAYMENT_STATES = ("pending", "succeeded", "failed", "refunded", "partially_refunded",
                  "charged_back")
PAYMENT_SOURCES = ("portal", "staff", "autopay", "webhook")


class SavedPaymentMethod(IdMixin, TenantMixin, Base):
    """A card or bank account saved at the processor (SetupIntent) for autopay. We keep the
    processor's reference, brand and last four digits only: never a card number."""

    __tablename__ = "saved_payment_method"
    __table_args__ = (
        UniqueConstraint("processor", "processor_method_id"),
        Index("ix_saved_payment_method_org_guarantor", "organization_id", "guarantor_id"),
    )

    guarantor_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("guarantor.id", ondelete="CASCADE"))
    processor: Mapped[str] = mapped_column(String(16))
    processor_customer_id: Mapped[str] = mapped_column(String(120))
    processor_method_id: Mapped[str] = mapped_column(String(120))
    brand: Mapped[str] = mapped_column(String(16), default="card")
    last4: Mapped[str] = mapped_column(String(4), default="")
    exp_month: Mapped[int | None] = mapped_column(Integer, nullable=True)
    exp_year: Mapped[int | None] = mapped_column(Integer, nullable=True)
    status: Mapped[str] = mapped_column(String(16), default="active")  # active | removed
    autopay_consented_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Payment(IdMixin, TenantMixin, Base):
    __tablename__ = "payment"
    __table_args__ = (
        # The idempotency key of posting (ARCHITECTURE.md section 8): one processor payment
        # can post once, however many webhooks, retries or workers report it.
        UniqueConstraint("processor", "processor_payment_id"),
        Index("ix_payment_org_account", "organization_id", "account_id"),
    )

    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("account.id", ondelete="CASCADE"))
    guarantor_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("guarantor.id", ondelete="CASCADE"))
    processor: Mapped[str] = mapped_column(String(16))
    processor_payment_id: Mapped[str] = mapped_column(String(120))
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    reversed_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    status: Mapped[str] = mapped_column(String(24), default="succeeded")
    source: Mapped[str] = mapped_column(String(16), default="portal")
    plan_id: Mapped[uuid.UUID | None] = mapped_column(nullable=True)
    installment_id: Mapped[uuid.UUID | None] = mapped_column(nullable=True)
    payment_method_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("saved_payment_method.id", ondelete="SET NULL"), nullable=True
    )
    ledger_entry_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("ledger_entry.id", ondelete="SET NULL"), nullable=True
    )
    receipt_number: Mapped[str] = mapped_column(String(32))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class PaymentAllocation(IdMixin, TenantMixin, Base):
    """How much of a payment (positive) or of a reversal (negative) went to one charge."""

    __tablename__ = "payment_allocation"
    __table_args__ = (Index("ix_payment_allocation_org_charge", "organization_id",
                            "charge_entry_id"),)

    payment_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("payment.id", ondelete="CASCADE"),
                                                  index=True)
    reversal_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("payment_reversal.id", ondelete="CASCADE"), nullable=True
    )
    charge_entry_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("ledger_entry.id", ondelete="CASCADE")
    )
    amount_cents: Mapped[int] = mapped_column(BigInteger)


class PaymentReversal(IdMixin, TenantMixin, Base):
    """A refund or a chargeback of (part of) a payment; unique by the processor's id."""

    __tablename__ = "payment_reversal"
    __table_args__ = (UniqueConstraint("processor", "processor_reversal_id"),)

    payment_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("payment.id", ondelete="CASCADE"),
                                                  index=True)
    kind: Mapped[str] = mapped_column(String(16))  # refund | chargeback
    processor: Mapped[str] = mapped_column(String(16))
    processor_reversal_id: Mapped[str] = mapped_column(String(120))
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    reason: Mapped[str] = mapped_column(String(40), default="requested_by_customer")
    ledger_entry_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("ledger_entry.id", ondelete="SET NULL"), nullable=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class WebhookEvent(IdMixin, Base):
    """Every processor webhook event we accepted, by its event id: a replay is refused."""

    __tablename__ = "payment_webhook_event"
    __table_args__ = (UniqueConstraint("processor", "event_id"),)

    processor: Mapped[str] = mapped_column(String(16))
    event_id: Mapped[str] = mapped_column(String(120))
    event_type: Mapped[str] = mapped_column(String(64))
    organization_id: Mapped[uuid.UUID | None] = mapped_column(nullable=True)
    outcome: Mapped[str] = mapped_column(String(24))  # posted | ignored | duplicate
    signed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    livemode: Mapped[bool] = mapped_column(Boolean, default=False)


class AutopayEnrollment(IdMixin, TenantMixin, Base):
    """One autopay enrollment through a processor's hosted page (Stripe Checkout in
    `setup` mode): started in the portal (`pending`), completed by the signed webhook that
    reports the saved method (`completed`). `kind` is `enroll` (a plan's first card) or
    `replace` (a new card for a plan that has one). `consented_at` is when the payer
    ticked the autopay authorization; the saved method records it. Ids only: the
    processor's customer, checkout session and SetupIntent references."""

    __tablename__ = "autopay_enrollment"
    __table_args__ = (
        UniqueConstraint("processor", "processor_session_id"),
        Index("ix_autopay_enrollment_org_plan", "organization_id", "plan_id"),
        Index("ix_autopay_enrollment_org_guarantor", "organization_id", "guarantor_id"),
    )

    guarantor_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("guarantor.id", ondelete="CASCADE"))
    plan_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("payment_plan.id", ondelete="CASCADE"))
    processor: Mapped[str] = mapped_column(String(16))
    processor_customer_id: Mapped[str] = mapped_column(String(120))
    processor_session_id: Mapped[str] = mapped_column(String(120))
    processor_setup_id: Mapped[str | None] = mapped_column(String(120), nullable=True)
    kind: Mapped[str] = mapped_column(String(16), default="enroll")  # enroll | replace
    # pending | completed | canceled | expired
    status: Mapped[str] = mapped_column(String(16), default="pending")
    payment_method_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("saved_payment_method.id", ondelete="SET NULL"), nullable=True)
    consented_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
