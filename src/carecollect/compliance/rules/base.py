"""Shared machinery for rule units: the Finding type, registration and time helpers."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from typing import Literal

from carecollect.compliance import zones as tz
from carecollect.compliance.facts import Facts

Effect = Literal["block", "modify"]


@dataclasses.dataclass(frozen=True, slots=True)
class Finding:
    """A violated rule (effect `block`) or a required modification (effect `modify`).

    `earliest` is set only by time and frequency rules: the earliest instant at or after the
    proposed time at which this rule alone would pass.
    """

    rule_id: str
    effect: Effect
    explanation: str
    earliest: dt.datetime | None = None
    modification: str | None = None
    also: tuple[str, ...] = ()


Check = Callable[[Facts], Finding | None]
CHECKS: dict[str, Check] = {}


def check(rule_id: str) -> Callable[[Check], Check]:
    def register(fn: Check) -> Check:
        if rule_id in CHECKS:
            raise ValueError(f"duplicate check for {rule_id}")
        CHECKS[rule_id] = fn
        return fn

    return register


def block(rule_id: str, explanation: str, earliest: dt.datetime | None = None,
          also: Sequence[str] = ()) -> Finding:
    return Finding(rule_id, "block", explanation, earliest, None, tuple(also))


def modify(rule_id: str, modification: str, explanation: str,
           also: Sequence[str] = ()) -> Finding:
    return Finding(rule_id, "modify", explanation, None, modification, tuple(also))


def fmt_clock(value: dt.time) -> str:
    return value.strftime("%H:%M")


def window_check(f: Facts, start: dt.time, end: dt.time
                 ) -> tuple[list[str], dt.datetime | None]:
    """window_violation for the proposed time over the candidate zones, memoized."""
    key = ("window", start, end)
    got = f.memo.get(key)
    if got is None:
        got = window_violation(f.t, f.zones, start, end)
        f.memo[key] = got
    return got  # type: ignore[return-value]


def window_violation(t: dt.datetime, zones: Iterable[str], start: dt.time, end: dt.time
                     ) -> tuple[list[str], dt.datetime | None]:
    """Zones in which `t` is outside [start, end), and the earliest instant inside in all."""
    zone_list = tuple(zones)
    # tz.in_window inlined (half-open [start, end), PLAT-TIME-BOUNDARY): the hot path.
    zone = tz.zone
    bad = [z for z in zone_list if not start <= t.astimezone(zone(z)).time() < end]
    if not bad:
        return bad, None
    return bad, next_in_all(t, zone_list, start, end)


def next_in_all(t: dt.datetime, zones: Sequence[str], start: dt.time, end: dt.time
                ) -> dt.datetime | None:
    """Earliest instant >= t inside [start, end) in every zone (None if none within 8 days)."""
    candidate = t
    for _ in range(32):
        moved = max(tz.next_window_start(candidate, z, start, end) for z in zones)
        if moved == candidate:
            return candidate.astimezone(dt.UTC)
        candidate = moved
        if candidate - t > dt.timedelta(days=8):
            return None
    return None


def describe_window(t: dt.datetime, bad: Sequence[str], start: dt.time, end: dt.time) -> str:
    parts = [f"{tz.local(t, z).strftime('%H:%M:%S')} in {z}" for z in bad]
    return f"{', '.join(parts)} is outside [{fmt_clock(start)}, {fmt_clock(end)})"


def frequency_violation(f: Facts, events: Sequence[dt.datetime], cap_prior: int, span: int
                        ) -> tuple[str, int, dt.datetime] | None:
    """Day-window counting (PLAT-DAY-COUNT) in every candidate zone.

    Blocks when `cap_prior` or more counted events fall on local days D-span+1..D. Returns
    (zone, count, earliest instant the count drops below the cap) for the worst zone.
    """
    worst: tuple[str, int, dt.datetime] | None = None
    for zone in f.zones:
        day = tz.local_date(f.t, zone)
        first = day - dt.timedelta(days=span - 1)
        dates = sorted((tz.local_date(a, zone) for a in events), reverse=True)
        count = sum(1 for d in dates if first <= d <= day)
        if count < cap_prior:
            continue
        release = dates[cap_prior - 1] + dt.timedelta(days=span)
        earliest = tz.day_start(release, zone).astimezone(dt.UTC)
        if worst is None or earliest > worst[2]:
            worst = (zone, count, earliest)
    return worst
