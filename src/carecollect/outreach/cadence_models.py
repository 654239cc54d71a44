"""Cadence (campaign) models: multi-step sequences, per-account enrollments with A/B
variant and holdout cohort, per-account exclusions and behaviour signals.

A campaign selects accounts by balance, aging and payment-plan status; each step names its
channels in order of preference (the first is the primary, the rest fallbacks), a wait in
days, the local hour to aim for, behaviour conditions and its A/B variants. An enrollment
records the cohort and variant drawn deterministically from the campaign seed, so the
assignment can be re-derived and audited; it also carries the next step and when it is due.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from carecollect.kit.models import Base, IdMixin, TenantMixin, TimestampMixin, UTCDateTime

BEHAVIOURS = ("opened", "clicked", "replied", "paid", "promised", "plan_active",
              "plan_broken", "plan_completed")
PLAN_STATUSES = ("any", "none", "active", "broken")
ENROLLMENT_STATUSES = ("active", "paused", "completed", "stopped")
STEP_CHANNELS = ("sms", "email", "letter", "call", "voicemail")


class Campaign(IdMixin, TenantMixin, TimestampMixin, Base):
    __tablename__ = "campaign"
    __table_args__ = (UniqueConstraint("organization_id", "key"),)

    key: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(String(1000), default="")
    priority: Mapped[int] = mapped_column(Integer, default=100)  # lower is chosen first
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    min_balance_cents: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    max_balance_cents: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    min_age_days: Mapped[int | None] = mapped_column(Integer, nullable=True)
    max_age_days: Mapped[int | None] = mapped_column(Integer, nullable=True)
    plan_status: Mapped[str] = mapped_column(String(16), default="any")
    holdout_basis_points: Mapped[int] = mapped_column(Integer, default=0)  # 500 = 5 %
    seed: Mapped[str] = mapped_column(String(64))
    # Behaviours that end the cadence (e.g. paid, promised) or pause it for staff (replied).
    stop_on: Mapped[list[str]] = mapped_column(JSON, default=list)
    pause_on: Mapped[list[str]] = mapped_column(JSON, default=list)


class CampaignStep(IdMixin, TenantMixin, Base):
    __tablename__ = "campaign_step"
    __table_args__ = (UniqueConstraint("campaign_id", "position"),)

    campaign_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("campaign.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)  # 0-based
    wait_days: Mapped[int] = mapped_column(Integer, default=0)  # after the previous step
    channels: Mapped[list[str]] = mapped_column(JSON)  # primary first, then fallbacks
    send_hour: Mapped[int] = mapped_column(Integer, default=10)  # debtor's local hour
    # {"requires": [...behaviours seen...], "unless": [...]}; unmet -> step skipped.
    condition: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # [{"name": "A", "weight": 50, "templates": {"sms": "...", "email": "..."}}, ...]
    variants: Mapped[list[dict[str, Any]]] = mapped_column(JSON)


class CampaignEnrollment(IdMixin, TenantMixin, TimestampMixin, Base):
    __tablename__ = "campaign_enrollment"
    __table_args__ = (
        UniqueConstraint("campaign_id", "account_id"),
        # Covering: the planner scans due rows for their guarantor and account ids.
        Index("ix_campaign_enrollment_due", "organization_id", "status", "next_due_at",
              "guarantor_id", "account_id"),
    )

    campaign_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("campaign.id", ondelete="CASCADE"))
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("account.id", ondelete="CASCADE"))
    guarantor_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("guarantor.id",
                                                               ondelete="CASCADE"))
    cohort: Mapped[str] = mapped_column(String(16))  # treatment | holdout
    variant: Mapped[str | None] = mapped_column(String(32), nullable=True)
    enrolled_at: Mapped[datetime] = mapped_column(UTCDateTime())
    next_step: Mapped[int] = mapped_column(Integer, default=0)
    next_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    status: Mapped[str] = mapped_column(String(16), default="active")
    status_reason: Mapped[str | None] = mapped_column(String(64), nullable=True)
    status_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_planned_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class OutreachExclusion(IdMixin, TenantMixin, TimestampMixin, Base):
    """An account kept out of automated outreach (one campaign, or all when campaign_id is
    null) from `excluded_at` until `until` or until lifted."""

    __tablename__ = "outreach_exclusion"
    __table_args__ = (Index("ix_outreach_exclusion_org_account", "organization_id",
                            "account_id"),)

    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("account.id", ondelete="CASCADE"))
    campaign_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("campaign.id", ondelete="CASCADE"), nullable=True)
    reason: Mapped[str] = mapped_column(String(64))  # a code, never free text (no PHI)
    excluded_at: Mapped[datetime] = mapped_column(UTCDateTime())
    until: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    lifted_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created_by: Mapped[str | None] = mapped_column(String(80), nullable=True)


class OutreachSignal(IdMixin, TenantMixin, Base):
    """A behaviour observed on an account (opened, clicked, replied, paid, promised, plan
    status); steps and stop rules read them."""

    __tablename__ = "outreach_signal"
    __table_args__ = (Index("ix_outreach_signal_org_account", "organization_id", "account_id",
                            "occurred_at"),)

    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("account.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime())
    source: Mapped[str] = mapped_column(String(32), default="system")
    attempt_id: Mapped[uuid.UUID | None] = mapped_column(nullable=True)
