"""Insights models: the rebuildable rollup of per-account contributions, its watermark,
and the organization's insight settings (channel costs, agency threshold).

The rollup is an accelerator, never the source of truth: a report adds, to the stored
cells, the contributions of every account touched since the watermark, recomputed from the
ledger; dropping every row here changes no figure, only the time a report takes.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import BigInteger, Date, ForeignKey, Index, Integer, String, Text, Uuid, text
from sqlalchemy.orm import Mapped, mapped_column

from carecollect.kit.models import Base, IdMixin, TenantMixin, TimestampMixin, UTCDateTime
from carecollect.ledger.models import LedgerEntry
from carecollect.outreach.cadence_models import CampaignEnrollment
from carecollect.outreach.outbox import OutreachAttempt

CHANNELS = ("sms", "email", "letter", "call", "voicemail")


class RollupCell(IdMixin, TenantMixin, Base):
    """Sum of the per-account contributions for one (metric, period, location, bucket)."""

    __tablename__ = "insight_rollup_cell"
    __table_args__ = (
        Index("ix_insight_rollup_cell_lookup", "organization_id", "metric", "period",
              "location_id", "bucket", unique=True),
    )

    metric: Mapped[str] = mapped_column(String(24))
    period: Mapped[date] = mapped_column(Date)
    # Null when the account has no location (a unique index treats nulls as distinct on
    # PostgreSQL, so the rollup writer never relies on it for accounts without a location).
    location_id: Mapped[uuid.UUID | None] = mapped_column(Uuid(), nullable=True)
    bucket: Mapped[str] = mapped_column(String(64))
    amount_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    count: Mapped[int] = mapped_column(BigInteger, default=0)


class RollupState(TenantMixin, Base):
    """One row per organization: what the cells cover.

    ``watermark_at``: cells hold exactly the contributions computed from ledger lines and
    enrollments *created* before it. ``aging_days``: the as-of days the aging cells exist
    for (comma-separated ISO dates); other as-of days are computed live.
    """

    __tablename__ = "insight_rollup_state"

    organization_id: Mapped[uuid.UUID] = mapped_column(
        Uuid(), ForeignKey("organization.id", ondelete="CASCADE"), primary_key=True
    )
    watermark_at: Mapped[datetime] = mapped_column(UTCDateTime())
    aging_days: Mapped[str] = mapped_column(Text, default="")
    agency_threshold_days: Mapped[int] = mapped_column(Integer, default=120)
    zone: Mapped[str] = mapped_column(String(64))
    rebuilt_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class InsightSettings(TenantMixin, TimestampMixin, Base):
    """Organization-level settings of the insights domain."""

    __tablename__ = "insight_settings"

    organization_id: Mapped[uuid.UUID] = mapped_column(
        Uuid(), ForeignKey("organization.id", ondelete="CASCADE"), primary_key=True
    )
    # Days past a charge's posting after which the practice would place the account with a
    # collection agency; the "recovered in-house" metric counts from that day.
    agency_threshold_days: Mapped[int] = mapped_column(Integer, default=120)


class ChannelCost(IdMixin, TenantMixin, TimestampMixin, Base):
    """What one outreach attempt on a channel costs, from a date on (the latest row whose
    `effective_on` is on or before the attempt's day applies). Thousandths of a cent, since
    one text message costs less than a cent."""

    __tablename__ = "insight_channel_cost"
    __table_args__ = (
        Index("ix_insight_channel_cost_org_channel", "organization_id", "channel",
              "effective_on", unique=True),
    )

    channel: Mapped[str] = mapped_column(String(16))
    effective_on: Mapped[date] = mapped_column(Date)
    cost_per_attempt_millicents: Mapped[int] = mapped_column(BigInteger)


# Indexes on other domains' tables that the insight queries need: the rollup finds the
# accounts touched since its watermark, the outreach metrics scan attempts by period.
LEDGER_CREATED_INDEX = Index(
    "ix_ledger_entry_org_created", LedgerEntry.organization_id, LedgerEntry.created_at
)
ENROLLMENT_CREATED_INDEX = Index(
    "ix_campaign_enrollment_org_created",
    CampaignEnrollment.organization_id,
    CampaignEnrollment.created_at,
)
ATTEMPT_SCHEDULED_INDEX = Index(
    "ix_outreach_attempt_org_scheduled",
    OutreachAttempt.organization_id,
    OutreachAttempt.scheduled_for,
)
LEDGER_KIND_POSTED_INDEX = Index(
    "ix_ledger_entry_org_kind_posted",
    LedgerEntry.organization_id,
    LedgerEntry.kind,
    LedgerEntry.posted_at,
)
# Partial: only attempts the compliance engine blocked or the planner re-timed (a small
# share of all attempts), so the compliance report reads those and nothing else.
FLAGGED_ATTEMPT_PREDICATE = "state = 'blocked' OR next_allowed_at IS NOT NULL"
ATTEMPT_FLAGGED_INDEX = Index(
    "ix_outreach_attempt_org_flagged",
    OutreachAttempt.organization_id,
    OutreachAttempt.scheduled_for,
    postgresql_where=text(FLAGGED_ATTEMPT_PREDICATE),
    sqlite_where=text(FLAGGED_ATTEMPT_PREDICATE),
)
