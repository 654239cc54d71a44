"""The `data_key` table: per-organization data keys, stored wrapped by the KEK."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Index, LargeBinary, String, Table, text
from sqlalchemy.orm import Mapped, mapped_column

from carecollect.kit.models import Base, TenantMixin, UTCDateTime


class DataKey(TenantMixin, Base):
    """One wrapped data key. `id` is the 32-bit key id written into every ciphertext."""

    __tablename__ = "data_key"
    # At most one active key per organization and purpose, enforced by the database too.
    __table_args__ = (
        Index(
            "uq_data_key_one_active",
            "organization_id",
            "purpose",
            unique=True,
            sqlite_where=text("state = 'active'"),
            postgresql_where=text("state = 'active'"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    purpose: Mapped[str] = mapped_column(String(16))  # encryption | blind_index
    state: Mapped[str] = mapped_column(String(16))  # active | decrypt_only | retired
    kek_id: Mapped[str] = mapped_column(String(64))
    wrapped_key: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    rotation_cursor: Mapped[str | None] = mapped_column(String(200), nullable=True)


# Writes to data_key go through Core on this table: an ORM flush sorts every mapped table
# by foreign key, which fails in processes (CLI commands) that never imported the
# organization model that data_key.organization_id refers to.
DATA_KEY_TABLE: Table = DataKey.__table__  # type: ignore[assignment]
