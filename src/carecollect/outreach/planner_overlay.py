"""The organization's compliance overlay in the planner's batch path.

The compliance engine's batch path (`compliance.batch.evaluate_portfolio`) has no overlay
input; the scalar engine applies the overlay's ORG-* rules at send time. So that a night's
plan already reflects a stricter organization (docs/OUTREACH.md, "Planner"), the planner
applies the same rules itself, column-wise, around its batch calls:

* ORG-WINDOW, ORG-QUIET-DAYS, ORG-HOLIDAYS (timed channels: sms, e-mail, calls): the
  proposed instant moves to the earliest instant inside the organization's window on a day
  that is neither quiet nor a holiday, in every candidate zone of the row (mailing zone,
  the other known zone, the phone's area-code zones for phone channels) -- the same zones
  and the same half-open window as the batch path and the scalar rules. Computed once per
  distinct (zones, instant) pair.
* ORG-CONTACT-CAP (timed channels) and ORG-CALL-CAP (calls): day-window counting
  (PLAT-DAY-COUNT) over the debtor's last 31 days of outbound contacts, as the scalar rule
  does; at the cap the instant moves to the first local day the count drops below it. Only
  rows whose debtor has at least `cap` counted contacts are looked at one by one. A cap of
  0 blocks the channel outright. The planner's history has no recipient or debt columns,
  so every outbound contact of the debtor counts (stricter than the send-time rule, never
  looser).

`decide_with_overlay` alternates these moves with batch-path calls until both agree on an
instant (bounded: `ROUNDS`), so a row re-timed by the batch path (e.g. to 08:00) is moved
again by a narrower organization window, and a row moved by the overlay is re-checked by
the batch path at its new instant. An instant further than the horizon from the proposed
time is a block for that channel (the next channel is tried), with the rule ids met.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import polars as pl

from carecollect.compliance import zones as tz
from carecollect.compliance.batch import UTC_DT
from carecollect.compliance.overlay import OrgOverlay

TIMED = ("sms", "email", "call", "voicemail")
CALLS = ("call", "voicemail")
PHONE = ("sms", "call", "voicemail")
ROUNDS = 8  # overlay move + batch call rounds per channel pass
_MOVES = 64  # window / day / cap moves per instant
_DAY = dt.timedelta(days=1)
_EMPTY = pl.lit([], dtype=pl.List(pl.String))
_RESULT = ["enrollment_id", "new_outcome", "new_cp", "new_at", "add_reasons", "add_tried", "try"]


def applies(overlay: OrgOverlay | None, channel: str) -> bool:
    return overlay is not None and channel in TIMED


def _zones_column(channel: str) -> pl.Expr:
    """The row's candidate zones as a comma-separated string (see the batch path's
    `_zone_table`: mailing, other known zone, area-code zones for phone channels)."""
    other = pl.col("other_known_tz").str.json_decode(pl.List(pl.String)).list.first()
    other_tz = (
        pl.when(pl.col("address_tz").is_not_null() & (pl.col("address_tz") != pl.col("mailing_tz")))
        .then(pl.col("address_tz"))
        .otherwise(other)
    )
    parts = [pl.col("mailing_tz"), other_tz]
    if channel in PHONE:
        parts.append(pl.col("area_code_tzs").str.json_decode(pl.List(pl.String)).list.join(","))
    return pl.concat_str(parts, separator=",", ignore_nulls=True).alias("_zones")


def _split_zones(text: str | None) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for zone in (text or "").split(","):
        if zone and tz.is_valid_zone(zone):
            seen.setdefault(zone, None)
    return tuple(seen) or ("UTC",)


def _day_reason(overlay: OrgOverlay, day: dt.date) -> str | None:
    if overlay.is_quiet(day) is not None:
        return "ORG-QUIET-DAYS"
    if overlay.holiday(day) is not None:
        return "ORG-HOLIDAYS"
    return None


def _blocking(overlay: OrgOverlay, zones: tuple[str, ...], at: dt.datetime) -> tuple[str, ...]:
    """The overlay's window and day rules that block `at` in some zone."""
    found: dict[str, None] = {}
    for zone in zones:
        why = _day_reason(overlay, tz.local_date(at, zone))
        if why is not None:
            found.setdefault(why, None)
        if not tz.in_window(at, zone, overlay.window_start, overlay.window_end):
            found.setdefault("ORG-WINDOW", None)
    return tuple(found)


def clear_instant(
    overlay: OrgOverlay, zones: tuple[str, ...], at: dt.datetime, limit: dt.datetime
) -> tuple[dt.datetime | None, tuple[str, ...]]:
    """Earliest instant >= `at` inside the overlay's window on a day that is neither quiet
    nor a holiday in every zone (None after `limit`), and the ORG rule ids that block `at`
    itself (not the steps on the way: a day move lands at midnight, outside any window)."""
    reasons = _blocking(overlay, zones, at)
    current = at
    for _ in range(_MOVES):
        moved = current
        for zone in zones:
            day = tz.local_date(moved, zone)
            if _day_reason(overlay, day) is not None:
                nxt = day + _DAY
                for _ in range(14):  # consecutive quiet days and holidays
                    if _day_reason(overlay, nxt) is None:
                        break
                    nxt += _DAY
                moved = max(moved, tz.day_start(nxt, zone).astimezone(dt.UTC))
            start = tz.next_window_start(moved, zone, overlay.window_start, overlay.window_end)
            if start != moved:
                moved = start.astimezone(dt.UTC)
        if moved > limit:
            return None, reasons
        if moved == current:
            return current, reasons
        current = moved
    return None, reasons


def cap_release(
    zones: tuple[str, ...], events: list[dt.datetime], cap: int, at: dt.datetime
) -> dt.datetime | None:
    """PLAT-DAY-COUNT: None when fewer than `cap` counted events (strictly before `at`)
    fall on the local days D-6..D in every zone, else the first instant the count drops
    below the cap in the worst zone."""
    worst: dt.datetime | None = None
    before = [e for e in events if e < at]
    if len(before) < cap:
        return None
    for zone in zones:
        day = tz.local_date(at, zone)
        first = day - dt.timedelta(days=6)
        dates = sorted((tz.local_date(e, zone) for e in before), reverse=True)
        if sum(1 for d in dates if first <= d <= day) < cap:
            continue
        release = tz.day_start(dates[cap - 1] + dt.timedelta(days=7), zone).astimezone(dt.UTC)
        if worst is None or release > worst:
            worst = release
    return worst


def _counted(events: pl.DataFrame, calls_only: bool) -> pl.DataFrame:
    """Per guarantor, the instants of outbound contacts a cap counts."""
    call = pl.col("channel").is_in(list(CALLS)) & (
        pl.col("outcome").fill_null("") != "not_connected"
    )
    counted = call if calls_only else call | pl.col("channel").is_in(["sms", "email"])
    return (
        events.filter((pl.col("direction") == "outbound") & counted)
        .group_by("guarantor_id")
        .agg(pl.col("at").sort().alias("_events"))
    )


class _Caps:
    """The overlay's caps that bind `channel`, with each debtor's counted contacts."""

    def __init__(
        self,
        overlay: OrgOverlay,
        channel: str,
        events: pl.DataFrame,
        earliest: dt.datetime | None = None,
    ) -> None:
        self.rules: list[tuple[str, int, dict[str, list[dt.datetime]]]] = []
        self.zero: list[str] = []
        if earliest is not None:
            # A contact counts only on the local days D-6..D of an instant >= `earliest`,
            # so nothing older than 8 days before it (7 days and any zone offset) can.
            events = events.filter(pl.col("at") >= earliest - dt.timedelta(days=8))
        caps = [("ORG-CONTACT-CAP", overlay.max_contacts_per_7_days, False)]
        if channel in CALLS:
            caps.append(("ORG-CALL-CAP", overlay.max_calls_per_7_days, True))
        for rule, cap, calls_only in caps:
            if cap is None:
                continue
            if cap == 0:
                self.zero.append(rule)
                continue
            counted = _counted(events, calls_only).filter(pl.col("_events").list.len() >= cap)
            self.rules.append((rule, cap, dict(counted.iter_rows())))

    def capped(self) -> set[str]:
        out: set[str] = set()
        for _, _, by_g in self.rules:
            out.update(by_g)
        return out

    def release(
        self, guarantor_id: str, zones: tuple[str, ...], at: dt.datetime
    ) -> tuple[dt.datetime | None, tuple[str, ...]]:
        latest: dt.datetime | None = None
        hit: list[str] = []
        for rule, cap, by_g in self.rules:
            events = by_g.get(guarantor_id)
            if not events:
                continue
            release = cap_release(zones, events, cap, at)
            if release is not None:
                hit.append(rule)
                latest = release if latest is None or release > latest else latest
        return latest, tuple(hit)


def _settle(
    overlay: OrgOverlay,
    caps: _Caps,
    guarantor_id: str | None,
    zones: tuple[str, ...],
    at: dt.datetime,
    limit: dt.datetime,
) -> tuple[dt.datetime | None, tuple[str, ...]]:
    """Window, days and caps together: the earliest instant >= `at` none of them blocks,
    with the window and day rules blocking `at` and every cap met on the way."""
    reasons: dict[str, None] = dict.fromkeys(_blocking(overlay, zones, at))
    current = at
    for _ in range(_MOVES):
        clear, _why = clear_instant(overlay, zones, current, limit)
        if clear is None:
            return None, tuple(reasons)
        moved = clear
        if guarantor_id is not None:
            release, hit = caps.release(guarantor_id, zones, clear)
            if release is not None:
                reasons.update(dict.fromkeys(hit))
                moved = max(release, clear)
        if moved > limit:
            return None, tuple(reasons)
        if moved == current:
            return current, tuple(reasons)
        current = moved
    return None, tuple(reasons)


def overlay_times(
    rows: pl.DataFrame, channel: str, overlay: OrgOverlay, caps: _Caps, horizon: dt.timedelta
) -> pl.DataFrame:
    """`rows` (with `proposed_at`, `orig_at`, `acc_reasons`) with `proposed_at` moved
    past the overlay, the ORG rule ids added to `acc_reasons`, and `org_blocked` true when
    no instant within the horizon of `orig_at` exists (or a cap of 0 forbids the channel)."""
    rows = rows.with_columns(_zones_column(channel))
    if caps.zero:
        return rows.with_columns(
            pl.concat_list("acc_reasons", pl.lit(caps.zero, dtype=pl.List(pl.String))).alias(
                "acc_reasons"
            ),
            pl.lit(True).alias("org_blocked"),
        ).drop("_zones")
    capped = caps.capped()
    key = ["_zones", "proposed_at", "orig_at"]
    rows = rows.with_columns(
        pl.when(pl.col("guarantor_id").is_in(list(capped)))
        .then(pl.col("guarantor_id"))
        .otherwise(None)
        .alias("_capped")
    )
    pairs = rows.select(*key, "_capped").unique()
    settled: list[dict[str, Any]] = []
    zones_of: Callable[[str | None], tuple[str, ...]] = _split_zones
    for zones_text, at, orig, guarantor in pairs.iter_rows():
        moved, why = _settle(overlay, caps, guarantor, zones_of(zones_text), at, orig + horizon)
        settled.append(
            {
                "_zones": zones_text,
                "proposed_at": at,
                "orig_at": orig,
                "_capped": guarantor,
                "_moved": moved,
                "_why": list(why),
            }
        )
    table = pl.DataFrame(
        settled,
        schema={
            "_zones": pl.String,
            "proposed_at": UTC_DT,
            "orig_at": UTC_DT,
            "_capped": pl.String,
            "_moved": UTC_DT,
            "_why": pl.List(pl.String),
        },
    )
    rows = rows.join(table, on=[*key, "_capped"], how="left", nulls_equal=True)
    return rows.with_columns(
        pl.coalesce("_moved", "proposed_at").alias("proposed_at"),
        pl.concat_list("acc_reasons", pl.col("_why").fill_null(_EMPTY)).alias("acc_reasons"),
        pl.col("_moved").is_null().alias("org_blocked"),
    ).drop("_zones", "_capped", "_moved", "_why")


def decide_with_overlay(
    channel: str,
    sub: pl.DataFrame,
    overlay: OrgOverlay,
    events: pl.DataFrame,
    horizon: dt.timedelta,
    evaluate: Callable[[pl.DataFrame], pl.DataFrame],
) -> pl.DataFrame:
    """The planner's `_apply(sub, evaluate(sub), horizon)` with the overlay: the same
    result columns (`_RESULT`). `evaluate` is one batch-path call for the given rows."""
    earliest = sub.select(pl.col("proposed_at").min()).item() if sub.height else None
    caps = _Caps(overlay, channel, events, earliest)
    current = sub.with_columns(pl.col("proposed_at").alias("orig_at"), _EMPTY.alias("acc_reasons"))
    out: list[pl.DataFrame] = []

    def refused(frame: pl.DataFrame, reasons: pl.Expr) -> pl.DataFrame:
        return frame.select(
            "enrollment_id",
            pl.lit(None, pl.String).alias("new_outcome"),
            pl.lit(None, pl.String).alias("new_cp"),
            pl.lit(None, UTC_DT).alias("new_at"),
            reasons.alias("add_reasons"),
            reasons.alias("add_tried"),
            "try",
        )

    for _ in range(ROUNDS):
        if current.height == 0:
            break
        current = overlay_times(current, channel, overlay, caps, horizon)
        out.append(refused(current.filter(pl.col("org_blocked")), pl.col("acc_reasons")))
        live = current.filter(~pl.col("org_blocked")).drop("org_blocked")
        if live.height == 0:
            current = live
            break
        answers = evaluate(live).select(
            "enrollment_id", "decision", pl.col("reasons").alias("_reasons"), "next_allowed_at"
        )
        decided = live.join(answers, on="enrollment_id")
        allowed = pl.col("decision") != "block"
        reasons = pl.col("_reasons").fill_null(_EMPTY)
        moved = (pl.col("proposed_at") != pl.col("orig_at")) | pl.col("designation_moved")
        designated = (
            pl.when(pl.col("designation_moved"))
            .then(pl.lit(["REGF-TIME-DESIGNATED"]))
            .otherwise(_EMPTY)
        )
        out.append(
            decided.filter(allowed).select(
                "enrollment_id",
                pl.when(moved)
                .then(pl.lit("retime"))
                .otherwise(pl.lit("send"))
                .alias("new_outcome"),
                pl.col("cp_id").alias("new_cp"),
                pl.col("proposed_at").cast(UTC_DT).alias("new_at"),
                pl.concat_list(reasons, "acc_reasons", designated).alias("add_reasons"),
                reasons.alias("add_tried"),
                "try",
            )
        )
        blocked = decided.filter(~allowed)
        soon = pl.col("next_allowed_at").is_not_null() & (
            pl.col("next_allowed_at") - pl.col("orig_at") <= pl.lit(horizon)
        )
        out.append(refused(blocked.filter(~soon), pl.concat_list(reasons, "acc_reasons")))
        current = (
            blocked.filter(soon)
            .with_columns(
                pl.col("next_allowed_at").cast(UTC_DT).alias("proposed_at"),
                pl.concat_list("acc_reasons", reasons).alias("acc_reasons"),
            )
            .select(*sub.columns, "orig_at", "acc_reasons")
        )
    if current.height:
        out.append(refused(current, pl.col("acc_reasons")))
    return pl.concat([frame.select(_RESULT) for frame in out], how="vertical_relaxed")
