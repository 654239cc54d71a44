"""Organization lifecycle: creation with keys, lookup, crypto-shredding."""

from __future__ import annotations

import re
import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from carecollect.audit import Actor, Subject, record
from carecollect.errors import BadInput, NotFound
from carecollect.kit.crypto.blind import plan_bits
from carecollect.kit.crypto.keys import KeyManager
from carecollect.tenant.models import Organization

_SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")
ENTITY_KINDS = (
    "dental_practice",
    "physician_group",
    "hospital_nonprofit_501r",
    "behavioral_health_practice",
)


def create_organization(
    session: Session,
    *,
    keys: KeyManager,
    actor: Actor,
    slug: str,
    legal_name: str,
    billing_display_name: str,
    provider_license_state: str,
    entity_kind: str = "dental_practice",
    timezone: str = "America/New_York",
    operated_by_covered_entity: bool = False,
    planned_patients: int = 1_000_000,
) -> Organization:
    """Create a tenant with its data keys, in the caller's (system) transaction."""
    if not _SLUG_RE.match(slug):
        raise BadInput("organization slug must be 2-63 lower-case letters, digits or dashes")
    if entity_kind not in ENTITY_KINDS:
        raise BadInput(f"entity kind must be one of {', '.join(ENTITY_KINDS)}")
    if len(provider_license_state) != 2 or not provider_license_state.isalpha():
        raise BadInput("provider license state must be a two-letter state code")
    if session.scalar(select(Organization.id).where(Organization.slug == slug)) is not None:
        raise BadInput(f"an organization with slug {slug!r} already exists")
    org = Organization(
        slug=slug,
        legal_name=legal_name,
        billing_display_name=billing_display_name,
        provider_license_state=provider_license_state.upper(),
        entity_kind=entity_kind,
        timezone=timezone,
        operated_by_covered_entity=operated_by_covered_entity,
        blind_index_bits=plan_bits(planned_patients),
    )
    session.add(org)
    session.flush()
    keys.create_organization_keys(session, org.id)
    record(
        session,
        actor=actor,
        action="organization.create",
        subject=Subject("organization", org.id, organization_id=org.id),
        details={"blind_index_bits": org.blind_index_bits},
    )
    return org


def get_organization(session: Session, slug_or_id: str) -> Organization:
    """Find an organization by slug or id (system session)."""
    query = select(Organization).where(Organization.slug == slug_or_id)
    try:
        as_id = uuid.UUID(slug_or_id)
    except ValueError:
        as_id = None
    if as_id is not None:
        query = select(Organization).where(Organization.id == as_id)
    org = session.scalar(query)
    if org is None:
        raise NotFound("no such organization")
    return org


def only_organization(session: Session) -> Organization:
    """The single organization of an embedded install (error when there are several)."""
    orgs = list(session.scalars(select(Organization).limit(2)))
    if not orgs:
        raise NotFound("no organization yet: run `carecollect init` first")
    if len(orgs) > 1:
        raise BadInput("several organizations exist: name one with --organization")
    return orgs[0]
