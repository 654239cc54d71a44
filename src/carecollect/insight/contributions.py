"""What one account contributes to the aggregate metrics, computed from its ledger lines
and campaign enrollments alone.

Every ledger-derived metric is a sum over accounts of a per-account contribution. That is
what makes the rollup exact and incremental: when an account gets new lines, its old
contribution (from the lines the rollup had seen) is subtracted and its new one added, and
a report is "rollup cells + the same correction for accounts touched since the rollup's
watermark". With no rollup at all, every account is "touched" and the report is computed
live from the ledger; tests check that both paths agree.

Cells are keyed ``(metric, period, bucket)`` and hold ``[amount_cents, count]``.
See docs/INSIGHTS.md for the definitions.
"""

from __future__ import annotations

import bisect
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import NamedTuple
from zoneinfo import ZoneInfo

from carecollect.insight.periods import local_day, local_start

AGING_LABELS = ("0-30", "31-60", "61-90", "91-120", "120+")
PLACEMENT_WINDOWS = (30, 60, 90, 120)
LIFT_WINDOW_DAYS = 90
# What the patient paid: payments net of refunds (a refund gives a payment back).
PATIENT_CASH_KINDS = frozenset({"patient_payment", "refund"})

CellKey = tuple[str, date, str]
METRICS = frozenset({"ledger_day", "aging", "placement", "lift_enrolled", "lift_recovered",
                     "agency"})


def aging_label(age_days: int) -> str:
    """Same buckets as the ledger domain: 0-30, 31-60, 61-90, 91-120, 120+ days."""
    if age_days <= 30:
        return "0-30"
    if age_days <= 60:
        return "31-60"
    if age_days <= 90:
        return "61-90"
    if age_days <= 120:
        return "91-120"
    return "120+"


class Line(NamedTuple):
    """A named tuple, not a dataclass: the full rebuild makes one per ledger line."""

    kind: str
    amount_cents: int  # signed: positive increases what the guarantor owes
    posted_at: datetime
    created_at: datetime | None = None  # when the line was written (for the rollup)


class Enrollment(NamedTuple):
    campaign_id: uuid.UUID
    cohort: str  # treatment | holdout
    enrolled_at: datetime
    created_at: datetime | None = None


@dataclass(frozen=True)
class Parameters:
    zone: ZoneInfo
    aging_days: tuple[date, ...]  # as-of days (balance at the start of each)
    agency_threshold_days: int = 120
    metrics: frozenset[str] | None = None  # None: every metric
    # (as-of day, its first instant in UTC, the last day it includes), computed once.
    aging_cutoffs: tuple[tuple[date, datetime, date], ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "aging_cutoffs", tuple(
            (day, local_start(day, self.zone), day - timedelta(days=1))
            for day in self.aging_days))


@dataclass
class AccountHistory:
    lines: list[Line] = field(default_factory=list)
    enrollments: list[Enrollment] = field(default_factory=list)


def created_before(history: AccountHistory, watermark: datetime) -> AccountHistory:
    """The part of the history the rollup had seen at `watermark`."""
    return AccountHistory(
        [line for line in history.lines
         if line.created_at is not None and line.created_at < watermark],
        [item for item in history.enrollments
         if item.created_at is not None and item.created_at < watermark],
    )


def _add(cells: dict[CellKey, list[int]], key: CellKey, amount: int, count: int) -> None:
    cell = cells.get(key)
    if cell is None:
        cells[key] = [amount, count]
    else:
        cell[0] += amount
        cell[1] += count


def _patient_cash(lines: Iterable[Line], after: datetime, until: datetime | None) -> int:
    """Net cash from the patient posted in (after, until] (payments minus refunds)."""
    total = 0
    for line in lines:
        if line.kind in PATIENT_CASH_KINDS and line.posted_at > after and (
            until is None or line.posted_at <= until
        ):
            total -= line.amount_cents
    return total


def contribute(history: AccountHistory, params: Parameters) -> dict[CellKey, list[int]]:
    """The cells one account contributes to (see the module docstring)."""
    cells: dict[CellKey, list[int]] = {}
    lines = sorted(history.lines, key=lambda line: line.posted_at)
    zone = params.zone
    wanted = params.metrics or METRICS
    days = [local_day(line.posted_at, zone) for line in lines]
    if "ledger_day" in wanted:
        for line, day in zip(lines, days, strict=True):
            _add(cells, ("ledger_day", day, line.kind), line.amount_cents, 1)
    if "aging" in wanted and params.aging_days:
        postings = [line.posted_at for line in lines]
        prefix = [0]
        for line in lines:
            prefix.append(prefix[-1] + line.amount_cents)
        charges = [(i, day, line.amount_cents)
                   for i, (line, day) in enumerate(zip(lines, days, strict=True))
                   if line.kind == "charge"]
        charge_index = [c[0] for c in charges]
        for as_of, instant, last_day in params.aging_cutoffs:
            cutoff = bisect.bisect_left(postings, instant)
            balance = prefix[cutoff]
            if balance > 0:
                open_charges = charges[:bisect.bisect_left(charge_index, cutoff)]
                _aging(cells, balance, open_charges, as_of, last_day)
    if history.enrollments:
        if "placement" in wanted:
            first = min(history.enrollments, key=lambda e: e.enrolled_at)
            _placement(cells, lines, first.enrolled_at, zone)
        if "lift_enrolled" in wanted or "lift_recovered" in wanted:
            for enrollment in history.enrollments:
                _lift(cells, lines, enrollment, zone)
    if "agency" in wanted:
        _agency(cells, lines, days, params)
    return cells


def _aging(
    cells: dict[CellKey, list[int]], balance: int, charges: list[tuple[int, date, int]],
    as_of: date, last_day: date,
) -> None:
    """FIFO aging at the start of `as_of` of a positive `balance`: credits pay the oldest
    charges first, so the open balance sits in the newest charges; it is spread over them
    newest first. A balance above every charge (only refunds or positive adjustments can
    cause that) ages with the oldest charge. The account is counted once, in the bucket of
    its oldest open charge."""
    remaining = balance
    oldest_label = "0-30"
    for _index, day, amount in reversed(charges):
        if remaining <= 0:
            break
        taken = min(remaining, amount)
        label = aging_label((last_day - day).days)
        key = ("aging", as_of, label)
        cell = cells.get(key)
        if cell is None:
            cells[key] = [taken, 0]
        else:
            cell[0] += taken
        remaining -= taken
        oldest_label = label
    if remaining > 0:
        label = aging_label((last_day - charges[0][1]).days) if charges else "0-30"
        _add(cells, ("aging", as_of, label), remaining, 0)
        oldest_label = label
    _add(cells, ("aging", as_of, oldest_label), 0, 1)


def _placement(
    cells: dict[CellKey, list[int]], lines: list[Line], placed_at: datetime, zone: ZoneInfo
) -> None:
    """Placement = the account's first campaign enrollment. Balance at placement: every line
    posted at or before it. Collected within N days: net patient cash posted in
    (placed_at, placed_at + N days], capped at the balance at placement."""
    balance = sum(line.amount_cents for line in lines if line.posted_at <= placed_at)
    if balance <= 0:
        return
    day = local_day(placed_at, zone)
    _add(cells, ("placement", day, "placed"), balance, 1)
    for window in PLACEMENT_WINDOWS:
        collected = _patient_cash(lines, placed_at, placed_at + timedelta(days=window))
        collected = max(0, min(collected, balance))
        _add(cells, ("placement", day, f"collected_{window}"), collected, 1 if collected else 0)


def _lift(
    cells: dict[CellKey, list[int]], lines: list[Line], enrollment: Enrollment, zone: ZoneInfo
) -> None:
    """Recovered = net patient cash > 0 within LIFT_WINDOW_DAYS after enrollment."""
    day = local_day(enrollment.enrolled_at, zone)
    bucket = f"{enrollment.campaign_id}|{enrollment.cohort}"
    balance = sum(line.amount_cents for line in lines if line.posted_at <= enrollment.enrolled_at)
    collected = _patient_cash(
        lines, enrollment.enrolled_at, enrollment.enrolled_at + timedelta(days=LIFT_WINDOW_DAYS)
    )
    _add(cells, ("lift_enrolled", day, bucket), max(balance, 0), 1)
    if collected > 0:
        _add(cells, ("lift_recovered", day, bucket), collected, 1)


def _agency(
    cells: dict[CellKey, list[int]], lines: list[Line], days: list[date], params: Parameters
) -> None:
    """The first local day E at whose end some open charge is more than the threshold old
    (FIFO, as in aging): the day the account would have been placed with an agency. Eligible
    balance: the whole balance at the end of E. Recovered in-house: net patient cash posted
    after the end of E, capped at the eligible balance."""
    threshold = params.agency_threshold_days
    candidates = {day + timedelta(days=threshold + 1)
                  for line, day in zip(lines, days, strict=True) if line.kind == "charge"}
    if not candidates:
        return
    first_candidate = min(candidates)
    candidates |= {day for line, day in zip(lines, days, strict=True)
                   if line.kind != "charge" and line.amount_cents > 0 and day > first_candidate}
    for eligible_day in sorted(candidates):
        end = local_start(eligible_day + timedelta(days=1), params.zone)
        oldest_recent = eligible_day - timedelta(days=threshold)
        balance = 0
        recent_charges = 0
        for line, day in zip(lines, days, strict=True):
            if line.posted_at >= end:
                break
            balance += line.amount_cents
            if line.kind == "charge" and day >= oldest_recent:
                recent_charges += line.amount_cents
        if balance - recent_charges > 0:
            _add(cells, ("agency", eligible_day, "eligible"), balance, 1)
            recovered = max(0, min(_patient_cash(lines, end - timedelta(microseconds=1), None),
                                   balance))
            _add(cells, ("agency", eligible_day, "recovered"), recovered, 1 if recovered else 0)
            return


def subtract(
    into: dict[CellKey, list[int]], cells: dict[CellKey, list[int]], sign: int = -1
) -> None:
    for key, (amount, count) in cells.items():
        _add(into, key, sign * amount, sign * count)
