"""Queries of the stored organization overlay (`OrganizationOverlay`)."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from carecollect.compliance.models import OrganizationOverlay
from carecollect.tenant.models import Organization


def overlay_row(session: Session, organization_id: uuid.UUID) -> OrganizationOverlay | None:
    """The organization's overlay row, or None when it has no overlay."""
    return session.scalar(
        select(OrganizationOverlay).where(OrganizationOverlay.organization_id == organization_id)
    )


def lock_organization(session: Session, organization_id: uuid.UUID) -> None:
    """Row-lock the organization (PostgreSQL) so two concurrent settings changes of one
    organization run one after the other instead of racing on a unique key; on SQLite
    the request already holds the write lock (`BEGIN IMMEDIATE`)."""
    session.execute(
        select(Organization.id).where(Organization.id == organization_id).with_for_update()
    )
