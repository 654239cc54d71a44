"""Portal models: link tokens, verification attempts and server-side portal sessions.

Nothing here lets a database reader act as a patient: a link stores only the SHA-256 of
its random token (`secrets.token_urlsafe(32)`, 256 bits), a portal session only the
SHA-256 of its cookie token. Verification attempts keep a keyed hash of the client
address, never the address itself (an IP address is a HIPAA identifier, 45 CFR
164.514(b)(2)(i)(O)), and never the values typed.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, UniqueConstraint, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from carecollect.kit.models import Base, IdMixin, TenantMixin, UTCDateTime, utcnow


class PortalLink(IdMixin, TenantMixin, Base):
    """An opaque payment link `/pay/<token>`, bound to one guarantor of one organization.

    The token itself is shown once, when issued; the row keeps its SHA-256. Failed
    identity checks count here, so a link locks after repeated failures whatever address
    they come from.
    """

    __tablename__ = "portal_link"
    __table_args__ = (
        UniqueConstraint("token_hash"),
        Index("ix_portal_link_org_guarantor", "organization_id", "guarantor_id"),
    )

    guarantor_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("guarantor.id", ondelete="CASCADE")
    )
    token_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    revoke_reason: Mapped[str | None] = mapped_column(String(32), nullable=True)
    # "staff:<uuid>", "system:outreach", "cli": who issued it (ids only).
    created_by: Mapped[str] = mapped_column(String(64))
    purpose: Mapped[str] = mapped_column(String(32), default="payment")
    failed_attempts: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class PortalVerificationAttempt(IdMixin, Base):
    """One identity check (or a refused try) for rate limiting and lockout.

    Not a tenant table: a guessed token belongs to no organization, and per-address
    limits must count guesses across every organization. Only the system session reads
    and writes it. `client_key` is an HMAC of the client address under the session secret.
    """

    __tablename__ = "portal_verification_attempt"
    __table_args__ = (
        Index("ix_portal_verification_attempt_client", "client_key", "attempted_at"),
        Index("ix_portal_verification_attempt_link", "link_id", "attempted_at"),
    )

    attempted_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    client_key: Mapped[str] = mapped_column(String(64))
    link_id: Mapped[uuid.UUID | None] = mapped_column(Uuid(), nullable=True)
    organization_id: Mapped[uuid.UUID | None] = mapped_column(Uuid(), nullable=True)
    # success | failure | unknown_link | locked | rate_limited
    outcome: Mapped[str] = mapped_column(String(16))


class PortalSession(IdMixin, TenantMixin, Base):
    """A verified patient's server-side session, revocable, with idle and absolute expiry.

    The cookie carries `<organization hex>.<token>`; the row keeps the token's SHA-256.
    `csrf_secret` is random per session; forms carry an HMAC of it (portal.auth).
    """

    __tablename__ = "portal_session"
    __table_args__ = (
        UniqueConstraint("token_hash"),
        Index("ix_portal_session_org_guarantor", "organization_id", "guarantor_id"),
    )

    guarantor_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("guarantor.id", ondelete="CASCADE")
    )
    link_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("portal_link.id", ondelete="SET NULL"), nullable=True
    )
    token_hash: Mapped[str] = mapped_column(String(64))
    csrf_secret: Mapped[str] = mapped_column(String(64))
    language: Mapped[str] = mapped_column(String(8), default="en")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    verified_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime())
    idle_expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    absolute_expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # logout | idle_timeout | absolute_timeout | link_revoked
    revoke_reason: Mapped[str | None] = mapped_column(String(32), nullable=True)
