"""Shapes of the campaign (cadence) and outreach-attempt endpoints of `/api/v1`.

Nothing here carries PHI: campaigns are configuration, attempts are ids, states, rule ids
and times; an attempt's message text (inbound replies only) is masked unless the caller
may read PHI unmasked.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Channel = Literal["sms", "email", "letter", "call", "voicemail"]
Behaviour = Literal[
    "opened",
    "clicked",
    "replied",
    "paid",
    "promised",
    "plan_active",
    "plan_broken",
    "plan_completed",
]


def _default_stop() -> list[Behaviour]:
    return ["paid", "promised", "plan_active"]


def _default_pause() -> list[Behaviour]:
    return ["replied"]


class StepCondition(BaseModel):
    model_config = ConfigDict(extra="forbid")

    requires: list[Behaviour] = Field(default_factory=list, max_length=8)
    unless: list[Behaviour] = Field(default_factory=list, max_length=8)


class VariantIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str = Field(min_length=1, max_length=32)
    weight: int = Field(default=1, ge=0, le=10_000)
    templates: dict[Channel, str] = Field(
        description="template id per channel of the step (every channel needs one)"
    )


class StepIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    wait_days: int = Field(default=0, ge=0, le=365)
    channels: list[Channel] = Field(
        min_length=1, max_length=3, description="primary channel first, then fallbacks"
    )
    send_hour: int = Field(default=10, ge=0, le=23, description="the debtor's local hour")
    condition: StepCondition = Field(default_factory=StepCondition)
    variants: list[VariantIn] = Field(min_length=1, max_length=3)


class CampaignCreate(BaseModel):
    """A new campaign; it is created as a draft (paused) until activated."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    key: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")
    name: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=1000)
    priority: int = Field(default=100, ge=0, le=10_000, description="lower is chosen first")
    min_balance_cents: int | None = Field(default=None, ge=0, le=100_000_000_00)
    max_balance_cents: int | None = Field(default=None, ge=0, le=100_000_000_00)
    min_age_days: int | None = Field(default=None, ge=0, le=36_500)
    max_age_days: int | None = Field(default=None, ge=0, le=36_500)
    plan_status: Literal["any", "none", "active", "broken"] = "any"
    holdout_basis_points: int = Field(default=0, ge=0, le=10_000)
    stop_on: list[Behaviour] = Field(default_factory=_default_stop, max_length=8)
    pause_on: list[Behaviour] = Field(default_factory=_default_pause, max_length=8)
    steps: list[StepIn] = Field(min_length=1, max_length=12)


class StepOut(BaseModel):
    position: int
    wait_days: int
    channels: list[str]
    send_hour: int
    condition: dict[str, Any]
    variants: list[dict[str, Any]]


class CampaignOut(BaseModel):
    id: uuid.UUID
    key: str
    name: str
    description: str
    priority: int
    active: bool
    min_balance_cents: int | None
    max_balance_cents: int | None
    min_age_days: int | None
    max_age_days: int | None
    plan_status: str
    holdout_basis_points: int
    stop_on: list[str]
    pause_on: list[str]
    enrollments: dict[str, int]
    steps: list[StepOut] | None = Field(
        default=None, description="present on a single campaign, absent in lists"
    )


class DryRunIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    at: datetime | None = Field(default=None, description="the instant simulated (default now)")
    sample: int | None = Field(default=None, ge=1, le=2_000)


class RuleOut(BaseModel):
    rule_id: str
    title: str
    citation: str


class DryRunRowOut(BaseModel):
    """One simulated decision. `account_id`/`guarantor_id` are given only to callers who
    may read accounts (each person listed is an audited read)."""

    account_id: uuid.UUID | None
    guarantor_id: uuid.UUID | None
    step: int
    cohort: str
    variant: str | None
    outcome: str
    channel: str | None
    template_id: str | None
    proposed_at: datetime
    scheduled_for: datetime | None
    local_zone: str
    reasons: list[RuleOut]
    tried: list[dict[str, Any]]


class DryRunOut(BaseModel):
    campaign_id: uuid.UUID
    at: datetime
    due_total: int
    simulated: int
    sampled: bool
    outcome_totals: dict[str, int]
    rule_totals: list[dict[str, Any]]
    rows: list[DryRunRowOut]


class AttemptOut(BaseModel):
    id: uuid.UUID
    guarantor_id: uuid.UUID
    account_id: uuid.UUID | None
    contact_point_id: uuid.UUID | None
    channel: str
    template_key: str
    language: str
    cadence_key: str | None
    step_key: str | None
    state: str
    scheduled_for: datetime
    created_at: datetime
    updated_at: datetime
    sent_at: datetime | None
    delivery_status: str | None
    error_code: str | None


class ComplianceDecisionOut(BaseModel):
    """The compliance engine's decision on an attempt: its outcome, the rule ids it met
    (with title and citation) and when the attempt may next be made."""

    outcome: Literal["allowed", "blocked", "retimed", "pending", "failed", "cancelled"]
    rules: list[RuleOut]
    next_allowed_at: datetime | None


class AttemptDetailOut(AttemptOut):
    decision: ComplianceDecisionOut
    contact_event_id: uuid.UUID | None
    contact_outcome: str | None
    message_text: str | None = Field(
        description="stored message text (inbound replies only); masked without permission "
        "to read PHI unmasked, null when none is stored"
    )
    masked: bool
