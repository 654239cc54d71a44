"""Patient-domain models.

Every PHI field is a `SealedType` column (AES-256-GCM under the organization's data key,
bound to table, column and row id). Equality search goes through blind-index columns
(`*_bidx`, truncated HMACs). What stays in plaintext is operational and coarse: the
state, IANA time zones and flags the compliance engine needs to plan a whole portfolio
without decrypting anyone (docs/DATA_MODEL.md explains each choice).
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from carecollect.kit.crypto.types import Sealed, SealedType
from carecollect.kit.models import Base, IdMixin, TenantMixin, TimestampMixin, UTCDateTime


class Guarantor(IdMixin, TenantMixin, TimestampMixin, Base):
    """The person responsible for paying (the debtor). May pay for several patients."""

    __tablename__ = "guarantor"
    __table_args__ = (
        Index("ix_guarantor_org_name_dob_bidx", "organization_id", "name_dob_bidx"),
        Index("ix_guarantor_org_source", "organization_id", "source_key", unique=True),
    )

    first_name: Mapped[Sealed] = mapped_column(SealedType())
    last_name: Mapped[Sealed] = mapped_column(SealedType())
    date_of_birth: Mapped[Sealed | None] = mapped_column(SealedType(), nullable=True)
    name_dob_bidx: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    # Plaintext, coarse, needed for compliance planning (state law, local time windows).
    state: Mapped[str | None] = mapped_column(String(2), nullable=True)
    mailing_tz: Mapped[str | None] = mapped_column(String(64), nullable=True)
    other_known_tz: Mapped[list[str]] = mapped_column(JSON, default=list)
    city_is_nyc: Mapped[bool] = mapped_column(Boolean, default=False)
    preferred_language: Mapped[str] = mapped_column(String(8), default="en")
    # Keyed HMAC of the source system's id (never the id itself): idempotent re-import.
    source_key: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class Patient(IdMixin, TenantMixin, TimestampMixin, Base):
    """A person who received care. Linked to the guarantor who pays for it."""

    __tablename__ = "patient"
    __table_args__ = (
        Index("ix_patient_org_name_dob_bidx", "organization_id", "name_dob_bidx"),
        Index("ix_patient_org_source", "organization_id", "source_key", unique=True),
    )

    guarantor_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("guarantor.id", ondelete="CASCADE"), index=True
    )
    relationship_to_guarantor: Mapped[str] = mapped_column(String(16), default="self")
    first_name: Mapped[Sealed] = mapped_column(SealedType())
    last_name: Mapped[Sealed] = mapped_column(SealedType())
    date_of_birth: Mapped[Sealed | None] = mapped_column(SealedType(), nullable=True)
    name_dob_bidx: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    sex: Mapped[Sealed | None] = mapped_column(SealedType(), nullable=True)
    minor: Mapped[bool] = mapped_column(Boolean, default=False)
    source_key: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class Coverage(IdMixin, TenantMixin, TimestampMixin, Base):
    """A patient's insurance coverage (FHIR Coverage): who the payer is and the member's
    identifiers, so staff can tell a patient balance from one still owed by insurance.

    The payer, the member and group identifiers and the coverage period are PHI once they
    are tied to a patient, so they are sealed; status, order and the subscriber
    relationship stay plaintext (coarse, needed to pick the primary active coverage).
    """

    __tablename__ = "coverage"
    __table_args__ = (
        Index("ix_coverage_org_source", "organization_id", "source_key", unique=True),
    )

    patient_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("patient.id", ondelete="CASCADE"), index=True
    )
    status: Mapped[str] = mapped_column(String(24), default="active")
    payer_name: Mapped[Sealed] = mapped_column(SealedType())
    member_id: Mapped[Sealed | None] = mapped_column(SealedType(), nullable=True)
    group_number: Mapped[Sealed | None] = mapped_column(SealedType(), nullable=True)
    period_start: Mapped[Sealed | None] = mapped_column(SealedType(), nullable=True)
    period_end: Mapped[Sealed | None] = mapped_column(SealedType(), nullable=True)
    # FHIR subscriber relationship code (self, spouse, child, parent, other, ...).
    relationship: Mapped[str | None] = mapped_column(String(16), nullable=True)
    # Coverage.order: 1 = primary.
    priority: Mapped[int | None] = mapped_column(Integer, nullable=True)
    source_key: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class ContactPoint(IdMixin, TenantMixin, TimestampMixin, Base):
    """A phone number, e-mail address or postal address of a guarantor.

    `value` holds the E.164 phone, the lower-cased e-mail, or the postal address as JSON
    text; all encrypted. For postal addresses the ZIP is sealed separately so statements
    can be batched by ZIP without opening street lines.
    """

    __tablename__ = "contact_point"
    __table_args__ = (Index("ix_contact_point_org_value_bidx", "organization_id", "value_bidx"),)

    guarantor_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("guarantor.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(8))  # phone | email | postal
    value: Mapped[Sealed] = mapped_column(SealedType())
    value_bidx: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    postal_code: Mapped[Sealed | None] = mapped_column(SealedType(), nullable=True)
    # wireless | landline | voip | hospital_patient_room | None (unknown)
    line_type: Mapped[str | None] = mapped_column(String(24), nullable=True)
    # Every zone the phone's area code may be in (PLAT-TZ-RESOLVE candidate zones).
    area_code_tzs: Mapped[list[str]] = mapped_column(JSON, default=list)
    address_tz: Mapped[str | None] = mapped_column(String(64), nullable=True)
    owner: Mapped[str] = mapped_column(String(16), default="debtor")
    employer_provided: Mapped[bool] = mapped_column(Boolean, default=False)
    verified: Mapped[bool] = mapped_column(Boolean, default=False)
    is_primary: Mapped[bool] = mapped_column(Boolean, default=False)
    source: Mapped[str] = mapped_column(String(32), default="import")
    active: Mapped[bool] = mapped_column(Boolean, default=True)


FLAG_KINDS = (
    "dispute",
    "bankruptcy",
    "deceased",
    "attorney_represented",
    "cease_requested",
    "hardship",
    "do_not_contact",
)


class Flag(IdMixin, TenantMixin, TimestampMixin, Base):
    """A timestamped condition on a guarantor or one of their accounts.

    A flag is in force from `raised_at` until `cleared_at`; history is kept, never edited
    away, because compliance decisions must be reproducible from stored state.
    """

    __tablename__ = "flag"
    __table_args__ = (
        Index("ix_flag_org_guarantor_kind", "organization_id", "guarantor_id", "kind"),
    )

    guarantor_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("guarantor.id", ondelete="CASCADE"))
    account_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("account.id", ondelete="CASCADE"), nullable=True
    )
    kind: Mapped[str] = mapped_column(String(24))
    raised_at: Mapped[datetime] = mapped_column(UTCDateTime())
    cleared_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    in_writing: Mapped[bool] = mapped_column(Boolean, default=False)
    # Non-PHI structured facts (chapter, scope, attorney_name_known, ...).
    attributes: Mapped[dict[str, object]] = mapped_column(JSON, default=dict)
    source: Mapped[str] = mapped_column(String(32), default="staff")
