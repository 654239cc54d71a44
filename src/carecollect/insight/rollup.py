"""The rollup: stored sums of per-account contributions, refreshed by a job, and the cell
source every ledger-derived report reads through.

Exactness does not depend on the rollup being fresh. ``CellSource`` returns the stored
cells plus, for every account touched (a ledger line or an enrollment created) since the
watermark, its contribution now minus its contribution as the rollup saw it. With no
rollup state it computes everything live from the ledger.

``refresh`` moves the watermark to ``now - LAG`` (the lag leaves transactions still in
flight to the live correction, since a line's ``created_at`` is set before its commit).
It rebuilds in full when the as-of days of the aging cells change (at the first refresh
of each local day, so the "today" point exists), when the zone or the agency threshold
changed, and otherwise applies the touched accounts' deltas. A full rebuild also picks up
what deltas cannot see: an account moved to another location.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from carecollect.insight.contributions import (
    METRICS,
    AccountHistory,
    CellKey,
    Parameters,
    contribute,
    created_before,
)
from carecollect.insight.models import RollupState
from carecollect.insight.periods import local_day, local_start, month_start, next_month
from carecollect.insight.rebuild import rebuild_cells
from carecollect.insight.repository import Scope, insight_repository

LAG = timedelta(minutes=5)
# Organization-wide cells: each metric is also stored summed over locations, under
# `<metric>@all` with no location, so a report without a location filter reads one row
# per (period, bucket) instead of one per location (ten times fewer on a 10-office
# practice). Kept by the full rebuild and by every delta.
ALL = "@all"
# Prefix of `RollupState.aging_days` for the current cell layout (v2: organization-wide
# cells; v3: compliance cells); a state without it (written before) is rebuilt in full
# and not read meanwhile.
LAYOUT = "v3;"
MAX_AGING_MONTHS = 60
# Blocked / re-timed attempts (`compliance_blocks`): one cell per local scheduled day,
# account location and bucket `<blocked|retimed>|<channel>|<rule id>`, count = attempts.
# Attempts change after they are written (a planned attempt is blocked at send time), so
# these cells are not deltas: the cells hold every flagged attempt last changed before the
# watermark, and a day with an attempt changed since (any state) is recomputed whole, by
# the refresh and, until then, live by the report (see `CellSource.compliance_counts`).
COMPLIANCE = "compliance"
NO_RULE = "(no rule recorded)"
Cells = dict[CellKey, list[int]]
LocatedKey = tuple[str, date, uuid.UUID | None, str]


def _add(cells: dict[LocatedKey, list[int]], key: LocatedKey, amount: int, count: int) -> None:
    cell = cells.get(key)
    if cell is None:
        cells[key] = [amount, count]
    else:
        cell[0] += amount
        cell[1] += count


def stored_aging_days(zone: ZoneInfo, earliest: datetime | None, today: date) -> tuple[date, ...]:
    """Month starts (month ends passed) since the first charge, at most MAX_AGING_MONTHS back,
    and today's start."""
    if earliest is None:
        return ()
    first = next_month(local_day(earliest, zone))
    bound = month_start(today)
    for _ in range(MAX_AGING_MONTHS):
        bound = month_start(bound - timedelta(days=1))
    current = max(first, bound)
    days: list[date] = []
    while current <= today:
        days.append(current)
        current = next_month(current)
    if today.day != 1 and first <= today:
        days.append(today)
    return tuple(days)


def _days_text(days: tuple[date, ...]) -> str:
    return LAYOUT + ",".join(d.isoformat() for d in days)


def _parse_days(text: str) -> tuple[date, ...]:
    text = text.removeprefix(LAYOUT)
    return tuple(date.fromisoformat(part) for part in text.split(",") if part)


def with_totals(cells: dict[LocatedKey, list[int]]) -> dict[LocatedKey, list[int]]:
    """The cells plus their organization-wide sums (`<metric>@all`, no location)."""
    out = {key: list(value) for key, value in cells.items()}
    for (metric, period, _location, bucket), (amount, count) in cells.items():
        _add(out, (metric + ALL, period, None, bucket), amount, count)
    return out


def day_ranges(days: Iterable[date], zone: ZoneInfo) -> list[tuple[datetime, datetime]]:
    """Consecutive local days merged into [start, end) UTC ranges."""
    ranges: list[tuple[datetime, datetime]] = []
    first: date | None = None
    last: date | None = None
    for day in sorted(set(days)):
        if last is not None and day == last + timedelta(days=1):
            last = day
            continue
        if first is not None and last is not None:
            ranges.append((local_start(first, zone), local_start(last + timedelta(days=1), zone)))
        first = last = day
    if first is not None and last is not None:
        ranges.append((local_start(first, zone), local_start(last + timedelta(days=1), zone)))
    return ranges


def compliance_cells(
    session: Session, *, organization_id: uuid.UUID, zone: ZoneInfo, watermark: datetime,
    days: Iterable[date] | None = None,
) -> dict[LocatedKey, list[int]]:
    """Compliance cells of the flagged attempts last changed before `watermark` (of the
    given local days, or all): per rule id carried (or NO_RULE), `blocked|...` when the
    state is `blocked`, `retimed|...` when the planner re-timed it (both when both)."""
    ranges = None if days is None else day_ranges(days, zone)
    cells: dict[LocatedKey, list[int]] = {}
    if ranges == []:
        return cells
    for scheduled, location, channel, state, reasons, retimed in (
        insight_repository.flagged_attempt_rows(
            session, organization_id, updated_before=watermark, ranges=ranges)
    ):
        day = local_day(scheduled, zone)
        for rule in reasons or [NO_RULE]:
            if state == "blocked":
                _add(cells, (COMPLIANCE, day, location, f"blocked|{channel}|{rule}"), 0, 1)
            if retimed:
                _add(cells, (COMPLIANCE, day, location, f"retimed|{channel}|{rule}"), 0, 1)
    return cells


def python_cells(
    session: Session, *, organization_id: uuid.UUID, watermark: datetime, params: Parameters,
) -> tuple[dict[LocatedKey, list[int]], int]:
    """The full rebuild one account at a time (the reference for ``rebuild_cells``)."""
    cells: dict[LocatedKey, list[int]] = {}
    seen: set[uuid.UUID] = set()
    for account_id, location, history in insight_repository.stream_histories(
        session, organization_id, watermark
    ):
        seen.add(account_id)
        for (metric, period, bucket), (amount, count) in contribute(history, params).items():
            _add(cells, (metric, period, location, bucket), amount, count)
    return cells, len(seen)


@dataclass(frozen=True)
class RefreshResult:
    mode: str  # full | incremental
    accounts: int
    cells: int
    watermark_at: datetime


def refresh(
    session: Session, *, organization_id: uuid.UUID, now: datetime, full_rebuild: str = "set",
) -> RefreshResult:
    """Bring the rollup up to ``now - LAG`` (the caller's transaction; never commits).

    A full rebuild is set-based (``rebuild.rebuild_cells``, DuckDB) unless ``full_rebuild``
    is ``"python"``: one ``contribute`` call per account (kept as the reference the tests
    compare the set-based rebuild with)."""
    if full_rebuild not in ("set", "python"):
        raise ValueError("full_rebuild is 'set' or 'python'")
    repo = insight_repository
    zone_name = repo.organization_zone(session, organization_id)
    zone = ZoneInfo(zone_name)
    threshold = repo.agency_threshold_days(session, organization_id)
    today = local_day(now, zone)
    watermark = now - LAG
    aging_days = stored_aging_days(zone, repo.earliest_posting(session, organization_id), today)
    params = Parameters(zone=zone, aging_days=aging_days, agency_threshold_days=threshold)
    state = repo.lock_state(session, organization_id)
    full = (
        state is None or state.aging_days != _days_text(aging_days) or state.zone != zone_name
        or state.agency_threshold_days != threshold
        or local_day(state.rebuilt_at, zone) != today or watermark <= state.watermark_at
    )
    if full:
        if full_rebuild == "set":
            cells, accounts = rebuild_cells(session, organization_id=organization_id,
                                            watermark=watermark, params=params)
        else:
            cells, accounts = python_cells(session, organization_id=organization_id,
                                           watermark=watermark, params=params)
        cells.update(compliance_cells(session, organization_id=organization_id, zone=zone,
                                      watermark=watermark))
        repo.replace_cells(session, organization_id, with_totals(cells))
        if state is None:
            state = RollupState(organization_id=organization_id)
            session.add(state)
        state.rebuilt_at = now
        written = len(cells)
    else:
        assert state is not None  # noqa: S101 - `full` covers the missing state
        touched = repo.touched_accounts(session, organization_id, state.watermark_at, watermark)
        histories = repo.histories(session, organization_id, sorted(touched))
        locations = repo.account_locations(session, organization_id, touched)
        deltas: dict[LocatedKey, list[int]] = {}
        for account_id, history in histories.items():
            location = locations.get(account_id)
            old = contribute(created_before(history, state.watermark_at), params)
            new = contribute(created_before(history, watermark), params)
            for (metric, period, bucket), (amount, count) in new.items():
                _add(deltas, (metric, period, location, bucket), amount, count)
            for (metric, period, bucket), (amount, count) in old.items():
                _add(deltas, (metric, period, location, bucket), -amount, -count)
        repo.apply_cell_deltas(session, organization_id, with_totals(deltas))
        accounts = len(touched)
        written = sum(1 for value in deltas.values() if value[0] or value[1])
        # Compliance: every day with an attempt changed since the last watermark is
        # recomputed whole (attempts are updated in place, so there is no delta to add).
        days = {local_day(when, zone) for when in repo.attempt_times_updated(
            session, organization_id, state.watermark_at, watermark)}
        if days:
            fresh = compliance_cells(session, organization_id=organization_id, zone=zone,
                                     watermark=watermark, days=days)
            repo.replace_period_cells(session, organization_id,
                                      metrics=[COMPLIANCE, COMPLIANCE + ALL], periods=days,
                                      cells=with_totals(fresh))
            written += len(fresh)
    state.watermark_at = watermark
    state.aging_days = _days_text(aging_days)
    state.zone = zone_name
    state.agency_threshold_days = threshold
    state.updated_at = now
    session.flush()
    return RefreshResult("full" if full else "incremental", accounts, written, watermark)


class CellSource:
    """Cells of the ledger-derived metrics for one organization and scope, exact at the
    time of the query (see the module docstring)."""

    def __init__(
        self, session: Session, *, organization_id: uuid.UUID, scope: Scope, zone: ZoneInfo,
    ) -> None:
        self.session = session
        self.organization_id = organization_id
        self.scope = scope
        self.zone = zone
        repo = insight_repository
        self.threshold = repo.agency_threshold_days(session, organization_id)
        state = repo.rollup_state(session, organization_id)
        usable = (
            state is not None and scope.account_ids is None and state.zone == str(zone)
            and state.agency_threshold_days == self.threshold
            and state.aging_days.startswith(LAYOUT)
        )
        self.state = state if usable else None
        self.stored_days = _parse_days(self.state.aging_days) if self.state else ()
        self._touched: dict[uuid.UUID, tuple[uuid.UUID | None, AccountHistory]] | None = None
        self._correction: dict[frozenset[str], Cells] = {}
        self._live: dict[tuple[tuple[date, ...], frozenset[str]], Cells] = {}
        self.live_notes: list[str] = []

    @property
    def live(self) -> bool:
        return self.state is None

    def _params(self, days: tuple[date, ...], metrics: frozenset[str] | None = None) -> Parameters:
        return Parameters(zone=self.zone, aging_days=days,
                          agency_threshold_days=self.threshold, metrics=metrics)

    def _in_scope_histories(self) -> list[AccountHistory]:
        repo = insight_repository
        if self.scope.account_ids is not None:
            histories = repo.histories(self.session, self.organization_id,
                                       sorted(self.scope.account_ids))
            locations = repo.account_locations(self.session, self.organization_id,
                                               histories.keys())
            return [h for a, h in histories.items() if self.scope.admits(a, locations.get(a))]
        return [
            h for a, location, h in repo.stream_histories(self.session, self.organization_id,
                                                           None)
            if self.scope.admits(a, location)
        ]

    def _live_cells(self, days: tuple[date, ...], metrics: frozenset[str]) -> Cells:
        key = (days, metrics)
        if key not in self._live:
            total: Cells = {}
            params = self._params(days, metrics)
            for history in self._in_scope_histories():
                for cell_key, (amount, count) in contribute(history, params).items():
                    cell = total.setdefault(cell_key, [0, 0])
                    cell[0] += amount
                    cell[1] += count
            self._live[key] = total
        return self._live[key]

    def _touched_histories(self) -> dict[uuid.UUID, tuple[uuid.UUID | None, AccountHistory]]:
        """Accounts with a line or enrollment created since the watermark (in scope)."""
        if self._touched is None:
            assert self.state is not None  # noqa: S101 - only called with a usable state
            repo = insight_repository
            touched = repo.touched_accounts(self.session, self.organization_id,
                                            self.state.watermark_at)
            histories = repo.histories(self.session, self.organization_id, sorted(touched),
                                       seen_at=self.state.watermark_at)
            locations = repo.account_locations(self.session, self.organization_id, touched)
            self._touched = {
                account_id: (locations.get(account_id), history)
                for account_id, history in histories.items()
                if self.scope.admits(account_id, locations.get(account_id))
            }
        return self._touched

    def _corrections(self, metrics: frozenset[str]) -> Cells:
        """Contribution now minus contribution as stored, for accounts touched since the
        watermark (and in scope), for `metrics` only."""
        if metrics not in self._correction:
            assert self.state is not None  # noqa: S101 - only called with a usable state
            watermark = self.state.watermark_at
            params = self._params(self.stored_days, metrics)
            total: Cells = {}
            for _location, history in self._touched_histories().values():
                for sign, part in ((1, history), (-1, created_before(history, watermark))):
                    for cell_key, (amount, count) in contribute(part, params).items():
                        cell = total.setdefault(cell_key, [0, 0])
                        cell[0] += sign * amount
                        cell[1] += sign * count
            self._correction[metrics] = total
        return self._correction[metrics]

    def cells(
        self, metrics: frozenset[str], *, period_from: date | None, period_to: date | None,
        aging_days: tuple[date, ...] = (),
    ) -> Cells:
        """Cells of `metrics` with period in [period_from, period_to); aging cells only for
        `aging_days` (as-of days)."""
        def keep(key: CellKey) -> bool:
            metric, period, _ = key
            if metric not in metrics:
                return False
            if metric == "aging":
                return period in aging_days
            return (period_from is None or period >= period_from) and (
                period_to is None or period < period_to)

        if self.state is None:
            live = self._live_cells(tuple(sorted(aging_days)), metrics)
            return {k: list(v) for k, v in live.items() if keep(k)}
        out: Cells = {}
        # Without a location filter the organization-wide cells are read (one per bucket).
        suffix = ALL if self.scope.location_id is None else ""
        stored_metrics = [m + suffix for m in metrics if m != "aging"]
        rows = []
        if stored_metrics:
            rows += insight_repository.cells(
                self.session, self.organization_id, metrics=stored_metrics,
                period_from=period_from, period_to=period_to, location_id=self.scope.location_id)
        stored_aging = [d for d in aging_days if d in self.stored_days]
        missing_aging = tuple(d for d in aging_days if d not in self.stored_days)
        if "aging" in metrics and stored_aging:
            rows += [row for row in insight_repository.cells(
                self.session, self.organization_id, metrics=["aging" + suffix],
                period_from=min(stored_aging), period_to=max(stored_aging) + timedelta(days=1),
                location_id=self.scope.location_id) if row[1] in stored_aging]
        for metric, period, bucket, amount, count in rows:
            cell = out.setdefault((metric.removesuffix(ALL), period, bucket), [0, 0])
            cell[0] += amount
            cell[1] += count
        for key, (amount, count) in self._corrections(metrics).items():
            if keep(key):
                cell = out.setdefault(key, [0, 0])
                cell[0] += amount
                cell[1] += count
        if "aging" in metrics and missing_aging:
            # As-of days the rollup does not hold (it has not run today): computed live.
            self.live_notes.append("Some aging points were computed live from the ledger.")
            for key, value in self._live_cells(missing_aging, frozenset({"aging"})).items():
                out[key] = list(value)
        return out

    def compliance_counts(
        self, period_from: date, period_to: date,
    ) -> dict[tuple[str, str], list[int]]:
        """(rule, channel) -> [blocked, re-timed] attempts scheduled in [period_from,
        period_to) (local days), of the scope's location or the whole organization: the
        stored compliance cells, except that every day with an attempt changed since the
        watermark is counted live from the attempts (the partial index of flagged ones)."""
        assert self.state is not None  # noqa: S101 - callers check `live` first
        repo = insight_repository
        live_days = {
            day for day in (local_day(when, self.zone) for when in repo.attempt_times_updated(
                self.session, self.organization_id, self.state.watermark_at))
            if period_from <= day < period_to
        }
        counts: dict[tuple[str, str], list[int]] = {}
        location = self.scope.location_id
        for bucket, _amount, number in repo.bucket_totals(
            self.session, self.organization_id,
            metric=COMPLIANCE if location is not None else COMPLIANCE + ALL,
            period_from=period_from, period_to=period_to, location_id=location,
            skip_periods=live_days,
        ):
            kind, channel, rule = bucket.split("|", 2)
            counts.setdefault((rule, channel), [0, 0])[0 if kind == "blocked" else 1] += number
        for start, end in day_ranges(live_days, self.zone):
            for channel, state, reasons, retimed, number in repo.flagged_attempt_groups(
                self.session, self.organization_id, start=start, end=end, campaign_key=None,
                location_id=location,
            ):
                for rule in reasons or [NO_RULE]:
                    cell = counts.setdefault((rule, channel), [0, 0])
                    if state == "blocked":
                        cell[0] += number
                    if retimed:
                        cell[1] += number
        return counts

    def ledger_total_before(self, day: date) -> int:
        """Signed sum of every ledger line posted before the start of `day` (in scope)."""
        if self.state is None:
            live = self._live_cells((), frozenset(METRICS - {"aging"}))
            return sum(v[0] for k, v in live.items() if k[0] == "ledger_day" and k[1] < day)
        total = insight_repository.ledger_total_before(
            self.session, self.organization_id, before=day, location_id=self.scope.location_id,
            metric="ledger_day" if self.scope.location_id is not None else "ledger_day" + ALL)
        return total + sum(v[0] for k, v in self._corrections(frozenset({"ledger_day"})).items()
                           if k[1] < day)
