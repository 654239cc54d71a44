"""The outbox (ARCHITECTURE.md §6): outreach attempts, the per-debtor contact-state row
that serializes sends, and the staff review queue fed by inbound messages.

An `OutreachAttempt` moves planned -> sending -> sent | unknown | failed | blocked:

* `planned`: decided (planner or staff) with a unique idempotency key and a delivery job;
* `sending`: compliance re-checked under the debtor's lock and committed *before* the
  provider is called, so a crash afterwards is visible and never blindly re-sent;
* `sent`: the provider accepted it (provider message id recorded);
* `unknown`: the request may have reached the provider (timeout, dropped connection);
  the reconciler asks the provider or waits for its callback;
* `failed`: the provider refused it for good, or the vendor's BAA is not active;
* `blocked`: the compliance engine blocked it at send time (reasons = rule ids).

Nothing here holds PHI in plaintext: ids, states, rule ids, provider ids and error codes.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from carecollect.kit.models import Base, IdMixin, TenantMixin, UTCDateTime, utcnow

ATTEMPT_STATES = ("planned", "sending", "sent", "unknown", "failed", "blocked", "cancelled")
FINAL_STATES = frozenset({"sent", "failed", "blocked", "cancelled"})
ATTEMPT_CHANNELS = ("email", "sms", "letter", "call", "voicemail")


class OutreachAttempt(IdMixin, TenantMixin, Base):
    __tablename__ = "outreach_attempt"
    __table_args__ = (
        UniqueConstraint("organization_id", "idempotency_key"),
        Index("ix_outreach_attempt_org_guarantor", "organization_id", "guarantor_id"),
        Index("ix_outreach_attempt_state", "state", "updated_at"),
        Index("ix_outreach_attempt_provider_id", "provider", "provider_message_id"),
    )

    guarantor_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("guarantor.id", ondelete="CASCADE"))
    account_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("account.id", ondelete="SET NULL"), nullable=True
    )
    contact_point_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("contact_point.id", ondelete="SET NULL"), nullable=True
    )
    channel: Mapped[str] = mapped_column(String(16))
    # The planner's references (cadence/step/variant); free identifiers, never PHI.
    template_key: Mapped[str] = mapped_column(String(80), default="reminder")
    language: Mapped[str] = mapped_column(String(8), default="en")
    cadence_key: Mapped[str | None] = mapped_column(String(80), nullable=True)
    step_key: Mapped[str | None] = mapped_column(String(80), nullable=True)
    idempotency_key: Mapped[str] = mapped_column(String(160))
    state: Mapped[str] = mapped_column(String(16), default="planned")
    scheduled_for: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # Set when the attempt went to `sending`: the contact-history row counted for caps.
    contact_event_id: Mapped[uuid.UUID | None] = mapped_column(nullable=True)
    provider: Mapped[str | None] = mapped_column(String(32), nullable=True)
    provider_message_id: Mapped[str | None] = mapped_column(String(120), nullable=True)
    delivery_status: Mapped[str | None] = mapped_column(String(24), nullable=True)
    # Rule ids (blocked), or fixed error codes (failed/unknown); never provider messages.
    reasons: Mapped[list[str]] = mapped_column(JSON, default=list)
    next_allowed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    error_code: Mapped[str | None] = mapped_column(String(64), nullable=True)
    send_count: Mapped[int] = mapped_column(Integer, default=0)
    reconcile_count: Mapped[int] = mapped_column(Integer, default=0)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
    sending_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class ContactState(TenantMixin, Base):
    """One row per debtor: the lock every send to that debtor takes (`FOR UPDATE`), so two
    workers cannot both pass a frequency cap (ARCHITECTURE.md §6 step 2)."""

    __tablename__ = "contact_state"
    __table_args__ = (UniqueConstraint("organization_id", "guarantor_id"),)

    guarantor_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("guarantor.id", ondelete="CASCADE"), primary_key=True
    )
    last_outbound_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    outbound_count: Mapped[int] = mapped_column(Integer, default=0)
    last_inbound_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # At most one automated confirmation text per opt-out (TCPA-REVOKE-CONFIRM).
    last_confirmation_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


REVIEW_KINDS = ("cease", "dispute", "attorney", "bankruptcy", "ambiguous_revocation")


class ReviewItem(IdMixin, TenantMixin, Base):
    """A staff review-queue entry raised by an inbound message (PLAT-REVOKE-NLU (c)-(f));
    the flag it raised suppresses collection outreach until a person clears it."""

    __tablename__ = "review_item"
    __table_args__ = (Index("ix_review_item_org_state", "organization_id", "state"),)

    guarantor_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("guarantor.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(24))
    flag_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("flag.id", ondelete="SET NULL"), nullable=True
    )
    contact_event_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("contact_event.id", ondelete="SET NULL"), nullable=True
    )
    state: Mapped[str] = mapped_column(String(16), default="open")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    resolved_by: Mapped[uuid.UUID | None] = mapped_column(nullable=True)


CALL_TASK_STATES = ("open", "done", "cancelled")


class CallTask(IdMixin, TenantMixin, Base):
    """A manual call in the staff work list. Dialing is manual (no autodialer); the logged
    outcome is recorded in contact history, where it counts toward the call caps
    (REGF-7IN7, PLAT-ATTEMPT-VS-CONVERSATION). `script_key` names the limited-content
    voicemail script to read if a machine answers (REGF-LCM)."""

    __tablename__ = "call_task"
    __table_args__ = (Index("ix_call_task_org_state", "organization_id", "state", "due_at"),)

    attempt_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("outreach_attempt.id", ondelete="CASCADE"), unique=True
    )
    guarantor_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("guarantor.id", ondelete="CASCADE"))
    contact_point_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("contact_point.id", ondelete="SET NULL"), nullable=True
    )
    script_key: Mapped[str] = mapped_column(String(40), default="lcm_default")
    state: Mapped[str] = mapped_column(String(16), default="open")
    due_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    outcome: Mapped[str | None] = mapped_column(String(32), nullable=True)
    contact_event_id: Mapped[uuid.UUID | None] = mapped_column(nullable=True)
    assigned_to: Mapped[uuid.UUID | None] = mapped_column(nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
