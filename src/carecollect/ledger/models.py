"""Ledger models.

An account's balance is the sum of its entries' signed `amount_cents` (charges and refunds
positive, payments, adjustments and write-offs negative); aging buckets are derived from
each open charge's `posted_at`. Nothing derived is stored, so nothing can drift.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from carecollect.kit.crypto.types import Sealed, SealedType
from carecollect.kit.models import Base, IdMixin, TenantMixin, TimestampMixin, UTCDateTime

ENTRY_KINDS = {
    # kind: sign of amount_cents (+1 increases what the guarantor owes)
    "charge": 1,
    "insurance_payment": -1,
    "insurance_adjustment": -1,
    "patient_payment": -1,
    "write_off": -1,
    "refund": 1,
    "adjustment": 0,  # either sign, staff-entered with a reason
}


class Account(IdMixin, TenantMixin, TimestampMixin, Base):
    """A patient account at one organization, owed by one guarantor."""

    __tablename__ = "account"
    __table_args__ = (
        Index("ix_account_org_number_bidx", "organization_id", "account_number_bidx"),
        Index("ix_account_org_source", "organization_id", "source_key", unique=True),
    )

    guarantor_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("guarantor.id", ondelete="CASCADE"), index=True
    )
    location_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("location.id", ondelete="SET NULL"), nullable=True
    )
    account_number: Mapped[Sealed] = mapped_column(SealedType())
    account_number_bidx: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    debt_kind: Mapped[str] = mapped_column(String(8), default="dental")  # medical | dental
    status: Mapped[str] = mapped_column(String(16), default="open")
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime())
    first_delinquency_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    source_key: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class LedgerEntry(IdMixin, TenantMixin, Base):
    """One line of an account's ledger. Entries are appended, never edited."""

    __tablename__ = "ledger_entry"
    __table_args__ = (
        Index("ix_ledger_entry_account_posted", "account_id", "posted_at"),
        Index("ix_ledger_entry_org_source", "organization_id", "source_key", unique=True),
    )

    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("account.id", ondelete="CASCADE"))
    patient_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("patient.id", ondelete="SET NULL"), nullable=True
    )
    kind: Mapped[str] = mapped_column(String(24))
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    posted_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # Date of service, procedure codes and description are C2 clinical content: sealed.
    service_date: Mapped[Sealed | None] = mapped_column(SealedType(), nullable=True)
    procedure_codes: Mapped[Sealed | None] = mapped_column(SealedType(), nullable=True)
    description: Mapped[Sealed | None] = mapped_column(SealedType(), nullable=True)
    applies_to_entry_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("ledger_entry.id", ondelete="SET NULL"), nullable=True
    )
    external_reference: Mapped[str | None] = mapped_column(String(120), nullable=True)
    source_key: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
