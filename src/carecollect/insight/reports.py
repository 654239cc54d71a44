"""The report functions. Each takes a ReportContext and returns the body of a Report:
aggregates only (counts, cents, ratios, dates, rule ids, channel names, campaign keys),
never a name, a date of birth, an account number or a free-text field.

Definitions (formula, sources, inclusion rules, zone, edge cases) are in docs/INSIGHTS.md.
"""

from __future__ import annotations

import bisect
import statistics
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import cached_property
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from carecollect.insight.contributions import (
    AGING_LABELS,
    LIFT_WINDOW_DAYS,
    PLACEMENT_WINDOWS,
)
from carecollect.insight.lift import lift
from carecollect.insight.periods import (
    aging_points,
    days_in,
    local_day,
    local_start,
    month_start,
    months_in,
    next_month,
)
from carecollect.insight.repository import FAILED_DELIVERY, Scope, insight_repository
from carecollect.insight.rollup import Cells, CellSource
from carecollect.insight.schemas import Cell, ChartDataset, ChartSpec, ReportFilters

ATTRIBUTION_DAYS = 14
MONTH_FORMAT = "%Y-%m"


def _dollars(cents: int) -> float:
    return round(cents / 100, 2)


def _percent(value: Cell) -> float:
    return round(float(value) * 100, 2) if isinstance(value, int | float) else 0.0


def _ratio(numerator: float, denominator: float, digits: int = 4) -> float | None:
    return None if not denominator else round(numerator / denominator, digits)


@dataclass
class ReportBody:
    columns: list[str]
    rows: list[list[Cell]]
    chart: ChartSpec | None = None
    notes: list[str] = field(default_factory=list)
    drill_buckets: list[str] = field(default_factory=list)


@dataclass
class ReportContext:
    session: Session
    organization_id: uuid.UUID
    filters: ReportFilters
    now: datetime
    zone: ZoneInfo
    scope: Scope
    campaign_key: str | None

    @property
    def today(self) -> date:
        return local_day(self.now, self.zone)

    @property
    def start_at(self) -> datetime:
        return local_start(self.filters.period_start, self.zone)

    @property
    def end_at(self) -> datetime:
        return local_start(self.filters.period_end, self.zone)

    @cached_property
    def cells(self) -> CellSource:
        return CellSource(self.session, organization_id=self.organization_id,
                          scope=self.scope, zone=self.zone)

    @cached_property
    def scoped_guarantors(self) -> set[uuid.UUID] | None:
        """Guarantors of the accounts in scope, or None when the scope is everything."""
        repo = insight_repository
        if self.scope.account_ids is not None:
            ids = self.scope.account_ids
            if self.scope.location_id is not None:
                located = repo.location_account_ids(
                    self.session, self.organization_id, self.scope.location_id)
                ids = ids & located
            return repo.guarantor_ids_of_accounts(self.session, self.organization_id, ids)
        if self.scope.location_id is not None:
            return repo.location_guarantors(self.session, self.organization_id,
                                            self.scope.location_id)
        return None

    @cached_property
    def location_accounts(self) -> frozenset[uuid.UUID] | None:
        if self.scope.location_id is None:
            return None
        return insight_repository.location_account_ids(
            self.session, self.organization_id, self.scope.location_id)

    def account_in_scope(self, account_id: uuid.UUID | None) -> bool:
        if account_id is None:
            return self.scope.account_ids is None and self.scope.location_id is None
        if self.scope.account_ids is not None and account_id not in self.scope.account_ids:
            return False
        located = self.location_accounts
        return located is None or account_id in located

    def notes(self) -> list[str]:
        notes = []
        if "cells" in self.__dict__:
            notes += self.cells.live_notes
        return notes


def _sum_by(cells: Cells, metric: str) -> dict[tuple[date, str], list[int]]:
    return {(k[1], k[2]): v for k, v in cells.items() if k[0] == metric}


# -- balances and aging --------------------------------------------------------------------

AGING_COLUMN = {"0-30": "0_30", "31-60": "31_60", "61-90": "61_90", "91-120": "91_120",
                "120+": "over_120"}


def aging_balances(ctx: ReportContext) -> ReportBody:
    points = aging_points(ctx.filters, ctx.today)
    cells = ctx.cells.cells(frozenset({"aging"}), period_from=None, period_to=None,
                            aging_days=tuple(points))
    by_key = _sum_by(cells, "aging")
    columns = (["as_of"] + [f"balance_{AGING_COLUMN[b]}_cents" for b in AGING_LABELS]
               + ["total_balance_cents"] + [f"accounts_{AGING_COLUMN[b]}" for b in AGING_LABELS]
               + ["accounts_with_balance"])
    rows: list[list[Cell]] = []
    for point in points:
        amounts = [by_key.get((point, b), [0, 0])[0] for b in AGING_LABELS]
        counts = [by_key.get((point, b), [0, 0])[1] for b in AGING_LABELS]
        label = (point - timedelta(days=1)).isoformat()
        rows.append([label, *amounts, sum(amounts), *counts, sum(counts)])
    chart = ChartSpec(
        kind="stacked-bar", labels=[str(r[0]) for r in rows],
        datasets=[ChartDataset(f"{b} days ($)", [_dollars(int(r[1 + i] or 0)) for r in rows])
                  for i, b in enumerate(AGING_LABELS)],
    )
    notes = ["Balances at the end of each month in the period (and at the end of yesterday "
             "for the current month), aged first-in first-out from each charge's posting day."]
    return ReportBody(columns, rows, chart, notes + ctx.notes(), list(AGING_LABELS))


def collections_by_day(ctx: ReportContext) -> ReportBody:
    cells = ctx.cells.cells(frozenset({"ledger_day"}), period_from=ctx.filters.period_start,
                            period_to=ctx.filters.period_end)
    by_key = _sum_by(cells, "ledger_day")
    columns = ["day", "patient_collected_cents", "insurance_collected_cents", "charges_cents",
               "patient_payments"]
    rows: list[list[Cell]] = []
    for day in days_in(ctx.filters):
        patient = -(by_key.get((day, "patient_payment"), [0, 0])[0]
                    + by_key.get((day, "refund"), [0, 0])[0])
        insurance = -by_key.get((day, "insurance_payment"), [0, 0])[0]
        charges = by_key.get((day, "charge"), [0, 0])[0]
        count = by_key.get((day, "patient_payment"), [0, 0])[1]
        rows.append([day.isoformat(), patient, insurance, charges, count])
    chart = ChartSpec(kind="bar", labels=[str(r[0]) for r in rows], datasets=[
        ChartDataset("Collected from patients ($)", [_dollars(int(r[1] or 0)) for r in rows]),
        ChartDataset("Insurance payments ($)", [_dollars(int(r[2] or 0)) for r in rows]),
    ])
    notes = ["Patient collections are patient payments net of refunds, by the local day "
             "they were posted."]
    return ReportBody(columns, rows, chart, notes + ctx.notes())


def days_sales_outstanding(ctx: ReportContext) -> ReportBody:
    source = ctx.cells
    filters = ctx.filters
    cells = source.cells(frozenset({"ledger_day"}), period_from=filters.period_start,
                         period_to=filters.period_end)
    daily: dict[date, int] = defaultdict(int)
    charges_by_day: dict[date, int] = defaultdict(int)
    for (_metric, day, kind), (amount, _count) in cells.items():
        daily[day] += amount
        if kind == "charge":
            charges_by_day[day] += amount
    receivables = source.ledger_total_before(filters.period_start)
    end = min(filters.period_end, ctx.today + timedelta(days=1))
    columns = ["month", "receivables_end_cents", "charges_cents", "days", "dso_days"]
    rows: list[list[Cell]] = []
    total_charges = 0
    total_days = 0
    for month in months_in(filters):
        first = max(month, filters.period_start)
        last = min(next_month(month), end)
        if last <= first:
            continue
        days = (last - first).days
        span = [first + timedelta(days=i) for i in range(days)]
        receivables += sum(daily.get(d, 0) for d in span)
        charges = sum(charges_by_day.get(d, 0) for d in span)
        total_charges += charges
        total_days += days
        dso = _ratio(receivables * days, charges, 1)
        rows.append([month.strftime(MONTH_FORMAT), receivables, charges, days, dso])
    rows.append(["period", receivables, total_charges, total_days,
                 _ratio(receivables * total_days, total_charges, 1)])
    chart = ChartSpec(kind="line", labels=[str(r[0]) for r in rows[:-1]], datasets=[
        ChartDataset("Days sales outstanding", [float(r[4] or 0) for r in rows[:-1]])])
    notes = ["DSO = receivables at the end of the span / charges posted in the span x days "
             "in the span; empty when nothing was charged."]
    return ReportBody(columns, rows, chart, notes + ctx.notes())


# -- recovery -------------------------------------------------------------------------------

def recovery_by_cohort(ctx: ReportContext) -> ReportBody:
    filters = ctx.filters
    cells = ctx.cells.cells(frozenset({"placement"}), period_from=filters.period_start,
                            period_to=filters.period_end)
    by_month: dict[date, dict[str, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
    last_day: dict[date, date] = {}
    for (_metric, day, bucket), (amount, count) in cells.items():
        month = month_start(day)
        cell = by_month[month][bucket]
        cell[0] += amount
        cell[1] += count
    columns = (["cohort", "accounts_placed", "balance_at_placement_cents"]
               + [f"collected_{w}_cents" for w in PLACEMENT_WINDOWS]
               + [f"recovery_rate_{w}" for w in PLACEMENT_WINDOWS])
    rows: list[list[Cell]] = []
    for month in months_in(filters):
        buckets = by_month.get(month)
        if not buckets:
            continue
        last_day[month] = min(next_month(month), filters.period_end) - timedelta(days=1)
        placed = buckets["placed"]
        collected = [buckets[f"collected_{w}"][0] for w in PLACEMENT_WINDOWS]
        rates: list[Cell] = []
        for window, amount in zip(PLACEMENT_WINDOWS, collected, strict=True):
            complete = last_day[month] + timedelta(days=window) < ctx.today
            rates.append(_ratio(amount, placed[0]) if complete else None)
        rows.append([month.strftime(MONTH_FORMAT), placed[1], placed[0], *collected, *rates])
    chart = ChartSpec(kind="line", labels=[str(r[0]) for r in rows], datasets=[
        ChartDataset(f"Recovered within {w} days (%)",
                     [_percent(r[7 + i]) for r in rows])
        for i, w in enumerate(PLACEMENT_WINDOWS)])
    notes = ["A cohort is the accounts first enrolled in a campaign (placed) in that month. "
             "A rate is empty until its window has passed for every account of the cohort."]
    return ReportBody(columns, rows, chart, notes + ctx.notes())


def agency_recovered(ctx: ReportContext) -> ReportBody:
    filters = ctx.filters
    end = min(filters.period_end, ctx.today)
    cells = ctx.cells.cells(frozenset({"agency"}), period_from=filters.period_start,
                            period_to=end)
    threshold = ctx.cells.threshold
    by_month: dict[date, dict[str, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
    for (_metric, day, bucket), (amount, count) in cells.items():
        cell = by_month[month_start(day)][bucket]
        cell[0] += amount
        cell[1] += count
    columns = ["month", "accounts_reaching_threshold", "balance_at_threshold_cents",
               "accounts_recovered", "recovered_in_house_cents", "recovery_rate"]
    rows: list[list[Cell]] = []
    for month in months_in(filters):
        buckets = by_month.get(month)
        if not buckets:
            continue
        eligible, recovered = buckets["eligible"], buckets["recovered"]
        rows.append([month.strftime(MONTH_FORMAT), eligible[1], eligible[0], recovered[1],
                     recovered[0], _ratio(recovered[0], eligible[0])])
    chart = ChartSpec(kind="bar", labels=[str(r[0]) for r in rows], datasets=[
        ChartDataset("Balance at the agency threshold ($)", [_dollars(int(r[2] or 0))
                                                             for r in rows]),
        ChartDataset("Recovered in-house ($)", [_dollars(int(r[4] or 0)) for r in rows])])
    notes = [f"An account reaches the agency threshold on the first day one of its open charges "
             f"is more than {threshold} days old; what the patient paid after that day was "
             f"recovered in-house instead of by an agency."]
    return ReportBody(columns, rows, chart, notes + ctx.notes(), ["eligible", "recovered"])


def holdout_lift(ctx: ReportContext) -> ReportBody:
    filters = ctx.filters
    # Only enrollments whose whole recovery window has passed.
    end = min(filters.period_end, ctx.today - timedelta(days=LIFT_WINDOW_DAYS))
    cells = ctx.cells.cells(frozenset({"lift_enrolled", "lift_recovered"}),
                            period_from=filters.period_start, period_to=end)
    totals: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    for (metric, _day, bucket), (_amount, count) in cells.items():
        campaign, _, cohort = bucket.partition("|")
        totals[(campaign, cohort)][0 if metric == "lift_enrolled" else 1] += count
    keys = insight_repository.campaign_keys(ctx.session, ctx.organization_id)
    with_holdout = {str(campaign_id) for campaign_id, _key, basis_points
                    in insight_repository.campaigns_with_holdout(ctx.session,
                                                                 ctx.organization_id)
                    if basis_points > 0}
    campaigns = sorted(with_holdout | {c for c, cohort in totals if cohort == "holdout"},
                       key=lambda c: keys.get(c, c))
    if ctx.filters.campaign_id is not None:
        campaigns = [c for c in campaigns if c == str(ctx.filters.campaign_id)]
    columns = ["campaign", "treated_accounts", "treated_recovered", "treated_rate",
               "holdout_accounts", "holdout_recovered", "holdout_rate", "lift", "ci_low",
               "ci_high", "warning"]
    rows: list[list[Cell]] = []
    notes = [f"Recovered: the patient paid anything (net of refunds) within {LIFT_WINDOW_DAYS} "
             "days of enrollment; enrollments whose window has not passed are left out. "
             "Lift = treated rate - holdout rate, with Newcombe's 95% hybrid score interval."]
    for campaign in campaigns:
        treated, holdout = totals[(campaign, "treatment")], totals[(campaign, "holdout")]
        result = lift(treated[0], treated[1], holdout[0], holdout[1])

        def rounded(value: float | None) -> float | None:
            return None if value is None else round(value, 4)

        label = keys.get(campaign, "unknown campaign")
        rows.append([label, result.treated, result.treated_recovered,
                     rounded(result.treated_rate), result.holdout, result.holdout_recovered,
                     rounded(result.holdout_rate), rounded(result.difference),
                     rounded(result.low), rounded(result.high), result.warning])
        if result.warning:
            notes.append(f"{label}: {result.warning}")
    chart = ChartSpec(kind="bar", labels=[str(r[0]) for r in rows], datasets=[
        ChartDataset("Treated recovery rate (%)", [round(float(r[3] or 0) * 100, 2)
                                                   for r in rows]),
        ChartDataset("Holdout recovery rate (%)", [round(float(r[6] or 0) * 100, 2)
                                                   for r in rows])])
    return ReportBody(columns, rows, chart, notes + ctx.notes())


# -- attribution, cost and the outreach funnel -------------------------------------------

@dataclass
class Attribution:
    """Patient payments posted in the period on accounts with a sent attempt, each credited
    to the last sent (not failed) attempt on the same account within ATTRIBUTION_DAYS
    before it, or to nothing. Payments on accounts without any attempt are unattributed by
    construction and are counted from the rollup (see `patient_payment_totals`)."""

    payments: list[tuple[uuid.UUID, int, datetime, uuid.UUID | None]]  # account, cents, at, att
    attempts: dict[uuid.UUID, tuple[str, str | None, str | None]]  # id -> channel, campaign, step


def attribute(ctx: ReportContext, *, start: datetime, end: datetime) -> Attribution:
    repo = insight_repository
    window = timedelta(days=ATTRIBUTION_DAYS)
    sent = repo.sent_attempts_for_accounts(
        ctx.session, ctx.organization_id, start=start - window - timedelta(days=1), end=end)
    by_account: dict[uuid.UUID, list[tuple[datetime, uuid.UUID]]] = defaultdict(list)
    attempts: dict[uuid.UUID, tuple[str, str | None, str | None]] = {}
    for attempt_id, account_id, channel, campaign, step, sent_at in sent:
        if ctx.campaign_key is not None and campaign != ctx.campaign_key:
            continue
        by_account[account_id].append((sent_at, attempt_id))
        attempts[attempt_id] = (channel, campaign, step)
    for items in by_account.values():
        items.sort()
    payments = []
    for account_id, amount, posted_at in repo.patient_payments(
            ctx.session, ctx.organization_id, account_ids=by_account, start=start, end=end):
        if not ctx.account_in_scope(account_id):
            continue
        items = by_account[account_id]
        index = bisect.bisect_right(items, (posted_at, uuid.UUID(int=2**128 - 1)))
        credited = None
        if index and items[index - 1][0] >= posted_at - window:
            credited = items[index - 1][1]
        payments.append((account_id, -amount, posted_at, credited))
    return Attribution(payments, attempts)


def patient_payment_totals(ctx: ReportContext) -> tuple[int, int]:
    """(gross patient payments in cents, number of payments) posted in the period, in
    scope, from the ledger cells (refunds not deducted)."""
    cells = ctx.cells.cells(frozenset({"ledger_day"}), period_from=ctx.filters.period_start,
                            period_to=ctx.filters.period_end)
    cents = count = 0
    for (_metric, _day, kind), (amount, number) in cells.items():
        if kind == "patient_payment":
            cents -= amount
            count += number
    return cents, count


def collections_by_channel(ctx: ReportContext) -> ReportBody:
    attribution = attribute(ctx, start=ctx.start_at, end=ctx.end_at)
    totals: dict[tuple[str, str, str], list[int]] = defaultdict(lambda: [0, 0])
    for _account, cents, _at, attempt_id in attribution.payments:
        if attempt_id is None:
            continue
        channel, campaign, step = attribution.attempts[attempt_id]
        key = (channel, campaign or "(none)", step or "(none)")
        totals[key][0] += cents
        totals[key][1] += 1
    grand, grand_count = patient_payment_totals(ctx)
    unattributed = [grand - sum(v[0] for v in totals.values()),
                    grand_count - sum(v[1] for v in totals.values())]
    columns = ["channel", "campaign", "step", "payments", "collected_cents", "share"]
    rows: list[list[Cell]] = [
        [k[0], k[1], k[2], v[1], v[0], _ratio(v[0], grand)] for k, v in sorted(totals.items())
    ]
    if unattributed[0] or unattributed[1]:
        rows.append(["unattributed", "", "", unattributed[1], unattributed[0],
                     _ratio(unattributed[0], grand)])
    by_channel: dict[str, int] = defaultdict(int)
    for row in rows:
        by_channel[str(row[0])] += int(row[4] or 0)
    chart = ChartSpec(kind="doughnut", labels=list(by_channel), datasets=[
        ChartDataset("Collected ($)", [_dollars(v) for v in by_channel.values()])])
    notes = [f"Each patient payment is credited to the last message sent on the same account "
             f"within {ATTRIBUTION_DAYS} days before it (last touch); gross payments, "
             "refunds are not attributed.", *ctx.notes()]
    return ReportBody(columns, rows, chart, notes)


def _cost_lookup(ctx: ReportContext) -> dict[str, tuple[list[date], list[int]]]:
    table: dict[str, tuple[list[date], list[int]]] = {}
    for channel, effective_on, millicents in insight_repository.channel_costs(
            ctx.session, ctx.organization_id):
        days, costs = table.setdefault(channel, ([], []))
        days.append(effective_on)
        costs.append(millicents)
    return table


def _cost_of(table: dict[str, tuple[list[date], list[int]]], channel: str, day: date) -> int:
    days, costs = table.get(channel, ([], []))
    index = bisect.bisect_right(days, day)
    return costs[index - 1] if index else 0


def cost_per_dollar(ctx: ReportContext) -> ReportBody:
    costs = _cost_lookup(ctx)
    attempts = insight_repository.attempts(
        ctx.session, ctx.organization_id, start=ctx.start_at, end=ctx.end_at,
        campaign_key=ctx.campaign_key)
    sent: dict[str, list[int]] = defaultdict(lambda: [0, 0])  # attempts, millicents
    for row in attempts:
        if row[6] != "sent" or not ctx.account_in_scope(row[1]):
            continue
        channel = row[3]
        sent[channel][0] += 1
        sent[channel][1] += _cost_of(costs, channel, local_day(row[11], ctx.zone))
    attribution = attribute(ctx, start=ctx.start_at, end=ctx.end_at)
    attributed: dict[str, int] = defaultdict(int)
    for _account, cents, _at, attempt_id in attribution.payments:
        if attempt_id is not None:
            attributed[attribution.attempts[attempt_id][0]] += cents
    collected, _count = patient_payment_totals(ctx)
    columns = ["channel", "attempts_sent", "cost_cents", "attributed_collected_cents",
               "cost_per_dollar"]
    rows: list[list[Cell]] = []
    total_millicents = 0
    for channel in sorted(set(sent) | set(attributed)):
        count, millicents = sent.get(channel, [0, 0])
        total_millicents += millicents
        cost = (millicents + 500) // 1000
        rows.append([channel, count, cost, attributed.get(channel, 0),
                     _ratio(cost, attributed.get(channel, 0))])
    total_cost = (total_millicents + 500) // 1000
    rows.append(["all channels", sum(v[0] for v in sent.values()), total_cost, collected,
                 _ratio(total_cost, collected)])
    notes = ["Cost = sent attempts x the configured cost per attempt of their channel on the "
             "day they were scheduled. The all-channels row divides by every patient payment "
             "in the period, attributed or not."]
    if not costs:
        notes.append("No channel costs are configured, so every cost is zero.")
    chart = ChartSpec(kind="bar", labels=[str(r[0]) for r in rows[:-1]], datasets=[
        ChartDataset("Cost per dollar collected", [float(r[4] or 0) for r in rows[:-1]])])
    return ReportBody(columns, rows, chart, notes)


def step_funnel(ctx: ReportContext) -> ReportBody:
    repo = insight_repository
    attempts = [row for row in repo.attempts(
        ctx.session, ctx.organization_id, start=ctx.start_at, end=ctx.end_at,
        campaign_key=ctx.campaign_key) if ctx.account_in_scope(row[1])]
    signals = repo.signals_for_attempts(
        ctx.session, ctx.organization_id, [row[0] for row in attempts if row[6] == "sent"])
    attribution = attribute(ctx, start=ctx.start_at,
                            end=ctx.end_at + timedelta(days=ATTRIBUTION_DAYS))
    paid_attempts = {p[3] for p in attribution.payments if p[3] is not None}
    counts: dict[tuple[str, str, str], list[int]] = defaultdict(lambda: [0] * 7)
    for row in attempts:
        key = (row[4] or "(none)", row[5] or "(none)", row[3])
        c = counts[key]
        c[0] += 1
        if row[6] != "sent":
            continue
        c[1] += 1
        if (row[7] or "") in FAILED_DELIVERY:
            continue
        c[2] += 1
        kinds = signals.get(row[0], set())
        c[3] += "opened" in kinds
        c[4] += "clicked" in kinds
        c[5] += "replied" in kinds
        c[6] += row[0] in paid_attempts
    columns = ["campaign", "step", "channel", "attempts", "sent", "delivered", "opened",
               "clicked", "replied", "paid", "delivery_rate", "open_rate", "click_rate",
               "reply_rate", "payment_rate"]
    rows: list[list[Cell]] = []
    for key in sorted(counts):
        c = counts[key]
        rows.append([*key, *c, _ratio(c[2], c[1]), _ratio(c[3], c[2]), _ratio(c[4], c[2]),
                     _ratio(c[5], c[2]), _ratio(c[6], c[2])])
    chart = ChartSpec(kind="bar", labels=[f"{r[0]} {r[1]} {r[2]}" for r in rows], datasets=[
        ChartDataset(name, [round(float(r[i] or 0) * 100, 2) for r in rows])
        for name, i in (("Delivered (%)", 10), ("Opened (%)", 11), ("Clicked (%)", 12),
                        ("Replied (%)", 13), ("Paid (%)", 14))])
    notes = ["Attempts scheduled in the period. Delivery rate = delivered / sent; the other "
             "rates are over delivered attempts. Paid: a payment was credited to the attempt "
             f"(last touch within {ATTRIBUTION_DAYS} days)."]
    return ReportBody(columns, rows, chart, notes)


# -- plans, compliance, consent, disputes ------------------------------------------------

def payment_plans(ctx: ReportContext) -> ReportBody:
    repo = insight_repository
    filters = ctx.filters
    plans = [p for p in repo.plans(ctx.session, ctx.organization_id, start=ctx.start_at,
                                   end=ctx.end_at) if ctx.account_in_scope(p[1])]
    due_end = min(filters.period_end, ctx.today)
    installments = [i for i in repo.installments_due(
        ctx.session, ctx.organization_id, start=filters.period_start, end=due_end)
        if ctx.account_in_scope(i[4])] if due_end > filters.period_start else []
    created: dict[date, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for _id, _account, status, total, created_at, _ended in plans:
        c = created[month_start(local_day(created_at, ctx.zone))]
        c[0] += 1
        c[1] += total
        c[2] += status == "completed"
        c[3] += status == "defaulted"
    due: dict[date, list[int]] = defaultdict(lambda: [0, 0])
    for _plan, due_on, status, paid_at, _account, zone_name in installments:
        if status == "cancelled":
            continue
        d = due[month_start(due_on)]
        d[0] += 1
        if status == "paid" and paid_at is not None and (
                local_day(paid_at, ZoneInfo(zone_name)) <= due_on):
            d[1] += 1
    columns = ["month", "plans_created", "plans_total_cents", "completed", "defaulted",
               "completion_rate", "default_rate", "installments_due", "installments_on_time",
               "on_time_rate"]
    rows: list[list[Cell]] = []
    for month in months_in(filters):
        c, d = created.get(month, [0, 0, 0, 0]), due.get(month, [0, 0])
        if not c[0] and not d[0]:
            continue
        rows.append([month.strftime(MONTH_FORMAT), c[0], c[1], c[2], c[3], _ratio(c[2], c[0]),
                     _ratio(c[3], c[0]), d[0], d[1], _ratio(d[1], d[0])])
    total_c = [sum(created[m][i] for m in created) for i in range(4)]
    total_d = [sum(due[m][i] for m in due) for i in range(2)]
    rows.append(["period", total_c[0], total_c[1], total_c[2], total_c[3],
                 _ratio(total_c[2], total_c[0]), _ratio(total_c[3], total_c[0]),
                 total_d[0], total_d[1], _ratio(total_d[1], total_d[0])])
    chart = ChartSpec(kind="bar", labels=[str(r[0]) for r in rows[:-1]], datasets=[
        ChartDataset("Plans created", [float(r[1] or 0) for r in rows[:-1]]),
        ChartDataset("Defaulted", [float(r[4] or 0) for r in rows[:-1]])])
    notes = ["Plans by the month they were created, with their status today; installments "
             "by due month (due before today, cancelled ones left out); on time = paid by "
             "the end of the due day in the plan's zone."]
    return ReportBody(columns, rows, chart, notes)


def compliance_blocks(ctx: ReportContext) -> ReportBody:
    counts: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    enrolled = ctx.scope.account_ids
    groups: list[tuple[str, str, list[str], bool, int]] = []
    if enrolled is None and ctx.campaign_key is None and not ctx.cells.live:
        # Whole organization or one location: the rollup's compliance cells (a day with
        # an attempt changed since the watermark is counted live).
        counts.update(ctx.cells.compliance_counts(ctx.filters.period_start,
                                                  ctx.filters.period_end))
    elif enrolled is None:
        # Counted in SQL by (channel, state, reasons, re-timed).
        groups = insight_repository.flagged_attempt_groups(
            ctx.session, ctx.organization_id, start=ctx.start_at, end=ctx.end_at,
            campaign_key=ctx.campaign_key, location_id=ctx.scope.location_id)
    else:
        groups = [
            (channel, state, reasons, details.get("planned_outcome") == "retime", 1)
            for account_id, channel, state, reasons, details
            in insight_repository.flagged_attempts(
                ctx.session, ctx.organization_id, start=ctx.start_at, end=ctx.end_at,
                campaign_key=ctx.campaign_key, location_id=ctx.scope.location_id)
            if account_id in enrolled
        ]
    for channel, state, reasons, retimed, number in groups:
        # A re-timed attempt later blocked at send time counts in both columns.
        for rule in reasons or ["(no rule recorded)"]:
            if state == "blocked":
                counts[(rule, channel)][0] += number
            if retimed:
                counts[(rule, channel)][1] += number
    columns = ["rule", "channel", "blocked", "retimed"]
    rows: list[list[Cell]] = [[k[0], k[1], v[0], v[1]] for k, v in sorted(counts.items())
                              if v[0] or v[1]]
    by_rule: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for (rule, _channel), (blocked, retimed_count) in sorted(counts.items()):
        if not blocked and not retimed_count:
            continue
        by_rule[rule][0] += blocked
        by_rule[rule][1] += retimed_count
    chart = ChartSpec(kind="stacked-bar", labels=list(by_rule), datasets=[
        ChartDataset("Blocked", [float(v[0]) for v in by_rule.values()]),
        ChartDataset("Re-timed", [float(v[1]) for v in by_rule.values()])])
    notes = ["Blocked: attempts the compliance engine stopped at send time, once per rule it "
             "cited. Re-timed: attempts the planner moved to the next allowed time, once per "
             "rule. Planner decisions that found no channel at all create no attempt; their "
             "count is in the audit log (outreach.decision)."]
    return ReportBody(columns, rows, chart, notes)


def opt_outs(ctx: ReportContext) -> ReportBody:
    repo = insight_repository
    scoped = ctx.scoped_guarantors
    revocations = [r for r in repo.revocations(ctx.session, ctx.organization_id,
                                                start=ctx.start_at, end=ctx.end_at)
                   if scoped is None or r[0] in scoped]
    optouts = [r for r in repo.medium_opt_outs(ctx.session, ctx.organization_id,
                                                start=ctx.start_at, end=ctx.end_at)
               if scoped is None or r[0] in scoped]
    contacted: dict[date, set[uuid.UUID]] = defaultdict(set)
    for row in repo.attempts(ctx.session, ctx.organization_id, start=ctx.start_at,
                             end=ctx.end_at, campaign_key=ctx.campaign_key):
        if row[6] == "sent" and ctx.account_in_scope(row[1]) and (
                scoped is None or row[2] in scoped):
            contacted[month_start(local_day(row[11], ctx.zone))].add(row[2])
    by_month: dict[date, list[int]] = defaultdict(lambda: [0, 0])
    channels: dict[str, int] = defaultdict(int)
    for _g, channel, at in revocations:
        by_month[month_start(local_day(at, ctx.zone))][0] += 1
        channels[f"revocation:{channel}"] += 1
    for _g, medium, at in optouts:
        by_month[month_start(local_day(at, ctx.zone))][1] += 1
        channels[f"opt-out:{medium}"] += 1
    columns = ["month", "guarantors_contacted", "revocations", "medium_opt_outs",
               "revocation_rate", "opt_out_rate"]
    rows: list[list[Cell]] = []
    for month in months_in(ctx.filters):
        reached = len(contacted.get(month, set()))
        r, o = by_month.get(month, [0, 0])
        rows.append([month.strftime(MONTH_FORMAT), reached, r, o, _ratio(r, reached),
                     _ratio(o, reached)])
    chart = ChartSpec(kind="line", labels=[str(r[0]) for r in rows], datasets=[
        ChartDataset("Revocations", [float(r[2] or 0) for r in rows]),
        ChartDataset("Medium opt-outs", [float(r[3] or 0) for r in rows])])
    notes = ["Rates are per guarantor sent at least one message that month."]
    notes += [f"{name}: {count}" for name, count in sorted(channels.items())]
    return ReportBody(columns, rows, chart, notes)


def disputes(ctx: ReportContext) -> ReportBody:
    scoped = ctx.scoped_guarantors
    flags = [f for f in insight_repository.dispute_flags(
        ctx.session, ctx.organization_id, start=ctx.start_at, end=ctx.end_at)
        if scoped is None or f[0] in scoped]
    by_month: dict[date, list[float]] = defaultdict(list)
    raised: dict[date, int] = defaultdict(int)
    for _g, _a, raised_at, cleared_at in flags:
        month = month_start(local_day(raised_at, ctx.zone))
        raised[month] += 1
        if cleared_at is not None and cleared_at <= ctx.now:
            by_month[month].append((cleared_at - raised_at).total_seconds() / 86400)
    columns = ["month", "disputes_raised", "resolved", "open", "median_resolution_days",
               "mean_resolution_days"]
    rows: list[list[Cell]] = []
    for month in months_in(ctx.filters):
        times = by_month.get(month, [])
        count = raised.get(month, 0)
        rows.append([month.strftime(MONTH_FORMAT), count, len(times), count - len(times),
                     round(statistics.median(times), 2) if times else None,
                     round(statistics.fmean(times), 2) if times else None])
    chart = ChartSpec(kind="bar", labels=[str(r[0]) for r in rows], datasets=[
        ChartDataset("Raised", [float(r[1] or 0) for r in rows]),
        ChartDataset("Resolved", [float(r[2] or 0) for r in rows])])
    notes = ["Disputes are dispute flags by the month raised; resolved = cleared, resolution "
             "time = cleared minus raised, in days."]
    return ReportBody(columns, rows, chart, notes)
