"""Queries of the stored organization overlay (`OrganizationOverlay`)."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from carecollect.compliance.models import OrganizationOverlay


def overlay_row(session: Session, organization_id: uuid.UUID) -> OrganizationOverlay | None:
    """The organization's overlay row, or None when it has no overlay."""
    return session.scalar(
        select(OrganizationOverlay).where(OrganizationOverlay.organization_id == organization_id)
    )
