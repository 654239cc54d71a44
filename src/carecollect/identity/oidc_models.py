"""OIDC single sign-on models: an organization's identity provider and the links between
a provider's subjects and staff users.

A user is linked by `(issuer, subject)`, the only stable identifier OpenID Connect Core
1.0 section 5.7 allows a relying party to rely on (an e-mail address can be reassigned).
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import JSON, Boolean, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from carecollect.kit.crypto.types import Sealed, SealedType
from carecollect.kit.models import Base, IdMixin, TenantMixin, TimestampMixin, UTCDateTime, utcnow


class OidcProvider(IdMixin, TenantMixin, TimestampMixin, Base):
    """One identity provider per organization. The client secret is sealed with the
    organization's data key."""

    __tablename__ = "oidc_provider"
    __table_args__ = (UniqueConstraint("organization_id"),)

    display_name: Mapped[str] = mapped_column(String(100))
    issuer: Mapped[str] = mapped_column(String(500))
    client_id: Mapped[str] = mapped_column(String(255))
    client_secret: Mapped[Sealed | None] = mapped_column(SealedType(), nullable=True)
    # Matching and provisioning accept only addresses of this domain (None: any).
    allowed_email_domain: Mapped[str | None] = mapped_column(String(253), nullable=True)
    # First sign-in may link to an existing user with the same, IdP-verified e-mail.
    link_by_verified_email: Mapped[bool] = mapped_column(Boolean, default=False)
    # Unknown people are refused unless provisioning is on (then a role must map).
    allow_provisioning: Mapped[bool] = mapped_column(Boolean, default=False)
    default_role: Mapped[str | None] = mapped_column(String(32), nullable=True)
    role_claim: Mapped[str | None] = mapped_column(String(64), nullable=True)
    role_mapping: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    # Our TOTP is skipped only when the organization says the IdP enforces MFA *and* the
    # ID token's `amr` says MFA happened (docs/WEB.md).
    idp_enforces_mfa: Mapped[bool] = mapped_column(Boolean, default=False)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)


class OidcIdentity(IdMixin, TenantMixin, Base):
    """A provider subject linked to a staff user."""

    __tablename__ = "oidc_identity"
    __table_args__ = (UniqueConstraint("issuer", "subject"),)

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("staff_user.id", ondelete="CASCADE"), index=True
    )
    provider_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("oidc_provider.id", ondelete="CASCADE"), index=True
    )
    issuer: Mapped[str] = mapped_column(String(500))
    subject: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
