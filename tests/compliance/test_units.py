"""Unit tests: zones, business days, overlay, registry metadata, effective dates."""

from __future__ import annotations

import datetime as dt

import pytest

from carecollect.compliance import zones
from carecollect.compliance.businessdays import add_business_days, validation_period_end
from carecollect.compliance.engine import evaluate
from carecollect.compliance.overlay import OrgOverlay, OverlayError
from carecollect.compliance.registry import BY_ID, RULES
from carecollect.compliance.rules import CHECKS
from tests.compliance.builders import at, call, context, merge


def test_zip_and_area_code_zones_offline() -> None:
    assert zones.zip_zone("10001") == "America/New_York"
    assert zones.zip_zone("85004") == "America/Phoenix"
    assert zones.zip_zone("99999") is None
    assert zones.phone_zones("+13055551234") == ("America/New_York",)
    assert zones.phone_zones("+14805551234") == ("America/Phoenix",)


def test_window_is_half_open_and_dst_aware() -> None:
    ny = "America/New_York"
    eight = dt.datetime(2026, 3, 8, 12, 0, tzinfo=dt.UTC)  # 08:00 EDT on DST day
    assert zones.in_window(eight, ny, dt.time(8), dt.time(21))
    assert not zones.in_window(eight - dt.timedelta(seconds=1), ny, dt.time(8), dt.time(21))
    late = dt.datetime(2026, 11, 2, 2, 0, tzinfo=dt.UTC)  # 21:00 EST on Nov 1
    assert not zones.in_window(late, ny, dt.time(8), dt.time(21))
    assert zones.next_window_start(late, ny, dt.time(8), dt.time(21)) == \
        dt.datetime(2026, 11, 2, 13, 0, tzinfo=dt.UTC)


def test_business_days_skip_weekends_and_federal_holidays() -> None:
    assert add_business_days(dt.date(2026, 3, 2), 5) == dt.date(2026, 3, 9)
    assert add_business_days(dt.date(2026, 5, 21), 5) == dt.date(2026, 5, 29)  # Memorial Day
    assert add_business_days(dt.date(2026, 7, 1), 2) == dt.date(2026, 7, 6)  # July 3 observed
    assert validation_period_end(dt.date(2026, 3, 2)) == dt.date(2026, 4, 8)


def test_every_event_rule_has_a_check_and_metadata_is_complete() -> None:
    for rule in RULES:
        assert rule.citation
        assert rule.verification in {"V", "S", "U"}
        if rule.kind == "event":
            assert rule.id in CHECKS
    assert set(CHECKS) <= set(BY_ID)


def test_rule_not_in_force_does_not_apply() -> None:
    nyc = {"debtor": {"zip": "10001", "city_is_nyc": True}}
    calls = {"contact_history": [call(f"2026-03-0{d}T12:00:00-05:00") for d in (5, 6, 7)]}
    before = merge(merge(nyc, calls), at("2025-03-09T12:00:00-05:00"))
    before["contact_history"] = [call(f"2025-03-0{d}T12:00:00-05:00") for d in (5, 6, 7)]
    assert "STATE-NYC-3IN7" not in evaluate(context(before)).reasons
    after = merge(merge(nyc, calls), at("2026-03-09T12:00:00-04:00"))
    assert "STATE-NYC-3IN7" in evaluate(context(after)).reasons


def test_overlay_only_tightens() -> None:
    with pytest.raises(OverlayError):
        OrgOverlay(window_start=dt.time(7, 30))
    with pytest.raises(OverlayError):
        OrgOverlay(window_end=dt.time(21, 30))
    with pytest.raises(OverlayError):
        OrgOverlay(max_calls_per_7_days=8)
    with pytest.raises(OverlayError):
        OrgOverlay.from_json({"window_start": "09:00", "loosen": True})


def test_overlay_window_caps_and_holidays() -> None:
    overlay = OrgOverlay(window_start=dt.time(9), window_end=dt.time(18),
                         max_calls_per_7_days=2, holiday_country="US")
    early = evaluate(context(at("2026-03-10T08:30:00-04:00")), overlay)
    assert early.decision == "block"
    assert "ORG-WINDOW" in early.reasons
    assert early.next_allowed_iso() == "2026-03-10T09:00:00-04:00"
    two_calls = {"contact_history": [call("2026-03-08T12:00:00-04:00"),
                                     call("2026-03-09T12:00:00-04:00")]}
    capped = evaluate(context(two_calls), overlay)
    assert capped.reasons[-1] == "ORG-CALL-CAP"
    assert capped.next_allowed_iso() == "2026-03-15T09:00:00-04:00"
    july4 = evaluate(context(at("2026-07-03T10:00:00-04:00")), overlay)  # observed holiday
    assert "ORG-HOLIDAYS" in july4.reasons
    # Both July 3 (observed) and July 4 are listed; Sunday July 5 is not a holiday.
    assert july4.next_allowed_iso() == "2026-07-05T09:00:00-04:00"
    # Without an overlay the same events are allowed: the overlay only adds blocks.
    assert evaluate(context(at("2026-07-03T10:00:00-04:00"))).decision == "allow"


def test_overlay_contact_cap_counts_all_media() -> None:
    overlay = OrgOverlay(max_contacts_per_7_days=1)
    sent = {"contact_history": [call("2026-03-09T12:00:00-04:00", "delivered", channel="sms")]}
    assert evaluate(context(sent), overlay).reasons[-1] == "ORG-CONTACT-CAP"
