"""Organization overlay rule units (ORG-*); active only when an overlay is given."""

from __future__ import annotations

import datetime as dt

from carecollect.compliance import zones as tz
from carecollect.compliance.facts import CALL_CHANNELS, Facts
from carecollect.compliance.rules.base import (
    Finding,
    block,
    check,
    describe_window,
    frequency_violation,
    window_check,
)
from carecollect.compliance.rules.regf import _excluded, consent_windows, placed_call

DAY = dt.timedelta(days=1)


@check("ORG-WINDOW")
def org_window(f: Facts) -> Finding | None:
    o = f.overlay
    if o is None:
        return None
    bad, earliest = window_check(f, o.window_start, o.window_end)
    if not bad:
        return None
    return block("ORG-WINDOW", describe_window(f.t, bad, o.window_start, o.window_end),
                 earliest, ["PLAT-TIME-BOUNDARY"])


def _day_rule(f: Facts, rule_id: str, test: str) -> Finding | None:
    o = f.overlay
    if o is None:
        return None
    latest: dt.datetime | None = None
    why = ""
    for zone in f.zones:
        day = tz.local_date(f.t, zone)
        reason = o.is_quiet(day) if test == "quiet" else o.holiday(day)
        if reason is None:
            continue
        nxt = day + DAY
        for _ in range(14):  # skip consecutive quiet days / holidays
            again = o.is_quiet(nxt) if test == "quiet" else o.holiday(nxt)
            if again is None:
                break
            nxt += DAY
        end = tz.day_start(nxt, zone).astimezone(dt.UTC)
        if latest is None or end > latest:
            latest, why = end, f"{day} is a {reason} in {zone}"
    if latest is None:
        return None
    also = ["STATE-SUNDAY"] if test == "quiet" else []
    return block(rule_id, why, latest, also)


@check("ORG-QUIET-DAYS")
def org_quiet(f: Facts) -> Finding | None:
    return _day_rule(f, "ORG-QUIET-DAYS", "quiet")


@check("ORG-HOLIDAYS")
def org_holidays(f: Facts) -> Finding | None:
    return _day_rule(f, "ORG-HOLIDAYS", "holiday")


@check("ORG-CALL-CAP")
def org_call_cap(f: Facts) -> Finding | None:
    o = f.overlay
    if o is None or o.max_calls_per_7_days is None:
        return None
    cap = o.max_calls_per_7_days
    person = f.action.recipient
    for debt_id in f.debt_ids:
        zone = f.primary_zone
        windows = consent_windows(f, zone)
        calls = [e.at for e in f.history if placed_call(e.channel, e.direction, e.outcome)
                 and e.person == person and f.about_debt(e, debt_id)
                 and not _excluded(e.at, windows, zone)]
        if cap == 0:
            return block("ORG-CALL-CAP", "organization allows no calls")
        hit = frequency_violation(f, calls, cap, 7)
        if hit is not None:
            zone, count, earliest = hit
            return block("ORG-CALL-CAP", f"{count} placed calls in 7 days ({zone}); "
                         f"organization cap {cap}", earliest, ["PLAT-DAY-COUNT"])
    return None


@check("ORG-CONTACT-CAP")
def org_contact_cap(f: Facts) -> Finding | None:
    o = f.overlay
    if o is None or o.max_contacts_per_7_days is None:
        return None
    cap = o.max_contacts_per_7_days
    if cap == 0:
        return block("ORG-CONTACT-CAP", "organization allows no contacts")
    events = [e.at for e in f.history if e.direction == "outbound" and e.person == "debtor"
              and ((e.channel in CALL_CHANNELS and e.outcome != "not_connected")
                   or e.channel in ("sms", "email"))]
    hit = frequency_violation(f, events, cap, 7)
    if hit is None:
        return None
    zone, count, earliest = hit
    return block("ORG-CONTACT-CAP", f"{count} contacts in 7 days ({zone}); organization cap "
                 f"{cap}", earliest, ["PLAT-DAY-COUNT"])
