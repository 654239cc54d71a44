"""Consent-ledger models. Both tables are append-only histories: the latest event on a
contact point wins (TCPA-RECONSENT), and nothing is deleted, so a decision can be
reproduced and its evidence exported for a dispute."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from carecollect.kit.crypto.types import Sealed, SealedType
from carecollect.kit.models import Base, IdMixin, TenantMixin, TimestampMixin, UTCDateTime

CONSENT_KINDS = (
    "tcpa_pec",
    "tcpa_pewc",
    "email_use",
    "esign",
    "direct_prior_consent_extra_calls",
    "inconvenient_time_ok",
)


class Consent(IdMixin, TenantMixin, TimestampMixin, Base):
    __tablename__ = "consent"
    __table_args__ = (Index("ix_consent_org_guarantor", "organization_id", "guarantor_id"),)

    guarantor_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("guarantor.id", ondelete="CASCADE"))
    contact_point_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("contact_point.id", ondelete="CASCADE"), nullable=True
    )
    kind: Mapped[str] = mapped_column(String(40))
    granted_at: Mapped[datetime] = mapped_column(UTCDateTime())
    given_to: Mapped[str] = mapped_column(String(16), default="creditor")
    method: Mapped[str] = mapped_column(String(40))  # intake_form, portal, sms_keyword, ...
    source: Mapped[str] = mapped_column(String(40), default="import")
    wording_version: Mapped[str | None] = mapped_column(String(40), nullable=True)
    captured_by: Mapped[str | None] = mapped_column(String(80), nullable=True)
    evidence: Mapped[Sealed | None] = mapped_column(SealedType(), nullable=True)


class Revocation(IdMixin, TenantMixin, TimestampMixin, Base):
    __tablename__ = "revocation"
    __table_args__ = (Index("ix_revocation_org_guarantor", "organization_id", "guarantor_id"),)

    guarantor_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("guarantor.id", ondelete="CASCADE"))
    contact_point_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("contact_point.id", ondelete="CASCADE"), nullable=True
    )
    channel: Mapped[str] = mapped_column(String(16))  # sms|call|email|voicemail|letter|all
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
    method: Mapped[str] = mapped_column(String(40))  # sms_keyword, free_text, phone, letter ...
    text: Mapped[Sealed | None] = mapped_column(SealedType(), nullable=True)


MEDIA = ("sms", "call", "email", "letter", "voicemail", "all")


class MediumOptOut(IdMixin, TenantMixin, TimestampMixin, Base):
    """REGF-MEDIUM-OPTOUT (12 CFR 1006.14(h)): "don't text me", "no e-mail", or one number
    or address. Lifted only by a later consent on that medium (re-consent)."""

    __tablename__ = "medium_opt_out"
    __table_args__ = (Index("ix_medium_opt_out_org_guarantor", "organization_id",
                            "guarantor_id"),)

    guarantor_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("guarantor.id", ondelete="CASCADE"))
    contact_point_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("contact_point.id", ondelete="CASCADE"), nullable=True
    )
    medium: Mapped[str] = mapped_column(String(16))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
    method: Mapped[str] = mapped_column(String(40))
    captured_by: Mapped[str | None] = mapped_column(String(80), nullable=True)
    text: Mapped[Sealed | None] = mapped_column(SealedType(), nullable=True)


class ConfidentialCommunicationRequest(IdMixin, TenantMixin, TimestampMixin, Base):
    """HIPAA-CONF-COMM (45 CFR 164.522(b)): communicate only by these channels / to these
    contact points until withdrawn. No reason may be required, so none is stored."""

    __tablename__ = "confidential_comm_request"
    __table_args__ = (Index("ix_confidential_comm_request_org_guarantor", "organization_id",
                            "guarantor_id"),)

    guarantor_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("guarantor.id", ondelete="CASCADE"))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
    allowed_channels: Mapped[list[str]] = mapped_column(JSON, default=list)
    allowed_contact_point_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    instruction: Mapped[Sealed | None] = mapped_column(SealedType(), nullable=True)
    method: Mapped[str] = mapped_column(String(40))
    captured_by: Mapped[str | None] = mapped_column(String(80), nullable=True)
    withdrawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class InconvenientDesignation(IdMixin, TenantMixin, TimestampMixin, Base):
    """REGF-TIME-DESIGNATED (1006.6(b)(1)): a time window ("HH:MM-HH:MM" local), a weekday
    ("mon".."sun") or a place ("work") the consumer said is inconvenient, until revoked."""

    __tablename__ = "inconvenient_designation"
    __table_args__ = (Index("ix_inconvenient_designation_org_guarantor", "organization_id",
                            "guarantor_id"),)

    guarantor_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("guarantor.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(8))  # time | day | place
    value: Mapped[str] = mapped_column(String(32))
    designated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    method: Mapped[str] = mapped_column(String(40))
    captured_by: Mapped[str | None] = mapped_column(String(80), nullable=True)
