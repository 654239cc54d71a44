"""Tenant models: the organization, its locations and its business associates (BAA register)."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import Boolean, Date, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from carecollect.kit.models import Base, IdMixin, TenantMixin, TimestampMixin, UTCDateTime


class Organization(IdMixin, TimestampMixin, Base):
    """A practice (covered entity). The root of tenancy: RLS keys on its id."""

    __tablename__ = "organization"

    slug: Mapped[str] = mapped_column(String(64), unique=True)
    legal_name: Mapped[str] = mapped_column(String(200))
    # PLAT-NEUTRAL-NAME: the name shown on every outward surface (caller ID, SMS sender,
    # e-mail From, envelope); must not reveal a sensitive specialty or debt collection.
    billing_display_name: Mapped[str] = mapped_column(String(100))
    entity_kind: Mapped[str] = mapped_column(String(40), default="dental_practice")
    provider_license_state: Mapped[str] = mapped_column(String(2))
    timezone: Mapped[str] = mapped_column(String(64), default="America/New_York")
    # True when the covered entity operates this deployment itself, so no hosting BAA is
    # needed before PHI is accepted (issue 5, "BAA before PHI").
    operated_by_covered_entity: Mapped[bool] = mapped_column(Boolean, default=False)
    blind_index_bits: Mapped[int] = mapped_column(default=18)
    state: Mapped[str] = mapped_column(String(16), default="active")


class Location(IdMixin, TenantMixin, TimestampMixin, Base):
    """A practice location; its state and zone matter for licensing and reporting."""

    __tablename__ = "location"

    name: Mapped[str] = mapped_column(String(200))
    state: Mapped[str] = mapped_column(String(2))
    timezone: Mapped[str] = mapped_column(String(64))
    postal_code: Mapped[str] = mapped_column(String(10), default="")


class BusinessAssociate(IdMixin, TenantMixin, TimestampMixin, Base):
    """A vendor that receives PHI (SMS, e-mail, payments, mail house, hosting, agency).

    HIPAA-BAA / 45 CFR 164.502(e): PHI may leave for a vendor only while its BAA is active
    and unexpired; `baa_is_active` is the single test every egress path uses.
    """

    __tablename__ = "business_associate"
    __table_args__ = (UniqueConstraint("organization_id", "name"),)

    name: Mapped[str] = mapped_column(String(200))
    service: Mapped[str] = mapped_column(String(32))  # sms|email|payments|mail_house|hosting|agency
    baa_status: Mapped[str] = mapped_column(String(16), default="none")
    baa_effective_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    baa_expires_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    baa_document_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    baa_signatories: Mapped[str | None] = mapped_column(Text, nullable=True)
    recorded_by: Mapped[uuid.UUID | None] = mapped_column(nullable=True)
    recorded_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    location_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("location.id", ondelete="SET NULL"), nullable=True
    )

    def baa_is_active(self, on: date) -> bool:
        """Fail closed: active only with status active, started, and not expired."""
        if self.baa_status != "active" or self.baa_effective_on is None:
            return False
        if on < self.baa_effective_on:
            return False
        return self.baa_expires_on is None or on <= self.baa_expires_on
