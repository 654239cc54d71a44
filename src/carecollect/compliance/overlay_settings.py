"""The organization's stored compliance overlay: read it, validate and change it.

`overlay_for` is what dispatch and planning call to get the overlay the compliance engine
takes (`evaluate(context, overlay)`); `set_overlay` is what the settings screen calls.
Every value goes through `OrgOverlay` itself, so a stored overlay can never loosen a legal
limit (RULES.md STATE-SUNDAY: per-tenant quiet days, default off; REGF-CALL-FREQ caps;
the catalog's 08:00-21:00 window). An overlay equal to the defaults is stored as no row:
the overlay is then off.
"""

from __future__ import annotations

import datetime as dt
import functools
import uuid
from typing import Any

from sqlalchemy.orm import Session

from carecollect.audit import Actor, Subject, record
from carecollect.compliance.models import OrganizationOverlay
from carecollect.compliance.overlay import OrgOverlay, OverlayError
from carecollect.compliance.overlay_repository import lock_organization, overlay_row
from carecollect.errors import BadInput

WEEKDAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
FIELDS = ("window_start", "window_end", "quiet_weekdays", "extra_quiet_dates",
          "holiday_country", "holiday_subdivision", "max_calls_per_7_days",
          "max_contacts_per_7_days")
MAX_QUIET_DATES = 400
# Settings checked together, so that every refused setting gets its own message.
_GROUPS: tuple[tuple[str, ...], ...] = (
    ("window_start", "window_end"), ("quiet_weekdays",), ("extra_quiet_dates",),
    ("holiday_country", "holiday_subdivision"), ("max_calls_per_7_days",),
    ("max_contacts_per_7_days",),
)


@functools.lru_cache(maxsize=1)
def holiday_calendars() -> dict[str, tuple[str, ...]]:
    """Countries (ISO 3166-1 alpha-2) the `holidays` package supports, with their
    subdivision codes."""
    import holidays

    return {country: tuple(subdivisions)
            for country, subdivisions in sorted(holidays.list_supported_countries().items())
            if len(country) == 2 and country.isalpha() and country.isupper()}


def overlay_json(overlay: OrgOverlay) -> dict[str, Any]:
    """The overlay in the JSON shape `OrgOverlay.from_json` reads (normalized, sorted)."""
    return {
        "window_start": overlay.window_start.strftime("%H:%M"),
        "window_end": overlay.window_end.strftime("%H:%M"),
        "quiet_weekdays": [WEEKDAY_NAMES[d] for d in sorted(overlay.quiet_weekdays)],
        "extra_quiet_dates": [d.isoformat() for d in sorted(overlay.extra_quiet_dates)],
        "holiday_country": overlay.holiday_country,
        "holiday_subdivision": overlay.holiday_subdivision,
        "max_calls_per_7_days": overlay.max_calls_per_7_days,
        "max_contacts_per_7_days": overlay.max_contacts_per_7_days,
    }


def _calendar_problems(data: dict[str, Any]) -> list[str]:
    country, subdivision = data.get("holiday_country"), data.get("holiday_subdivision")
    if country is None:
        return ["a holiday subdivision needs a holiday country"] if subdivision else []
    calendars = holiday_calendars()
    if not isinstance(country, str) or country not in calendars:
        return ["unknown holiday calendar: choose a country from the list"]
    if subdivision is not None and subdivision not in calendars[country]:
        return [f"unknown holiday subdivision for {country}: choose one from the list"]
    return []


def overlay_problems(data: dict[str, Any]) -> list[str]:
    """Every reason `data` cannot be an overlay, one message per refused setting (the
    overlay's own message for a setting that would loosen a legal limit)."""
    problems: list[str] = []
    unknown = sorted(set(data) - set(FIELDS))
    if unknown:
        problems.append("unknown overlay settings: " + ", ".join(u[:40] for u in unknown))
    problems.extend(f"{key} must be a list" for key in ("quiet_weekdays", "extra_quiet_dates")
                    if key in data and not isinstance(data[key], list))
    if isinstance(data.get("extra_quiet_dates"), list) and \
            len(data["extra_quiet_dates"]) > MAX_QUIET_DATES:
        problems.append(f"at most {MAX_QUIET_DATES} extra quiet dates")
    if problems:
        return problems
    calendar = _calendar_problems(data)
    problems.extend(calendar)
    for group in _GROUPS:
        part = {key: data[key] for key in group if key in data}
        if not part or (calendar and "holiday_country" in group):
            continue
        try:
            OrgOverlay.from_json(part)
        except OverlayError as exc:
            problems.append(str(exc))
    if not problems:
        try:
            OrgOverlay.from_json(data)
        except OverlayError as exc:
            problems.append(str(exc))
    return problems


def parse_overlay(data: dict[str, Any]) -> OrgOverlay:
    """`data` as an overlay; `BadInput` listing every problem otherwise."""
    problems = overlay_problems(data)
    if problems:
        raise BadInput("; ".join(problems))
    return OrgOverlay.from_json(data)


def overlay_for(session: Session, *, organization_id: uuid.UUID) -> OrgOverlay | None:
    """The organization's overlay for the compliance engine, or None (overlay off)."""
    row = overlay_row(session, organization_id)
    if row is None:
        return None
    return OrgOverlay.from_json(row.settings)


def stored_overlay(session: Session, *, organization_id: uuid.UUID
                   ) -> tuple[OrgOverlay | None, dt.datetime | None, uuid.UUID | None]:
    """The overlay with when and by whom it was last changed (for the settings screen)."""
    row = overlay_row(session, organization_id)
    if row is None:
        return None, None, None
    return OrgOverlay.from_json(row.settings), row.updated_at, row.updated_by


def _staff_id(actor: Actor) -> uuid.UUID | None:
    if actor.type != "staff":
        return None
    try:
        return uuid.UUID(actor.id)
    except ValueError:
        return None


def set_overlay(session: Session, *, actor: Actor, organization_id: uuid.UUID,
                data: dict[str, Any]) -> OrgOverlay:
    """Validate and store the organization's overlay (replacing the previous one), with an
    `organization.overlay_update` audit event naming the changed settings only. A refused
    overlay raises `BadInput` with every problem and stores nothing."""
    overlay = parse_overlay(data)
    new = overlay_json(overlay)
    lock_organization(session, organization_id)
    row = overlay_row(session, organization_id)
    old = overlay_json(OrgOverlay.from_json(row.settings) if row is not None else OrgOverlay())
    changed = [key for key in FIELDS if old[key] != new[key]]
    if overlay == OrgOverlay():
        if row is not None:
            session.delete(row)
    else:
        if row is None:
            row = OrganizationOverlay(organization_id=organization_id)
            session.add(row)
        row.settings = new
        row.updated_by = _staff_id(actor)
        row.updated_at = dt.datetime.now(dt.UTC)
    session.flush()
    record(
        session,
        actor=actor,
        action="organization.overlay_update",
        subject=Subject("organization", organization_id, organization_id=organization_id),
        details={"fields": changed, "enabled": overlay != OrgOverlay()},
    )
    return overlay


@functools.lru_cache(maxsize=1)
def holiday_country_names() -> dict[str, str]:
    """Display names of the supported holiday countries, by code."""
    from holidays.registry import COUNTRIES

    names = {entry[1]: module.replace("_", " ").title() for module, entry in COUNTRIES.items()}
    return {code: names.get(code, code) for code in holiday_calendars()}
