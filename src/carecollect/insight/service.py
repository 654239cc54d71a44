"""Insights service: the report registry, reports, the headline dashboard and the audited
row-level drill-down.

Reports are aggregates only and need no PHI permission; the drill-down lists account ids
with masked labels, so the caller must hold the PHI permission (the web layer checks it)
and every drill-down writes an audit event in the caller's transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from carecollect.audit import Actor, Subject, record
from carecollect.errors import BadInput, NotFound
from carecollect.insight import jobs as _rollup_jobs  # noqa: F401 - registers the refresh job
from carecollect.insight import reports
from carecollect.insight.contributions import AGING_LABELS, Parameters, contribute
from carecollect.insight.periods import aging_points
from carecollect.insight.reports import ReportBody, ReportContext
from carecollect.insight.repository import Scope, insight_repository
from carecollect.insight.schemas import DrillDownAccount, Report, ReportFilters
from carecollect.tenant.models import Location

DRILL_DOWN_LIMIT = 1000


class UnknownReport(NotFound):
    """No report has that key."""


@dataclass(frozen=True)
class ReportDefinition:
    key: str
    title: str
    description: str
    function: Callable[[ReportContext], ReportBody]


def _definitions() -> list[ReportDefinition]:
    return [
        ReportDefinition("aging_balances", "Balances by aging bucket",
                         "Open patient balances and accounts by age of the oldest open charge, "
                         "at each month end.", reports.aging_balances),
        ReportDefinition("collections_by_day", "Collections by day",
                         "Patient payments net of refunds, insurance payments and charges, "
                         "per day.", reports.collections_by_day),
        ReportDefinition("collections_by_channel", "Collections by channel, campaign and step",
                         "Patient payments credited to the last message sent within 14 days "
                         "before them.", reports.collections_by_channel),
        ReportDefinition("recovery_by_cohort", "Recovery rate by placement cohort",
                         "Share of the balance at placement collected within 30, 60, 90 and "
                         "120 days.", reports.recovery_by_cohort),
        ReportDefinition("days_sales_outstanding", "Days sales outstanding",
                         "Receivables divided by charges, times days, per month.",
                         reports.days_sales_outstanding),
        ReportDefinition("cost_per_dollar", "Cost per dollar collected",
                         "Outreach cost from the configured channel costs over collections.",
                         reports.cost_per_dollar),
        ReportDefinition("step_funnel", "Outreach funnel per step",
                         "Delivery, open, click, reply and payment rates per campaign step.",
                         reports.step_funnel),
        ReportDefinition("payment_plans", "Payment plans",
                         "Plans created, completion and default rates, installments paid on "
                         "time.", reports.payment_plans),
        ReportDefinition("compliance_blocks", "Compliance blocks and re-times",
                         "Messages blocked or moved by the compliance engine, by rule and "
                         "channel.", reports.compliance_blocks),
        ReportDefinition("opt_outs", "Opt-outs and revocations",
                         "Consent revocations and medium opt-outs per guarantor contacted.",
                         reports.opt_outs),
        ReportDefinition("disputes", "Disputes",
                         "Disputes raised, resolved and their resolution time.",
                         reports.disputes),
        ReportDefinition("agency_recovered", "Recovered instead of sent to an agency",
                         "Balances that reached the agency placement threshold and what was "
                         "collected in-house afterwards.", reports.agency_recovered),
        ReportDefinition("holdout_lift", "Holdout lift",
                         "Recovery rate of treated minus held-out accounts per campaign, with "
                         "a 95% interval.", reports.holdout_lift),
    ]


REPORTS: dict[str, ReportDefinition] = {d.key: d for d in _definitions()}
# The headline set: each reads the rollup (or a partial index), so it stays fast on large
# portfolios. The outreach reports with per-payment attribution are on their own pages.
DASHBOARD = ("aging_balances", "collections_by_day", "days_sales_outstanding",
             "recovery_by_cohort", "agency_recovered", "holdout_lift", "compliance_blocks")


def _context(
    session: Session, *, organization_id: uuid.UUID, filters: ReportFilters, now: datetime
) -> ReportContext:
    if now.tzinfo is None:
        raise BadInput("now must be timezone-aware")
    repo = insight_repository
    if filters.location_id is not None:
        location = session.get(Location, filters.location_id)
        if location is None or location.organization_id != organization_id:
            raise NotFound("no such location")
    account_ids = None
    campaign_key = None
    if filters.campaign_id is not None:
        campaign_key = repo.campaign_key(session, organization_id, filters.campaign_id)
        if campaign_key is None:
            raise NotFound("no such campaign")
        account_ids = repo.enrolled_account_ids(session, organization_id, filters.campaign_id)
    zone = ZoneInfo(repo.organization_zone(session, organization_id))
    return ReportContext(
        session=session, organization_id=organization_id, filters=filters, now=now, zone=zone,
        scope=Scope(location_id=filters.location_id, account_ids=account_ids),
        campaign_key=campaign_key,
    )


def _definition(key: str) -> ReportDefinition:
    definition = REPORTS.get(key)
    if definition is None:
        raise UnknownReport(f"unknown report {key[:40]!r}; known: {', '.join(REPORTS)}")
    return definition


def _build(definition: ReportDefinition, ctx: ReportContext) -> Report:
    body = definition.function(ctx)
    return Report(
        key=definition.key, title=definition.title, description=definition.description,
        columns=body.columns, rows=body.rows, chart=body.chart, notes=body.notes,
        generated_at=ctx.now, drill_buckets=body.drill_buckets,
    )


def build_report(
    session: Session, *, organization_id: uuid.UUID, key: str, filters: ReportFilters,
    now: datetime,
) -> Report:
    """One report for the organization. Unknown key: UnknownReport (404)."""
    definition = _definition(key)
    ctx = _context(session, organization_id=organization_id, filters=filters, now=now)
    return _build(definition, ctx)


def build_dashboard(
    session: Session, *, organization_id: uuid.UUID, filters: ReportFilters, now: datetime
) -> list[Report]:
    """The headline reports, sharing one context (one pass over the rollup corrections)."""
    ctx = _context(session, organization_id=organization_id, filters=filters, now=now)
    return [_build(REPORTS[key], ctx) for key in DASHBOARD]


def accounts_for(
    session: Session, *, organization_id: uuid.UUID, key: str, filters: ReportFilters,
    bucket: str, actor: Actor, now: datetime | None = None,
) -> list[DrillDownAccount]:
    """The accounts behind one bucket of a report (at most DRILL_DOWN_LIMIT, by id).

    The caller must hold the PHI permission. Supported: ``aging_balances`` (bucket = aging
    label; accounts whose oldest open charge is in it at the report's last point) and
    ``agency_recovered`` (bucket ``eligible`` or ``recovered`` in the period). Writes one
    ``insight.drilldown`` audit event (report key, bucket label, number of accounts).
    """
    definition = _definition(key)
    when = now or datetime.now(ZoneInfo("UTC"))
    ctx = _context(session, organization_id=organization_id, filters=filters, now=when)
    repo = insight_repository
    if key == "aging_balances":
        if bucket not in AGING_LABELS:
            raise BadInput(f"unknown bucket; one of {', '.join(AGING_LABELS)}")
        points = aging_points(filters, ctx.today)
        if not points:
            raise BadInput("the period has no aging point yet")
        params = Parameters(zone=ctx.zone, aging_days=(points[-1],), metrics=frozenset({"aging"}))
    elif key == "agency_recovered":
        if bucket not in ("eligible", "recovered"):
            raise BadInput("unknown bucket; one of eligible, recovered")
        params = Parameters(zone=ctx.zone, aging_days=(),
                            agency_threshold_days=repo.agency_threshold_days(
                                session, organization_id),
                            metrics=frozenset({"agency"}))
    else:
        raise BadInput(f"report {definition.key!r} has no drill-down")
    matched: list[tuple[uuid.UUID, str]] = []
    for account_id, location, history in repo.stream_histories(session, organization_id, None):
        if not ctx.scope.admits(account_id, location):
            continue
        for (metric, period, cell_bucket), (_amount, count) in contribute(
                history, params).items():
            if cell_bucket != bucket or count <= 0:
                continue
            if metric == "agency" and not (
                    filters.period_start <= period < min(filters.period_end, ctx.today)):
                continue
            matched.append((account_id, cell_bucket))
    matched.sort()
    result = [
        DrillDownAccount(account_id, f"account ...{account_id.hex[-6:]} ({label})")
        for account_id, label in matched[:DRILL_DOWN_LIMIT]
    ]
    record(
        session, actor=actor, action="insight.drilldown",
        subject=Subject("organization", organization_id, organization_id=organization_id),
        details={"report": key, "bucket": bucket, "accounts": len(result),
                 "period_start": filters.period_start.isoformat(),
                 "period_end": filters.period_end.isoformat()},
    )
    return result


__all__ = [
    "DASHBOARD",
    "REPORTS",
    "ReportDefinition",
    "UnknownReport",
    "accounts_for",
    "build_dashboard",
    "build_report",
]
