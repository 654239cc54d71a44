"""Compliance settings stored per organization: the overlay (tighten-only) settings.

One row per organization. `settings` holds the overlay in the JSON shape that
`OrgOverlay.from_json` reads, already validated and normalized by
`compliance.overlay_settings.set_overlay`; no row means no overlay (STATE-SUNDAY: tenant
quiet days are configurable and default off).
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import JSON, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from carecollect.kit.models import Base, IdMixin, TenantMixin, TimestampMixin


class OrganizationOverlay(IdMixin, TenantMixin, TimestampMixin, Base):
    """The organization's compliance overlay: quiet weekdays and dates, holiday calendar,
    a tighter contact window and lower caps (never looser than the catalog)."""

    __tablename__ = "organization_overlay"
    __table_args__ = (UniqueConstraint("organization_id"),)

    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    updated_by: Mapped[uuid.UUID | None] = mapped_column(nullable=True)
