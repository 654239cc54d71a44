"""Contact history: every outbound attempt and inbound contact, with channel, dialer and
outcome in the vocabulary of RULES.md PLAT-ATTEMPT-VS-CONVERSATION, so the frequency rules
can count placed calls, conversations and exclusions from stored state."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from carecollect.kit.crypto.types import Sealed, SealedType
from carecollect.kit.models import Base, IdMixin, TenantMixin, UTCDateTime

OUTCOMES = (
    "not_connected",
    "no_answer",
    "voicemail_reached_no_message",
    "voicemail_lcm",
    "conversation_rpc",
    "conversation_third_party",
    "voicemail_left_by_consumer",
    "delivered",
    "undeliverable",
)


class ContactEvent(IdMixin, TenantMixin, Base):
    __tablename__ = "contact_event"
    __table_args__ = (
        Index(
            "ix_contact_event_org_guarantor_at", "organization_id", "guarantor_id", "occurred_at"
        ),
    )

    guarantor_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("guarantor.id", ondelete="CASCADE"))
    contact_point_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("contact_point.id", ondelete="SET NULL"), nullable=True
    )
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime())
    channel: Mapped[str] = mapped_column(String(16))  # call|sms|email|letter|voicemail
    direction: Mapped[str] = mapped_column(String(8))  # outbound|inbound
    person: Mapped[str] = mapped_column(String(24), default="debtor")
    dialer: Mapped[str | None] = mapped_column(String(16), nullable=True)
    outcome: Mapped[str] = mapped_column(String(32))
    account_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    # Inbound message text (for the revocation classifier); PHI, so sealed.
    text: Mapped[Sealed | None] = mapped_column(SealedType(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
