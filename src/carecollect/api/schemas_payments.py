"""Shapes of the payment-plan and payment endpoints of `/api/v1`."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class InstallmentOut(BaseModel):
    id: uuid.UUID
    sequence: int
    due_on: date
    amount_cents: int
    paid_cents: int
    status: str
    attempts: int
    paid_at: datetime | None
    missed_at: datetime | None


class PlanOut(BaseModel):
    id: uuid.UUID
    account_id: uuid.UUID
    guarantor_id: uuid.UUID
    status: str
    total_cents: int
    down_payment_cents: int
    fee_cents: int
    installment_count: int
    start_on: date
    timezone: str
    autopay: bool
    created_by: str
    misses: int
    created_at: datetime
    ended_at: datetime | None
    installments: list[InstallmentOut] | None = Field(
        default=None, description="present on a single plan, absent in lists"
    )


class PlanCreate(BaseModel):
    """A plan for an account's balance within the organization's plan policy; omitted
    terms take the policy's defaults (the longest term allowed, the minimum down
    payment)."""

    model_config = ConfigDict(extra="forbid")

    account_id: uuid.UUID
    installments: int | None = Field(default=None, ge=1, le=120)
    down_payment_cents: int | None = Field(default=None, ge=0, le=100_000_000_00)
    start_on: date | None = Field(default=None, description="default: today, local time")
    waive_down_payment: bool = False


class PlanCancel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Literal["requested_by_patient", "replaced_offline", "entered_in_error", "other"] = (
        "requested_by_patient"
    )


class AllocationOut(BaseModel):
    id: uuid.UUID
    charge_entry_id: uuid.UUID
    reversal_id: uuid.UUID | None
    amount_cents: int


class ReversalOut(BaseModel):
    id: uuid.UUID
    kind: str
    amount_cents: int
    reason: str
    created_at: datetime


class PaymentOut(BaseModel):
    id: uuid.UUID
    account_id: uuid.UUID
    guarantor_id: uuid.UUID
    processor: str
    amount_cents: int
    reversed_cents: int
    status: str
    source: str
    plan_id: uuid.UUID | None
    receipt_number: str
    received_at: datetime
    allocations: list[AllocationOut] | None = Field(
        default=None, description="present on a single payment, absent in lists"
    )
    reversals: list[ReversalOut] | None = Field(
        default=None, description="present on a single payment, absent in lists"
    )


class PaymentCreate(BaseModel):
    """Charge a payment method through the organization's processor and post it. In the
    sandbox the method is a test token (`pm_sandbox_visa`, see docs/PAYMENTS.md)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    account_id: uuid.UUID
    amount_cents: int = Field(gt=0, le=100_000_000_00)
    payment_method: str = Field(min_length=1, max_length=120, pattern=r"^[A-Za-z0-9_ -]+$")


class RefundCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount_cents: int = Field(gt=0, le=100_000_000_00)
    reason: Literal["requested_by_customer", "duplicate", "fraudulent"] = "requested_by_customer"
