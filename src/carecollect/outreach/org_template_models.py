"""Organization-specific versions of the shipped message templates.

Each save of an override is a new row (`version` counts up per organization, template
key and language); at most one row per key and language is `active`, and that is the one
the renderer uses instead of the shipped file. "Revert to shipped" deactivates it; old
versions stay for the record. Surfaces are stored as the shipped TOML files have them
(surface name -> Jinja2 source), with the conditions the template is written for.
"""

from __future__ import annotations

import uuid

from sqlalchemy import JSON, Boolean, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from carecollect.kit.models import Base, IdMixin, TenantMixin, TimestampMixin


class OrganizationTemplate(IdMixin, TenantMixin, TimestampMixin, Base):
    """One saved version of an organization's override of a shipped template."""

    __tablename__ = "organization_template"
    __table_args__ = (
        UniqueConstraint("organization_id", "template_key", "language", "version",
                         name="uq_organization_template_version"),
    )

    template_key: Mapped[str] = mapped_column(String(64))
    language: Mapped[str] = mapped_column(String(8))
    channel: Mapped[str] = mapped_column(String(16))
    surfaces: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    phone_verified_and_consented: Mapped[bool] = mapped_column(Boolean, default=False)
    email_risk_acknowledged: Mapped[bool] = mapped_column(Boolean, default=False)
    version: Mapped[int] = mapped_column(default=1)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    updated_by: Mapped[uuid.UUID | None] = mapped_column(nullable=True)
