"""Staff app pages: insights dashboards, report fragments, exports and the drill-down.

* `GET /app/insights?group=&period=&start=&end=&location=&campaign=` one tab per report
  group (recovery, outreach, plans, compliance); every report is a card whose fragment
  (`GET /app/insights/reports/<key>?...`) htmx re-fetches every minute. Filters are GET
  parameters holding only a preset name, dates and location/campaign ids (never PHI).
* `GET /app/insights/<key>.csv|.pdf` exports (Permission.INSIGHTS_EXPORT), audited with
  the row count (`insight.export`).
* `GET /app/insights/reports/<key>/accounts?bucket=...` the accounts behind one row; it
  needs Permission.PATIENT_READ as well and is audited by the insights service.

Charts are Chart.js configurations in `data-chart` attributes, drawn by app.js (no inline
script under the Content-Security-Policy).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from carecollect.api.context import AppContext, get_context
from carecollect.audit import Subject, record
from carecollect.errors import BadInput, Forbidden, NotFound
from carecollect.identity.auth import StaffAuth, csrf_protect, staff_permission
from carecollect.identity.models import StaffUser
from carecollect.identity.permissions import ROLE_LABELS, ROLE_PERMISSIONS, Permission
from carecollect.insight import export as insight_export
from carecollect.insight import service as insight_service
from carecollect.insight.schemas import ChartSpec, Report, ReportFilters
from carecollect.outreach.cadence_models import Campaign
from carecollect.staff_ui.render import page
from carecollect.tenant.models import Location, Organization

router = APIRouter(
    prefix="/app", include_in_schema=False, dependencies=[Depends(csrf_protect)]
)
Context = Annotated[AppContext, Depends(get_context)]

GROUPS: dict[str, str] = {
    "recovery": "Recovery",
    "outreach": "Outreach",
    "plans": "Payment plans",
    "compliance": "Compliance",
}
PERIODS: dict[str, str] = {
    "last_30_days": "Last 30 days",
    "last_90_days": "Last 90 days",
    "this_month": "This month",
    "last_month": "Last month",
    "last_12_months": "Last 12 months",
    "year_to_date": "Year to date",
    "custom": "Custom dates",
}
DEFAULT_PERIOD = "last_90_days"
# The tab of each report; a key not listed (a report added later) is placed by words in its
# key, else under Recovery.
REPORT_GROUPS: dict[str, str] = {
    "aging_balances": "recovery",
    "collections_by_day": "recovery",
    "recovery_by_cohort": "recovery",
    "days_sales_outstanding": "recovery",
    "agency_recovered": "recovery",
    "collections_by_channel": "outreach",
    "step_funnel": "outreach",
    "cost_per_dollar": "outreach",
    "holdout_lift": "outreach",
    "payment_plans": "plans",
    "compliance_blocks": "compliance",
    "opt_outs": "compliance",
    "disputes": "compliance",
}
_GROUP_WORDS: list[tuple[str, tuple[str, ...]]] = [
    ("plans", ("plan",)),
    ("compliance", ("compliance", "block", "opt_out", "revocation", "dispute", "consent")),
    ("outreach", ("outreach", "channel", "step", "cost", "lift", "holdout", "campaign")),
]


# Filters ------------------------------------------------------------------------------


@dataclass(frozen=True)
class FilterForm:
    """The filter parameters as the page echoes them (strings, validated)."""

    period: str
    start: str
    end: str
    location: str
    campaign: str

    def params(self, **extra: str) -> list[tuple[str, str]]:
        values = [("period", self.period)]
        if self.period == "custom":
            values += [("start", self.start), ("end", self.end)]
        values += [("location", self.location), ("campaign", self.campaign)]
        values += list(extra.items())
        return [(name, value) for name, value in values if value]

    def query(self, **extra: str) -> str:
        return urlencode(self.params(**extra))


def _zone(session: Session, organization_id: uuid.UUID) -> ZoneInfo:
    org = session.get(Organization, organization_id)
    return ZoneInfo(org.timezone if org is not None else "UTC")


def _month_start(day: date) -> date:
    return day.replace(day=1)


def _months_back(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 - months
    return date(index // 12, index % 12 + 1, 1)


def preset_bounds(period: str, today: date) -> tuple[date, date]:
    """[start, end) of a preset, in the organization's calendar; `today` is included."""
    tomorrow = today + timedelta(days=1)
    if period == "last_30_days":
        return today - timedelta(days=29), tomorrow
    if period == "last_90_days":
        return today - timedelta(days=89), tomorrow
    if period == "this_month":
        return _month_start(today), tomorrow
    if period == "last_month":
        return _months_back(today, 1), _month_start(today)
    if period == "last_12_months":
        return _months_back(today, 11), tomorrow
    if period == "year_to_date":
        return date(today.year, 1, 1), tomorrow
    raise BadInput("unknown period; choose one of the listed periods")


def _parse_id(value: str, what: str) -> uuid.UUID | None:
    if not value.strip():
        return None
    try:
        return uuid.UUID(value.strip())
    except ValueError:
        raise BadInput(f"the {what} filter is not a valid id") from None


def _parse_date(value: str, what: str) -> date:
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise BadInput(f"the {what} date must be YYYY-MM-DD") from None


def parse_filters(
    session: Session,
    *,
    organization_id: uuid.UUID,
    now: datetime,
    period: str,
    start: str,
    end: str,
    location: str,
    campaign: str,
) -> tuple[ReportFilters, FilterForm]:
    """Validate the GET parameters into report filters (BadInput with a clear message)."""
    period = period.strip() or DEFAULT_PERIOD
    if period not in PERIODS:
        raise BadInput("unknown period; choose one of the listed periods")
    if period == "custom":
        if not start.strip() or not end.strip():
            raise BadInput("a custom period needs both a start and an end date")
        period_start, period_end = _parse_date(start, "start"), _parse_date(end, "end")
    else:
        period_start, period_end = preset_bounds(
            period, now.astimezone(_zone(session, organization_id)).date()
        )
    location_id = _parse_id(location, "location")
    if location_id is not None:
        found = session.get(Location, location_id)
        if found is None or found.organization_id != organization_id:
            raise BadInput("no such location")
    campaign_id = _parse_id(campaign, "campaign")
    if campaign_id is not None:
        chosen = session.get(Campaign, campaign_id)
        if chosen is None or chosen.organization_id != organization_id:
            raise BadInput("no such campaign")
    filters = ReportFilters(
        period_start=period_start,
        period_end=period_end,
        location_id=location_id,
        campaign_id=campaign_id,
    )
    form = FilterForm(
        period=period,
        start=period_start.isoformat(),
        end=period_end.isoformat(),
        location=str(location_id) if location_id else "",
        campaign=str(campaign_id) if campaign_id else "",
    )
    return filters, form


def _choices(session: Session) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    # Location and campaign names are practice data, not PHI.
    locations = [(str(i), n) for i, n in session.execute(
        select(Location.id, Location.name).order_by(Location.name))]
    campaigns = [(str(i), n) for i, n in session.execute(
        select(Campaign.id, Campaign.name).order_by(Campaign.name))]
    return locations, campaigns


def _labels(session: Session, filters: ReportFilters) -> dict[str, Any]:
    described = dict(insight_export.describe_filters(session, filters))
    return {
        "period_label": described["Period"],
        "location_label": described["Location"],
        "campaign_label": described["Campaign"],
    }


# Reports and cards --------------------------------------------------------------------------


def group_of(key: str) -> str:
    if key in REPORT_GROUPS:
        return REPORT_GROUPS[key]
    for name, words in _GROUP_WORDS:
        if any(word in key for word in words):
            return name
    return "recovery"


def report_keys(group: str) -> list[str]:
    return [key for key in insight_service.REPORTS if group_of(key) == group]


def chart_config(spec: ChartSpec) -> dict[str, Any]:
    """The Chart.js configuration of a report chart."""
    options: dict[str, Any] = {"maintainAspectRatio": False}
    if spec.kind == "stacked-bar":
        options["scales"] = {"x": {"stacked": True}, "y": {"stacked": True}}
    if spec.kind == "doughnut" or len(spec.datasets) > 1:
        options["plugins"] = {"legend": {"display": True}}
    return {
        "type": "bar" if spec.kind == "stacked-bar" else spec.kind,
        "data": {
            "labels": list(spec.labels),
            "datasets": [{"label": d.label, "data": list(d.values)} for d in spec.datasets],
        },
        "options": options,
    }


def card(report: Report, auth: StaffAuth) -> dict[str, Any]:
    """What the report card template shows: formatted cells, chart, drill-down links."""
    drill = bool(report.drill_buckets) and auth.principal.can(Permission.PATIENT_READ)
    rows = [
        {"cells": [
            {"text": insight_export.format_cell(column, value),
             "number": isinstance(value, int | float) and not isinstance(value, bool)}
            for column, value in zip(report.columns, row, strict=False)
        ]}
        for row in report.rows
    ]
    return {
        "report": report,
        "chart": chart_config(report.chart) if report.chart is not None else None,
        "labels": [insight_export.column_label(c) for c in report.columns],
        "rows": rows,
        "drill": drill,
        "export": auth.principal.can(Permission.INSIGHTS_EXPORT),
    }


def _known(key: str) -> str:
    if key not in insight_service.REPORTS:
        raise NotFound("no such report")
    return key


def _template_values(form: FilterForm, group: str) -> dict[str, Any]:
    def query_for(**extra: str) -> str:
        return form.query(**({"group": group} | extra))

    def query_with_bucket(bucket: str) -> str:
        return form.query(bucket=bucket)

    return {
        "filters_form": form,
        "query": form.query(),
        "query_for": query_for,
        "query_with_bucket": query_with_bucket,
        "hidden": form.params(),
    }


# Routes -------------------------------------------------------------------------------------


@router.get("/insights", response_class=HTMLResponse)
def insights(
    request: Request,
    context: Context,
    auth: StaffAuth = staff_permission(Permission.INSIGHTS_READ),
    group: str = "recovery",
    period: str = "",
    start: str = "",
    end: str = "",
    location: str = "",
    campaign: str = "",
) -> Response:
    organization_id = auth.principal.organization_id
    now = context.now()
    error = ""
    if group not in GROUPS:
        error, group = "unknown report group", "recovery"
    reports: list[Report] = []
    labels: dict[str, Any] = {"period_label": "", "location_label": "", "campaign_label": ""}
    with context.session(organization_id) as session:
        locations, campaigns = _choices(session)
        try:
            filters, form = parse_filters(
                session, organization_id=organization_id, now=now, period=period,
                start=start, end=end, location=location, campaign=campaign,
            )
        except BadInput as exc:
            # The page again with the message above the filter form, so the dates can be
            # corrected in place (nothing is read or stored for bad filters).
            error = exc.message
            form = FilterForm(period=period if period in PERIODS else DEFAULT_PERIOD,
                              start=start.strip()[:10], end=end.strip()[:10], location="",
                              campaign="")
        if not error:
            reports = [
                insight_service.build_report(
                    session, organization_id=organization_id, key=key, filters=filters,
                    now=now,
                )
                for key in report_keys(group)
            ]
            labels = _labels(session, filters)
        user = session.get(StaffUser, auth.principal.id)
        receives_monthly = (
            user is not None and not user.monthly_report_opt_out
            and auth.principal.can(Permission.INSIGHTS_EXPORT)
        )
    export_roles = ", ".join(
        label for role, label in ROLE_LABELS.items()
        if Permission.INSIGHTS_EXPORT in ROLE_PERMISSIONS[role]
    )
    return page(
        request, "insights.html", title="Insights", group=group, groups=GROUPS,
        periods=PERIODS, reports=[card(r, auth) for r in reports], locations=locations,
        campaigns=campaigns, error=error, export_roles=export_roles,
        receives_monthly=receives_monthly,
        can_receive_monthly=auth.principal.can(Permission.INSIGHTS_EXPORT),
        status_code=400 if error else 200, **labels, **_template_values(form, group),
    )


@router.post("/insights/monthly-email")
def monthly_email_preference(
    context: Context,
    auth: StaffAuth = staff_permission(Permission.INSIGHTS_EXPORT),
    receive: Annotated[str, Form(max_length=5)] = "",
) -> Response:
    """Turn the monthly report e-mail on or off for the signed-in user (audited)."""
    wanted = receive == "on"
    with context.session(auth.principal.organization_id) as session:
        user = session.get(StaffUser, auth.principal.id)
        if user is None:
            raise NotFound("no such user")
        if user.monthly_report_opt_out == wanted:  # a change, not a repeat of the same choice
            user.monthly_report_opt_out = not wanted
            record(
                session,
                actor=auth.principal.actor,
                action="staff_user.report_preference",
                subject=Subject("staff_user", user.id,
                                organization_id=auth.principal.organization_id),
                details={"monthly_report_email": wanted},
            )
    return RedirectResponse("/app/insights#monthly-report", status_code=303)


@router.get("/insights/headline", response_class=HTMLResponse)
def headline(
    request: Request,
    context: Context,
    auth: StaffAuth = staff_permission(Permission.INSIGHTS_READ),
) -> Response:
    """The headline reports (the insights service's dashboard set) over the last 90 days,
    as a fragment the home dashboard loads after it has rendered."""
    organization_id = auth.principal.organization_id
    now = context.now()
    with context.session(organization_id) as session:
        filters, _ = parse_filters(
            session, organization_id=organization_id, now=now, period=DEFAULT_PERIOD,
            start="", end="", location="", campaign="",
        )
        reports = insight_service.build_dashboard(
            session, organization_id=organization_id, filters=filters, now=now
        )
        labels = _labels(session, filters)
    items = [card(r, auth) | {"group": group_of(r.key)} for r in reports]
    return page(request, "insights_headline.html", title="", reports=items, **labels)


@router.get("/insights/reports/{key}", response_class=HTMLResponse)
def report_fragment(
    request: Request,
    context: Context,
    key: str,
    auth: StaffAuth = staff_permission(Permission.INSIGHTS_READ),
    period: str = "",
    start: str = "",
    end: str = "",
    location: str = "",
    campaign: str = "",
) -> Response:
    key = _known(key)
    organization_id = auth.principal.organization_id
    now = context.now()
    with context.session(organization_id) as session:
        filters, form = parse_filters(
            session, organization_id=organization_id, now=now, period=period, start=start,
            end=end, location=location, campaign=campaign,
        )
        report = insight_service.build_report(
            session, organization_id=organization_id, key=key, filters=filters, now=now
        )
    return page(request, "insights_report.html", title="", item=card(report, auth),
                **_template_values(form, group_of(key)))


def _export(
    context: AppContext,
    auth: StaffAuth,
    key: str,
    export_format: insight_export.ExportFormat,
    params: dict[str, str],
) -> Response:
    key = _known(key)
    organization_id = auth.principal.organization_id
    now = context.now()
    with context.session(organization_id) as session:
        filters, _ = parse_filters(session, organization_id=organization_id, now=now, **params)
        report = insight_service.build_report(
            session, organization_id=organization_id, key=key, filters=filters, now=now
        )
        exported = insight_export.render_export(
            session, report, filters=filters, export_format=export_format
        )
        insight_export.record_export(
            session, actor=auth.principal.actor, organization_id=organization_id, key=key,
            filters=filters, export_format=export_format, rows=exported.rows,
        )
    return Response(
        exported.content,
        media_type=exported.media_type,
        headers={"Content-Disposition": f'attachment; filename="{exported.filename}"',
                 "Cache-Control": "no-store"},
    )


@router.get("/insights/{key}.csv")
def export_csv(
    context: Context,
    key: str,
    auth: StaffAuth = staff_permission(Permission.INSIGHTS_EXPORT),
    period: str = "",
    start: str = "",
    end: str = "",
    location: str = "",
    campaign: str = "",
) -> Response:
    return _export(context, auth, key, "csv", {
        "period": period, "start": start, "end": end, "location": location,
        "campaign": campaign})


@router.get("/insights/{key}.pdf")
def export_pdf(
    context: Context,
    key: str,
    auth: StaffAuth = staff_permission(Permission.INSIGHTS_EXPORT),
    period: str = "",
    start: str = "",
    end: str = "",
    location: str = "",
    campaign: str = "",
) -> Response:
    return _export(context, auth, key, "pdf", {
        "period": period, "start": start, "end": end, "location": location,
        "campaign": campaign})


@router.get("/insights/reports/{key}/accounts", response_class=HTMLResponse)
def drill_down(
    request: Request,
    context: Context,
    key: str,
    bucket: str = "",
    auth: StaffAuth = staff_permission(Permission.PATIENT_READ),
    period: str = "",
    start: str = "",
    end: str = "",
    location: str = "",
    campaign: str = "",
) -> Response:
    if not auth.principal.can(Permission.INSIGHTS_READ):
        raise Forbidden("you may not view insights")
    key = _known(key)
    if not bucket.strip() or len(bucket) > 100:
        raise BadInput("choose a report row to list its accounts")
    organization_id = auth.principal.organization_id
    now = context.now()
    with context.session(organization_id) as session:
        filters, form = parse_filters(
            session, organization_id=organization_id, now=now, period=period, start=start,
            end=end, location=location, campaign=campaign,
        )
        accounts = insight_service.accounts_for(
            session, organization_id=organization_id, key=key, filters=filters,
            bucket=bucket, actor=auth.principal.actor, now=now,
        )
        labels = _labels(session, filters)
    return page(
        request, "insights_accounts.html", title="Report accounts", accounts=accounts,
        bucket=bucket, report_title=insight_service.REPORTS[key].title,
        back_query=form.query(group=group_of(key)), **labels,
    )
