"""The `job` table: one row per unit of background work (ARCHITECTURE.md §6).

Arguments are ids only (never PHI), errors are class names and codes only, so the queue
can be inspected, logged and exported without touching patient data. The table is not a
`TenantMixin` table because periodic jobs belong to no organization; on PostgreSQL it is
still under row-level security (tenant sessions see and enqueue only their own jobs; the
claimer runs as the owner).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Uuid, text
from sqlalchemy.orm import Mapped, mapped_column

from carecollect.kit.models import Base, IdMixin, UTCDateTime, utcnow

JOB_STATES = ("available", "running", "completed", "discarded", "cancelled")


class Job(IdMixin, Base):
    __tablename__ = "job"
    __table_args__ = (
        # The claim query's access path: available jobs of a queue by priority then time.
        Index(
            "ix_job_claim",
            "queue",
            "priority",
            "scheduled_at",
            postgresql_where=text("state = 'available'"),
            sqlite_where=text("state = 'available'"),
        ),
        Index(
            "ix_job_lease",
            "leased_until",
            postgresql_where=text("state = 'running'"),
            sqlite_where=text("state = 'running'"),
        ),
    )

    organization_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid(), ForeignKey("organization.id", ondelete="CASCADE"), nullable=True, index=True
    )
    queue: Mapped[str] = mapped_column(String(32), default="default")
    kind: Mapped[str] = mapped_column(String(64))
    # Ids and small scalars only: the enqueue function rejects anything else.
    args: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    state: Mapped[str] = mapped_column(String(16), default="available")
    # Lower number runs first (0 is the default, negative is urgent).
    priority: Mapped[int] = mapped_column(Integer, default=0)
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=20)
    scheduled_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    leased_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    locked_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # [{"attempt": n, "at": iso, "error": "ClassName", "code": "..."}]: never messages
    # from third-party exceptions, which may quote PHI.
    errors: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    unique_key: Mapped[str | None] = mapped_column(String(200), nullable=True, unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    attempted_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
