"""Identity models: staff users, MFA recovery codes, server-side sessions, API keys,
break-glass grants and stored idempotent responses.

Secrets are never stored in a form that lets a database reader log in: passwords are
Argon2id hashes, session tokens, API key secrets and recovery codes are SHA-256 hashes of
high-entropy random values, and the TOTP seed is sealed with the organization's data key.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column

from carecollect.kit.crypto.types import Sealed, SealedType
from carecollect.kit.models import Base, IdMixin, TenantMixin, TimestampMixin, UTCDateTime, utcnow


class StaffUser(IdMixin, TenantMixin, TimestampMixin, Base):
    """A person who signs in to the staff app. E-mail is unique across the deployment so
    that sign-in needs no organization picker."""

    __tablename__ = "staff_user"
    __table_args__ = (UniqueConstraint("email"),)

    email: Mapped[str] = mapped_column(String(254))
    display_name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(32))
    password_hash: Mapped[str] = mapped_column(String(200))
    totp_secret: Mapped[Sealed | None] = mapped_column(SealedType(), nullable=True)
    totp_enabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # RFC 6238 section 5.2: a code is accepted once; the last accepted time step is kept.
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    failed_login_count: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    password_changed_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    oidc_subject: Mapped[str | None] = mapped_column(String(255), nullable=True)
    state: Mapped[str] = mapped_column(String(16), default="active")
    # The monthly insights report by e-mail (insight/tasks.py): on unless the user opts out.
    monthly_report_opt_out: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=false()
    )


class RecoveryCode(IdMixin, TenantMixin, Base):
    """A one-time MFA recovery code (only its hash is stored)."""

    __tablename__ = "recovery_code"

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("staff_user.id", ondelete="CASCADE"))
    code_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class StaffSession(IdMixin, TenantMixin, Base):
    """A server-side, revocable session. The cookie holds a random token; the row holds its
    SHA-256, so a database reader cannot hijack a session."""

    __tablename__ = "staff_session"
    __table_args__ = (UniqueConstraint("token_hash"),)

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("staff_user.id", ondelete="CASCADE"))
    token_hash: Mapped[str] = mapped_column(String(64))
    mfa_passed: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    absolute_expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    revoke_reason: Mapped[str | None] = mapped_column(String(32), nullable=True)
    break_glass_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class ApiKey(IdMixin, TenantMixin, Base):
    """An integrator's key with scopes. The token is `cc_<prefix>_<secret>`; the prefix is
    the lookup key and only the secret's SHA-256 is stored."""

    __tablename__ = "api_key"
    __table_args__ = (UniqueConstraint("prefix"),)

    name: Mapped[str] = mapped_column(String(100))
    prefix: Mapped[str] = mapped_column(String(16))
    secret_hash: Mapped[str] = mapped_column(String(64))
    scopes: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_by: Mapped[uuid.UUID | None] = mapped_column(nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class BreakGlassGrant(IdMixin, TenantMixin, Base):
    """Emergency access: a reason (sealed, it is free text), a time limit, an alert."""

    __tablename__ = "break_glass_grant"

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("staff_user.id", ondelete="CASCADE"))
    session_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("staff_session.id", ondelete="CASCADE")
    )
    reason: Mapped[Sealed] = mapped_column(SealedType())
    granted_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())


class IdempotencyRecord(IdMixin, TenantMixin, Base):
    """The stored response of a POST made with an `Idempotency-Key` (sealed: it may hold
    PHI), replayed when the same principal repeats the key with the same request."""

    __tablename__ = "idempotency_record"
    __table_args__ = (
        UniqueConstraint("organization_id", "principal", "key"),
        Index("ix_idempotency_record_created_at", "created_at"),
    )

    principal: Mapped[str] = mapped_column(String(64))
    key: Mapped[str] = mapped_column(String(200))
    request_sha256: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(Integer)
    response_body: Mapped[Sealed | None] = mapped_column(SealedType(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
