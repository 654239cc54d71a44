"""The stored organization overlay: read, change, every refusal (nothing stored), audit,
tenant isolation. The overlay can only tighten the legal rules (RULES.md STATE-SUNDAY)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest
from sqlalchemy import func, select

from carecollect.compliance.models import OrganizationOverlay
from carecollect.compliance.overlay import OrgOverlay
from carecollect.compliance.overlay_settings import (
    holiday_calendars,
    overlay_for,
    set_overlay,
    stored_overlay,
)
from carecollect.db import Database
from carecollect.errors import BadInput
from tests.factories import TEST_ACTOR, Tenant, audit_events, create_tenant

TEST_ACTOR_UUID = uuid.UUID(TEST_ACTOR.id)
FULL = {
    "window_start": "09:00", "window_end": "20:00", "quiet_weekdays": ["sat", "sun"],
    "extra_quiet_dates": ["2026-12-24", "2026-12-31"], "holiday_country": "US",
    "holiday_subdivision": "MA", "max_calls_per_7_days": 3, "max_contacts_per_7_days": 5,
}


def _set(db: Database, tenant: Tenant, data: dict[str, Any]) -> OrgOverlay:
    with db.tenant_session(tenant.id) as s:
        return set_overlay(s, actor=TEST_ACTOR, organization_id=tenant.id, data=data)


def _get(db: Database, tenant: Tenant) -> OrgOverlay | None:
    with db.tenant_session(tenant.id) as s:
        return overlay_for(s, organization_id=tenant.id)


def _rows(db: Database) -> list[tuple[Any, ...]]:
    with db.system_session() as s:
        return [tuple(r) for r in s.execute(select(
            OrganizationOverlay.organization_id, OrganizationOverlay.settings,
            OrganizationOverlay.updated_by))]


def test_no_overlay_until_one_is_set(db: Database) -> None:
    tenant = create_tenant(db)
    assert _get(db, tenant) is None
    with db.tenant_session(tenant.id) as s:
        assert stored_overlay(s, organization_id=tenant.id) == (None, None, None)


def test_set_overlay_stores_the_normalized_overlay_and_audits_field_names(
        db: Database) -> None:
    tenant = create_tenant(db)
    returned = _set(db, tenant, {**FULL, "quiet_weekdays": ["Sunday", 5]})
    expected = OrgOverlay(
        window_start=dt.time(9), window_end=dt.time(20), quiet_weekdays=frozenset({5, 6}),
        extra_quiet_dates=frozenset({dt.date(2026, 12, 24), dt.date(2026, 12, 31)}),
        holiday_country="US", holiday_subdivision="MA", max_calls_per_7_days=3,
        max_contacts_per_7_days=5)
    assert returned == expected
    assert _get(db, tenant) == expected
    assert _rows(db) == [(tenant.id, FULL, TEST_ACTOR_UUID)]
    overlay = _get(db, tenant)
    assert overlay is not None
    assert overlay.is_quiet(dt.date(2026, 5, 9)) == "quiet weekday"  # a Saturday
    assert overlay.is_quiet(dt.date(2026, 12, 24)) == "organization quiet date"
    assert overlay.is_quiet(dt.date(2026, 5, 11)) is None
    assert overlay.holiday(dt.date(2026, 4, 20)) == "Patriots' Day"  # Massachusetts only
    events = audit_events(db, "organization.overlay_update")
    assert [(e["details"], e["actor_id"], e["subject_type"], e["subject_id"])
            for e in events] == [(
                {"fields": ["window_start", "window_end", "quiet_weekdays",
                            "extra_quiet_dates", "holiday_country", "holiday_subdivision",
                            "max_calls_per_7_days", "max_contacts_per_7_days"],
                 "enabled": True}, TEST_ACTOR.id, "organization", str(tenant.id))]


def test_a_change_names_only_the_changed_settings(db: Database) -> None:
    tenant = create_tenant(db)
    _set(db, tenant, FULL)
    _set(db, tenant, {**FULL, "quiet_weekdays": ["sun"], "max_calls_per_7_days": None})
    overlay = _get(db, tenant)
    assert overlay is not None
    assert overlay.quiet_weekdays == frozenset({6})
    assert overlay.max_calls_per_7_days is None
    assert overlay.window_start == dt.time(9)
    events = audit_events(db, "organization.overlay_update")
    assert [e["details"] for e in events][1] == {
        "fields": ["quiet_weekdays", "max_calls_per_7_days"], "enabled": True}
    assert len(_rows(db)) == 1


def test_the_defaults_turn_the_overlay_off(db: Database) -> None:
    tenant = create_tenant(db)
    _set(db, tenant, {"quiet_weekdays": ["sun"]})
    assert _get(db, tenant) == OrgOverlay(quiet_weekdays=frozenset({6}))
    assert _set(db, tenant, {"quiet_weekdays": []}) == OrgOverlay()
    assert _get(db, tenant) is None
    assert _rows(db) == []
    assert [e["details"] for e in audit_events(db, "organization.overlay_update")] == [
        {"fields": ["quiet_weekdays"], "enabled": True},
        {"fields": ["quiet_weekdays"], "enabled": False}]


@pytest.mark.parametrize(("data", "message"), [
    ({"window_start": "07:30"}, "the overlay window must lie inside [08:00, 21:00)"),
    ({"window_end": "21:30"}, "the overlay window must lie inside [08:00, 21:00)"),
    ({"window_start": "12:00", "window_end": "11:00"}, "the overlay window is empty"),
    ({"window_start": "noon"}, "malformed overlay: Invalid isoformat string: 'noon'"),
    ({"quiet_weekdays": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]},
     "an overlay cannot make every weekday quiet"),
    ({"quiet_weekdays": [9]}, "quiet weekdays are 0 (Monday) to 6 (Sunday)"),
    ({"quiet_weekdays": ["someday"]}, "malformed overlay: 'som'"),
    ({"quiet_weekdays": "sun"}, "quiet_weekdays must be a list"),
    ({"extra_quiet_dates": ["2026-02-30"]}, "malformed overlay: day is out of range for month"),
    ({"extra_quiet_dates": ["2026-01-01"] * 401}, "at most 400 extra quiet dates"),
    ({"holiday_country": "XX"}, "unknown holiday calendar: choose a country from the list"),
    ({"holiday_country": "US", "holiday_subdivision": "ZZ"},
     "unknown holiday subdivision for US: choose one from the list"),
    ({"holiday_subdivision": "MA"}, "a holiday subdivision needs a holiday country"),
    ({"max_calls_per_7_days": 8}, "the call cap must be between 0 and 7 per 7 days"),
    ({"max_calls_per_7_days": -1}, "the call cap must be between 0 and 7 per 7 days"),
    ({"max_contacts_per_7_days": -2}, "the contact cap cannot be negative"),
    ({"max_contacts_per_7_days": "many"},
     "malformed overlay: invalid literal for int() with base 10: 'many'"),
    ({"sunday_texts": True}, "unknown overlay settings: sunday_texts"),
])
def test_refused_overlays_store_nothing(db: Database, data: dict[str, Any],
                                        message: str) -> None:
    tenant = create_tenant(db)
    _set(db, tenant, FULL)
    before, events = _rows(db), len(audit_events(db))
    with pytest.raises(BadInput) as refused:
        _set(db, tenant, data)
    assert refused.value.message == message
    assert _rows(db) == before
    assert len(audit_events(db)) == events


def test_every_refused_setting_is_listed(db: Database) -> None:
    tenant = create_tenant(db)
    with pytest.raises(BadInput) as refused:
        _set(db, tenant, {"window_start": "06:00", "max_calls_per_7_days": 9,
                          "holiday_country": "XX", "quiet_weekdays": ["sun"]})
    assert refused.value.message == (
        "unknown holiday calendar: choose a country from the list; "
        "the overlay window must lie inside [08:00, 21:00); "
        "the call cap must be between 0 and 7 per 7 days")
    assert _rows(db) == []
    assert audit_events(db, "organization.overlay_update") == []


def test_one_organization_never_sees_another_organizations_overlay(db: Database) -> None:
    a, b = create_tenant(db), create_tenant(db)
    _set(db, a, {"quiet_weekdays": ["sun"]})
    assert _get(db, b) is None
    with db.tenant_session(b.id) as s:
        assert s.scalar(select(func.count()).select_from(OrganizationOverlay)) == 0
        # Asking for a's overlay from b's session finds nothing either.
        assert overlay_for(s, organization_id=a.id) is None
    assert _get(db, a) == OrgOverlay(quiet_weekdays=frozenset({6}))


def test_the_holiday_calendars_are_the_holidays_package_list() -> None:
    calendars = holiday_calendars()
    assert "MA" in calendars["US"]
    assert "USA" not in calendars  # alpha-2 codes only
    assert all(len(code) == 2 for code in calendars)


def test_the_stored_overlay_is_what_the_engine_enforces(db: Database) -> None:
    from carecollect.compliance.engine import evaluate
    from tests.compliance.builders import at, context

    tenant = create_tenant(db)
    sunday = context(at("2026-03-15T10:00:00-04:00"))
    assert evaluate(sunday, _get(db, tenant)).decision == "allow"  # default: no quiet days
    _set(db, tenant, {"quiet_weekdays": ["sun"], "extra_quiet_dates": ["2026-03-16"]})
    decision = evaluate(sunday, _get(db, tenant))
    assert decision.decision == "block"
    assert "ORG-QUIET-DAYS" in decision.reasons
    # Sunday and the extra quiet Monday are skipped: Tuesday 08:00 local is next.
    assert decision.next_allowed_iso() == "2026-03-17T08:00:00-04:00"
