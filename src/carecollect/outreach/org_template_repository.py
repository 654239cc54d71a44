"""Queries of organization template overrides (`OrganizationTemplate`)."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from carecollect.outreach.org_template_models import OrganizationTemplate
from carecollect.tenant.models import Organization


def active_template(session: Session, organization_id: uuid.UUID, key: str,
                    language: str) -> OrganizationTemplate | None:
    """The organization's active override of (`key`, `language`), if any."""
    return session.scalar(
        select(OrganizationTemplate).where(
            OrganizationTemplate.organization_id == organization_id,
            OrganizationTemplate.template_key == key,
            OrganizationTemplate.language == language,
            OrganizationTemplate.active.is_(True),
        )
    )


def active_templates(session: Session, organization_id: uuid.UUID
                     ) -> list[OrganizationTemplate]:
    """Every active override of the organization, by key and language."""
    return list(session.scalars(
        select(OrganizationTemplate)
        .where(OrganizationTemplate.organization_id == organization_id,
               OrganizationTemplate.active.is_(True))
        .order_by(OrganizationTemplate.template_key, OrganizationTemplate.language)
    ))


def latest_version(session: Session, organization_id: uuid.UUID, key: str,
                   language: str) -> int:
    """The highest version saved for (`key`, `language`), 0 when none was."""
    found = session.scalar(
        select(func.max(OrganizationTemplate.version)).where(
            OrganizationTemplate.organization_id == organization_id,
            OrganizationTemplate.template_key == key,
            OrganizationTemplate.language == language,
        )
    )
    return int(found or 0)


def lock_organization(session: Session, organization_id: uuid.UUID) -> None:
    """Row-lock the organization (PostgreSQL) so two concurrent saves of one organization's
    templates take versions one after the other instead of colliding on the unique
    version; on SQLite the request already holds the write lock (`BEGIN IMMEDIATE`)."""
    session.execute(
        select(Organization.id).where(Organization.id == organization_id).with_for_update()
    )
