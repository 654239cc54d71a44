"""Outbound webhook models: endpoints registered by an organization, the outbox of events
(one row per business event, written in the transaction of the change), one delivery per
(event, endpoint) and every delivery attempt (status code and timing, never a body).

The signing secret is sealed with the organization's data key (bound to the row), so a
database reader cannot forge deliveries; it is shown once, when the endpoint is created.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from carecollect.kit.crypto.types import Sealed, SealedType
from carecollect.kit.models import Base, IdMixin, TenantMixin, TimestampMixin, UTCDateTime, utcnow


class WebhookEndpoint(IdMixin, TenantMixin, TimestampMixin, Base):
    """A URL of the practice's systems that receives the event types it subscribed to."""

    __tablename__ = "webhook_endpoint"

    url: Mapped[str] = mapped_column(String(2000))
    description: Mapped[str] = mapped_column(String(200), default="")
    secret: Mapped[Sealed] = mapped_column(SealedType())
    # After a rotation the old secret also signs until it expires (receivers switch over).
    previous_secret: Mapped[Sealed | None] = mapped_column(SealedType(), nullable=True)
    previous_secret_expires_at: Mapped[datetime | None] = mapped_column(
        UTCDateTime(), nullable=True
    )
    secret_rotated_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    event_types: Mapped[list[str]] = mapped_column(JSON, default=list)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by: Mapped[str] = mapped_column(String(64))
    # Deleted endpoints are kept (their deliveries refer to them) but never receive again.
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class IntegrationEvent(IdMixin, TenantMixin, Base):
    """The outbox: one business event (ids, codes, cents and timestamps only)."""

    __tablename__ = "integration_event"
    __table_args__ = (Index("ix_integration_event_org_created", "organization_id", "created_at"),)

    type: Mapped[str] = mapped_column(String(64))
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class WebhookDelivery(IdMixin, TenantMixin, Base):
    """One event to one endpoint: `pending` until a 2xx (`delivered`), or `failed` after the
    last attempt, or `cancelled` when the endpoint was disabled or deleted meanwhile."""

    __tablename__ = "webhook_delivery"
    __table_args__ = (UniqueConstraint("event_id", "endpoint_id"),)

    event_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("integration_event.id", ondelete="CASCADE"), index=True
    )
    endpoint_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("webhook_endpoint.id", ondelete="CASCADE"), index=True
    )
    state: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # Set by a manual redelivery: the attempt count at which the delivery fails again.
    attempt_limit: Mapped[int | None] = mapped_column(Integer, nullable=True)
    last_status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    last_error: Mapped[str | None] = mapped_column(String(32), nullable=True)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    failed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class WebhookDeliveryAttempt(IdMixin, TenantMixin, Base):
    """One POST: when, the status code (None on a timeout or connection error), the error
    code and how long it took. The response body is never stored (it could echo anything)."""

    __tablename__ = "webhook_delivery_attempt"

    delivery_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("webhook_delivery.id", ondelete="CASCADE"), index=True
    )
    attempt: Mapped[int] = mapped_column(Integer)
    attempted_at: Mapped[datetime] = mapped_column(UTCDateTime())
    status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    outcome: Mapped[str] = mapped_column(String(32))
    duration_ms: Mapped[int] = mapped_column(Integer)
