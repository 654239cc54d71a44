"""Payment-plan models: the organization's policy, plans, their installments and every
autopay charge attempt.

`ChargeAttempt` is the exactly-once device of autopay: one row per (installment, attempt
number), unique, carrying the idempotency key sent to the processor. Two workers racing
on the same installment collide on that row; a worker that crashed after the processor
charged but before recording leaves the row `started`, and the re-run repeats the call
with the same key, which the processor answers with the first charge.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from carecollect.kit.models import Base, IdMixin, TenantMixin, TimestampMixin, UTCDateTime

PLAN_STATES = ("active", "paused", "completed", "defaulted", "cancelled", "replaced")
INSTALLMENT_STATES = ("scheduled", "paid", "missed", "cancelled")


class PlanPolicy(IdMixin, TenantMixin, TimestampMixin, Base):
    """An organization's bounds for payment plans (one active policy per key)."""

    __tablename__ = "plan_policy"
    __table_args__ = (UniqueConstraint("organization_id", "key"),)

    key: Mapped[str] = mapped_column(String(32), default="default")
    min_down_payment_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    min_down_payment_bps: Mapped[int] = mapped_column(Integer, default=0)  # of the balance
    min_installment_cents: Mapped[int] = mapped_column(BigInteger, default=2500)
    # [{"up_to_cents": 50000, "max_months": 6}, ..., {"up_to_cents": null, "max_months": 24}]
    term_tiers: Mapped[list[dict[str, int | None]]] = mapped_column(JSON, default=list)
    interest_bps: Mapped[int] = mapped_column(Integer, default=0)
    setup_fee_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    fee_authorized_by_agreement: Mapped[bool] = mapped_column(Boolean, default=False)
    grace_days: Mapped[int] = mapped_column(Integer, default=10)
    retry_days: Mapped[list[int]] = mapped_column(JSON, default=list)  # after the due date
    misses_to_default: Mapped[int] = mapped_column(Integer, default=2)
    allow_self_service: Mapped[bool] = mapped_column(Boolean, default=True)
    autopay_hour_local: Mapped[int] = mapped_column(Integer, default=9)


class PaymentPlan(IdMixin, TenantMixin, TimestampMixin, Base):
    __tablename__ = "payment_plan"
    __table_args__ = (Index("ix_payment_plan_org_account", "organization_id", "account_id"),)

    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("account.id", ondelete="CASCADE"))
    guarantor_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("guarantor.id", ondelete="CASCADE"))
    policy_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("plan_policy.id", ondelete="SET NULL"), nullable=True)
    status: Mapped[str] = mapped_column(String(16), default="active")
    total_cents: Mapped[int] = mapped_column(BigInteger)
    down_payment_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    fee_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    interest_bps: Mapped[int] = mapped_column(Integer, default=0)
    installment_count: Mapped[int] = mapped_column(Integer)
    start_on: Mapped[date] = mapped_column(Date)
    timezone: Mapped[str] = mapped_column(String(64))
    autopay: Mapped[bool] = mapped_column(Boolean, default=False)
    payment_method_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("saved_payment_method.id", ondelete="SET NULL"), nullable=True)
    created_by: Mapped[str] = mapped_column(String(16))  # staff | patient
    charge_entry_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    misses: Mapped[int] = mapped_column(Integer, default=0)
    state_code: Mapped[str | None] = mapped_column(String(2), nullable=True)
    ca_medical_debt_term: Mapped[bool] = mapped_column(Boolean, default=False)
    paused_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    pause_reason: Mapped[str | None] = mapped_column(String(32), nullable=True)
    replaced_by_id: Mapped[uuid.UUID | None] = mapped_column(nullable=True)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class PlanInstallment(IdMixin, TenantMixin, Base):
    __tablename__ = "plan_installment"
    __table_args__ = (
        UniqueConstraint("plan_id", "sequence"),
        Index("ix_plan_installment_org_due", "organization_id", "status", "due_on"),
    )

    plan_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("payment_plan.id", ondelete="CASCADE"))
    sequence: Mapped[int] = mapped_column(Integer)  # 0 is the down payment, when there is one
    due_on: Mapped[date] = mapped_column(Date)
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    paid_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    status: Mapped[str] = mapped_column(String(16), default="scheduled")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    missed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class ChargeAttempt(IdMixin, TenantMixin, Base):
    __tablename__ = "plan_charge_attempt"
    __table_args__ = (UniqueConstraint("installment_id", "attempt_number"),)

    installment_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("plan_installment.id", ondelete="CASCADE"), index=True)
    attempt_number: Mapped[int] = mapped_column(Integer)
    idempotency_key: Mapped[str] = mapped_column(String(120), unique=True)
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    # started | succeeded | declined | error
    state: Mapped[str] = mapped_column(String(16), default="started")
    processor_payment_id: Mapped[str | None] = mapped_column(String(120), nullable=True)
    failure_code: Mapped[str | None] = mapped_column(String(40), nullable=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
