"""Organization template overrides: save (linted), revert to shipped, look up for rendering.

An override replaces one shipped template (same key and channel) in one language for one
organization. Saving runs the template linter (`outreach.templates.lint`, RULES.md
section 8: HIPAA-CONTENT-CLASS, REGF-LCM, PLAT-NEUTRAL-NAME, TEMPLATE-*) under the
conditions the template is written for, and refuses a template with any finding with the
linter's messages, storing nothing. Each save is a new version; the previous one is
deactivated. Saves and reverts are audited with the template key, language, version and
the names of the changed surfaces (never their text).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid

from sqlalchemy.orm import Session

from carecollect.audit import Actor, Subject, record
from carecollect.errors import BadInput, NotFound
from carecollect.outreach.org_template_models import OrganizationTemplate
from carecollect.outreach.org_template_repository import (
    active_template,
    active_templates,
    latest_version,
    lock_organization,
)
from carecollect.outreach.templates import (
    CHANNEL_SURFACES,
    LANGUAGES,
    Conditions,
    Template,
    TemplateRefused,
    default_templates,
    lint,
)

MAX_SURFACE_CHARS = 20_000


@dataclasses.dataclass(frozen=True, slots=True)
class TemplateOverride:
    """An active override as the settings screens show it."""

    template: Template
    version: int
    updated_at: dt.datetime
    updated_by: uuid.UUID | None


def shipped_channel(key: str) -> str:
    """The channel of shipped template `key` (an override keeps it)."""
    for (template_id, _), template in default_templates().items():
        if template_id == key:
            return template.channel
    raise NotFound("no such template")


def _as_template(row: OrganizationTemplate) -> Template:
    description = next((t.description for (k, _), t in default_templates().items()
                        if k == row.template_key), "")
    return Template(
        id=row.template_key, language=row.language, channel=row.channel,
        description=description, surfaces=dict(row.surfaces),
        requires=Conditions(row.phone_verified_and_consented, row.email_risk_acknowledged))


def organization_template(session: Session, *, organization_id: uuid.UUID, key: str,
                          language: str) -> Template | None:
    """The organization's active override of `key` in `language`, as a `Template` that
    `outreach.templates.render_template` takes; None means use the shipped template."""
    row = active_template(session, organization_id, key, language)
    return _as_template(row) if row is not None else None


def overrides(session: Session, *, organization_id: uuid.UUID) -> list[TemplateOverride]:
    """Every active override of the organization (by key, then language)."""
    return [TemplateOverride(_as_template(row), row.version, row.updated_at, row.updated_by)
            for row in active_templates(session, organization_id)]


def override(session: Session, *, organization_id: uuid.UUID, key: str,
             language: str) -> TemplateOverride | None:
    row = active_template(session, organization_id, key, language)
    if row is None:
        return None
    return TemplateOverride(_as_template(row), row.version, row.updated_at, row.updated_by)


def _staff_id(actor: Actor) -> uuid.UUID | None:
    if actor.type != "staff":
        return None
    try:
        return uuid.UUID(actor.id)
    except ValueError:
        return None


def draft_of(*, key: str, language: str, channel: str, surfaces: dict[str, str],
             phone_verified_and_consented: bool, email_risk_acknowledged: bool) -> Template:
    """Check the shape of an override (key, language, channel, surfaces) and build it;
    `BadInput` otherwise. Blank surfaces are dropped, as the editor does."""
    if language not in LANGUAGES:
        raise BadInput("the language is en or es")
    if (key, language) not in default_templates():
        raise NotFound("no such template")
    expected = shipped_channel(key)
    if channel != expected:
        raise BadInput(f"template {key} is a {expected} template, not {channel[:16]}")
    extra = sorted(set(surfaces) - set(CHANNEL_SURFACES[channel]))
    if extra:
        raise BadInput(f"a {channel} template has no surface "
                       + ", ".join(s[:32] for s in extra))
    if any(len(text) > MAX_SURFACE_CHARS for text in surfaces.values()):
        raise BadInput(f"a surface is at most {MAX_SURFACE_CHARS} characters")
    return Template(id=key, language=language, channel=channel, description="",
                    surfaces={k: v for k, v in surfaces.items() if v.strip()},
                    requires=Conditions(phone_verified_and_consented, email_risk_acknowledged))


def save_template(session: Session, *, actor: Actor, organization_id: uuid.UUID,
                  template: Template) -> TemplateOverride:
    """Store `template` as the organization's active override of its key and language.

    Refuses (`TemplateRefused`, the linter's messages) a template with linter findings;
    a template identical to the active override stores nothing new."""
    draft = draft_of(key=template.id, language=template.language, channel=template.channel,
                     surfaces=dict(template.surfaces),
                     phone_verified_and_consented=template.requires.phone_verified_and_consented,
                     email_risk_acknowledged=template.requires.email_risk_acknowledged)
    issues = lint(draft)
    if issues:
        raise TemplateRefused("; ".join(f"{i.surface}: {i.rule}: {i.message}" for i in issues))
    lock_organization(session, organization_id)
    current = active_template(session, organization_id, draft.id, draft.language)
    before: dict[str, str] = dict(current.surfaces) if current is not None else dict(
        default_templates().get((draft.id, draft.language), draft).surfaces)
    if current is not None and dict(current.surfaces) == dict(draft.surfaces) and \
            current.phone_verified_and_consented == draft.requires.phone_verified_and_consented \
            and current.email_risk_acknowledged == draft.requires.email_risk_acknowledged:
        return TemplateOverride(_as_template(current), current.version, current.updated_at,
                                current.updated_by)
    if current is not None:
        current.active = False
        session.flush()
    now = dt.datetime.now(dt.UTC)
    row = OrganizationTemplate(
        organization_id=organization_id, template_key=draft.id, language=draft.language,
        channel=draft.channel, surfaces=dict(draft.surfaces),
        phone_verified_and_consented=draft.requires.phone_verified_and_consented,
        email_risk_acknowledged=draft.requires.email_risk_acknowledged,
        version=latest_version(session, organization_id, draft.id, draft.language) + 1,
        active=True, updated_by=_staff_id(actor), created_at=now, updated_at=now)
    session.add(row)
    session.flush()
    changed = sorted(s for s in set(before) | set(draft.surfaces)
                     if before.get(s) != draft.surfaces.get(s))
    record(
        session,
        actor=actor,
        action="organization.template_save",
        subject=Subject("organization_template", row.id, organization_id=organization_id),
        details={"template": draft.id, "language": draft.language, "version": row.version,
                 "surfaces": changed},
    )
    return TemplateOverride(_as_template(row), row.version, row.updated_at, row.updated_by)


def revert_template(session: Session, *, actor: Actor, organization_id: uuid.UUID, key: str,
                    language: str) -> None:
    """Deactivate the organization's override of `key` in `language`: the shipped
    template is used again. `NotFound` when there is no active override."""
    lock_organization(session, organization_id)
    current = active_template(session, organization_id, key, language)
    if current is None:
        raise NotFound("no organization version of this template")
    current.active = False
    session.flush()
    record(
        session,
        actor=actor,
        action="organization.template_revert",
        subject=Subject("organization_template", current.id, organization_id=organization_id),
        details={"template": key, "language": language, "version": current.version},
    )
