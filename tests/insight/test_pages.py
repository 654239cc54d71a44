"""The insights pages through the app: tabs, charts, filters, fragments, exports, the
drill-down, bad input (a clear 400 and nothing stored), and no PHI in any of it."""

from __future__ import annotations

import csv
import html
import io
import json
import re
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pypdf import PdfReader

from carecollect.insight import service as insight_service
from carecollect.insight.schemas import ReportFilters
from carecollect.staff_ui.insights_pages import GROUPS, group_of, preset_bounds, report_keys
from carecollect.tenant.models import Organization
from tests.factories import audit_events
from tests.web.conftest import Web, _cheap_password_hashing, make_web
from tests.web.helpers import job_count, snapshot

__all__ = ["_cheap_password_hashing"]  # autouse: cheap Argon2 parameters for test users

CANARY = {"first_name": "Quillonia", "last_name": "Zebrowskiova",
          "date_of_birth": date(1971, 7, 9), "state": "MA"}
CANARY_VALUES = ["Quillonia", "Zebrowskiova", "1971-07-09", "07/09/1971", "6175550199",
                 "555-0199", "quillonia.canary", "mail.example.org", "RFD-204811"]
CHART_RE = re.compile(r'<canvas id="chart-([a-z_]+)" data-chart="([^"]+)"')


@dataclass
class Seeded:
    north: uuid.UUID
    south: uuid.UUID
    campaign: uuid.UUID
    canary_account: uuid.UUID


def seed_insights(web: Web) -> Seeded:
    """Two locations, an account at each (the North one the canary's), charges 60 days ago
    and patient payments 40 and 12 days ago (North) and 25 days ago (South); a campaign
    with no enrollment."""
    from carecollect.ledger.service import ledger_service
    from carecollect.outreach.cadence_models import Campaign
    from carecollect.tenant.models import Location
    from tests.factories import TEST_ACTOR, add_email, add_phone, create_guarantor

    tenant, now = web.tenant, web.clock()
    with web.db.tenant_session(tenant.id) as session:
        north = Location(organization_id=tenant.id, name="North Office", state="MA",
                         timezone="America/New_York", postal_code="02118")
        south = Location(organization_id=tenant.id, name="South Office", state="MA",
                         timezone="America/New_York", postal_code="01608")
        campaign = Campaign(organization_id=tenant.id, key="spring", name="Spring reminders",
                            seed="s1")
        session.add_all([north, south, campaign])
        session.flush()
        canary = create_guarantor(session, tenant, **CANARY)
        add_phone(session, tenant, canary.id, "+16175550199")
        add_email(session, tenant, canary.id, "quillonia.canary@mail.example.org")
        other = create_guarantor(session, tenant, first_name="Sam", last_name="Southward")
        accounts = {}
        for location, number, guarantor_id, paid_days in (
            (north, "RFD-204811", canary.id, (40, 12)),
            (south, "SOU-000001", other.id, (25,)),
        ):
            account = ledger_service.open_account(
                session, keys=tenant.keys, actor=TEST_ACTOR, guarantor_id=guarantor_id,
                account_number=number, opened_at=now - timedelta(days=70),
                location_id=location.id)
            accounts[number] = account.id
            ledger_service.post(
                session, keys=tenant.keys, actor=TEST_ACTOR, account_id=account.id,
                kind="charge", amount_cents=84_000, posted_at=now - timedelta(days=60),
                procedure_codes="D2740", description="Crown")
            for days in paid_days:
                ledger_service.post(
                    session, keys=tenant.keys, actor=TEST_ACTOR, account_id=account.id,
                    kind="patient_payment", amount_cents=7_500,
                    posted_at=now - timedelta(days=days))
        return Seeded(north.id, south.id, campaign.id, accounts["RFD-204811"])


def drill_target(web: Web) -> tuple[str, str, str]:
    """(a report key, a report with a drill-down, one of its buckets)."""
    return "collections_by_day", "aging_balances", "31-60"


@pytest.fixture
def web(db: Any, tmp_path: Any) -> Web:
    return make_web(db, tmp_path)


def _charts(page_html: str) -> dict[str, Any]:
    return {key: json.loads(html.unescape(raw)) for key, raw in CHART_RE.findall(page_html)}


def _csv(response: Any) -> list[list[str]]:
    return list(csv.reader(io.StringIO(response.content.decode("utf-8"))))


def _no_canary(text: str) -> None:
    leaks = [v for v in CANARY_VALUES if v.lower() in text.lower()]
    assert leaks == []


def test_every_report_has_a_tab() -> None:
    assert set(GROUPS) == {"recovery", "outreach", "plans", "compliance"}
    placed = {key: group_of(key) for key in insight_service.REPORTS}
    assert set(placed.values()) == set(GROUPS)
    assert sorted(k for g in GROUPS for k in report_keys(g)) == sorted(insight_service.REPORTS)
    assert group_of("some_future_plan_metric") == "plans"
    assert group_of("something_else") == "recovery"


def test_dashboard_draws_each_report_of_the_tab(web: Web) -> None:
    seed_insights(web)
    client = web.login("auditor")
    response = client.get("/app/insights")
    assert response.status_code == 200
    body = response.text
    for group in GROUPS:
        assert f'id="tab-{group}"' in body
    charts = _charts(body)
    assert sorted(charts) == sorted(k for k in report_keys("recovery")
                                    if 'id="chart-' + k + '"' in body)
    assert "aging_balances" in charts
    assert charts["aging_balances"]["type"] == "bar"
    assert charts["aging_balances"]["options"]["scales"]["x"]["stacked"] is True
    for key in report_keys("recovery"):
        assert f'id="report-{key}"' in body
        assert (f'hx-get="/app/insights/reports/{key}?period=last_90_days"' in body), key
    assert body.count('hx-trigger="every 60s"') == len(report_keys("recovery"))
    # The auditor may read insights but neither export nor drill down.
    assert "export-aging_balances-csv" not in body
    assert 'class="drill"' not in body
    _no_canary(body)


def test_owner_sees_exports_and_drill_down_links(web: Web) -> None:
    seed_insights(web)
    body = web.login("owner").get("/app/insights").text
    assert 'id="export-aging_balances-csv"' in body
    assert 'id="export-aging_balances-pdf"' in body
    assert ('href="/app/insights/reports/aging_balances/accounts?period=last_90_days'
            '&amp;bucket=0-30"') in body


def test_location_and_campaign_filters_change_the_figures(web: Web) -> None:
    seeded = seed_insights(web)
    client = web.login("billing_manager")

    def collected(**params: str) -> tuple[int, list[float]]:
        response = client.get("/app/insights", params=params)
        assert response.status_code == 200, response.text[:300]
        data = _charts(response.text)["collections_by_day"]["data"]["datasets"][0]["data"]
        export = client.get("/app/insights/collections_by_day.csv", params=params)
        rows = _csv(export)
        column = rows[0].index("patient_collected_cents")
        return sum(int(r[column]) for r in rows[1:]), data

    everyone, all_data = collected()
    north, north_data = collected(location=str(seeded.north))
    south, south_data = collected(location=str(seeded.south))
    campaign, _ = collected(campaign=str(seeded.campaign))
    assert (everyone, north, south, campaign) == (22_500, 15_000, 7_500, 0)
    assert sum(all_data) == 225.0
    assert sum(north_data) == 150.0
    assert sum(south_data) == 75.0
    # A 30-day window leaves out the payments 40 days ago.
    last30, _ = collected(period="last_30_days")
    assert last30 == 15_000
    custom, _ = collected(period="custom", start=(web.clock().date() - timedelta(days=30))
                          .isoformat(), end=(web.clock().date() - timedelta(days=20)).isoformat())
    assert custom == 7_500


def test_page_keeps_the_filters_in_tabs_fragments_and_exports(web: Web) -> None:
    seeded = seed_insights(web)
    body = web.login("owner").get("/app/insights", params={
        "group": "compliance", "period": "last_month", "location": str(seeded.south)}).text
    query = f"period=last_month&amp;location={seeded.south}"
    assert f'href="/app/insights?{query}&amp;group=outreach"' in body
    assert f'hx-get="/app/insights/reports/disputes?{query}"' in body
    assert f'<input type="hidden" name="location" value="{seeded.south}">' in body
    assert 'id="tab-compliance" class="current"' in body
    assert "South Office" in body


def test_home_dashboard_loads_the_headline_reports(web: Web) -> None:
    seed_insights(web)
    client = web.login("auditor")
    home = client.get("/app/").text
    assert ('<div id="insight-headline" hx-get="/app/insights/headline" hx-trigger="load" '
            'hx-swap="outerHTML"></div>') in home
    response = client.get("/app/insights/headline")
    assert response.status_code == 200
    assert response.text.lstrip().startswith('<section class="insight-headline"')
    drawn = re.findall(r'<canvas id="headline-([a-z_]+)" data-chart="([^"]+)"', response.text)
    with_chart = [key for key in insight_service.DASHBOARD if f"headline-{key}" in response.text]
    assert [key for key, _ in drawn] == with_chart
    assert "aging_balances" in with_chart
    for key in insight_service.DASHBOARD:
        assert f'href="/app/insights?group={group_of(key)}#report-{key}"' in response.text
    _no_canary(response.text)


def test_fragment_is_one_card(web: Web) -> None:
    seed_insights(web)
    response = web.login("collector").get(
        "/app/insights/reports/collections_by_day", params={"period": "last_30_days"})
    assert response.status_code == 200
    assert response.text.lstrip().startswith('<article class="card insight-report"')
    assert "<html" not in response.text
    assert list(_charts(response.text)) == ["collections_by_day"]


def test_csv_export_is_the_report_and_is_audited(web: Web) -> None:
    seed_insights(web)
    client = web.login("compliance_officer")
    now = web.clock()
    response = client.get("/app/insights/aging_balances.csv")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    # The preset is in the practice's calendar, not UTC's (a run just after midnight UTC
    # is still the previous day in New York).
    with web.db.tenant_session(web.tenant.id) as session:
        organization = session.get(Organization, web.tenant.id)
        assert organization is not None
        zone = ZoneInfo(organization.timezone)
    start, end = preset_bounds("last_90_days", now.astimezone(zone).date())
    assert response.headers["content-disposition"] == (
        f'attachment; filename="aging_balances-{start.isoformat()}-{end.isoformat()}.csv"')
    assert response.headers["cache-control"] == "no-store"
    with web.db.tenant_session(web.tenant.id) as session:
        report = insight_service.build_report(
            session, organization_id=web.tenant.id, key="aging_balances",
            filters=ReportFilters(period_start=start, period_end=end), now=now)
    rows = _csv(response)
    assert rows[0] == report.columns
    assert rows[1:] == [["" if c is None else str(c) for c in row] for row in report.rows]
    _no_canary(response.text)
    [event] = audit_events(web.db, "insight.export")
    assert event["details"] == {
        "report": "aging_balances", "format": "csv", "rows": len(report.rows),
        "period_start": start.isoformat(), "period_end": end.isoformat(),
        "location_id": None, "campaign_id": None,
    }
    assert (event["actor_type"], event["actor_id"]) == (
        "staff", str(web.users["compliance_officer"]))


def test_pdf_export_holds_title_filters_and_table(web: Web) -> None:
    seeded = seed_insights(web)
    client = web.login("owner")
    response = client.get("/app/insights/collections_by_day.pdf",
                          params={"location": str(seeded.north)})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/pdf"
    reader = PdfReader(io.BytesIO(response.content))
    content = "\n".join(p.extract_text() for p in reader.pages)
    assert "Collections by day" in content
    assert "Location: North Office" in content
    assert "Campaign: All campaigns" in content
    assert "$75.00" in content
    _no_canary(content + str(reader.metadata))
    [event] = audit_events(web.db, "insight.export")
    assert event["details"]["format"] == "pdf"
    assert event["details"]["location_id"] == str(seeded.north)


def test_drill_down_lists_masked_accounts_and_is_audited(web: Web) -> None:
    seeded = seed_insights(web)
    client = web.login("collector")
    response = client.get("/app/insights/reports/aging_balances/accounts",
                          params={"bucket": "31-60", "period": "last_30_days"})
    assert response.status_code == 200, response.text[:300]
    links = re.findall(r'href="/app/accounts/([0-9a-f-]+)"', response.text)
    assert sorted(links) == sorted([str(seeded.canary_account), _south_account(web)])
    _no_canary(response.text)
    [event] = audit_events(web.db, "insight.drilldown")
    assert event["details"]["report"] == "aging_balances"
    assert event["details"]["bucket"] == "31-60"
    assert event["details"]["accounts"] == 2


def _south_account(web: Web) -> str:
    from sqlalchemy import select

    from carecollect.ledger.models import Account
    from carecollect.tenant.models import Location

    with web.db.tenant_session(web.tenant.id) as session:
        return str(session.scalars(
            select(Account.id).join(Location, Location.id == Account.location_id)
            .where(Location.name == "South Office")).one())


@pytest.mark.parametrize(
    ("url", "status", "message"),
    [
        ("/app/insights?period=fortnight", 400, "unknown period"),
        ("/app/insights?group=finance", 400, "unknown report group"),
        ("/app/insights?location=not-an-id", 400, "location filter is not a valid id"),
        ("/app/insights?campaign=12", 400, "campaign filter is not a valid id"),
        ("/app/insights?location=00000000-0000-4000-8000-00000000dead", 400, "no such location"),
        ("/app/insights?campaign=00000000-0000-4000-8000-00000000beef", 400, "no such campaign"),
        ("/app/insights?period=custom&start=2026-01-01", 400, "needs both a start and an end"),
        ("/app/insights?period=custom&start=2026-13-01&end=2026-14-01", 400,
         "start date must be YYYY-MM-DD"),
        ("/app/insights?period=custom&start=2026-02-01&end=2026-01-01", 400,
         "period_end must be after period_start"),
        ("/app/insights?period=custom&start=2000-01-01&end=2026-01-01", 400,
         "at most ten years"),
        ("/app/insights/reports/no_such_report", 404, "no such report"),
        ("/app/insights/no_such_report.csv", 404, "no such report"),
        ("/app/insights/no_such_report.pdf", 404, "no such report"),
        ("/app/insights/aging_balances.csv?period=fortnight", 400, "unknown period"),
        ("/app/insights/reports/aging_balances/accounts", 400, "choose a report row"),
        ("/app/insights/reports/aging_balances/accounts?bucket=7-8", 400, "unknown bucket"),
        ("/app/insights/reports/collections_by_day/accounts?bucket=x", 400,
         "has no drill-down"),
    ],
)
def test_bad_input_is_refused_clearly_and_stores_nothing(
    web: Web, url: str, status: int, message: str
) -> None:
    seed_insights(web)
    client = web.login("owner")
    before, jobs = snapshot(web.db), job_count(web.db)
    response = client.get(url)
    assert response.status_code == status, response.text[:300]
    assert message in html.unescape(response.text)
    if url.startswith("/app/insights?"):
        # The insights page itself, with the message above its filter form.
        assert 'id="insights-error" role="alert"' in response.text
        assert 'id="insights-filters"' in response.text
        assert "<article" not in response.text
    assert snapshot(web.db) == before
    assert job_count(web.db) == jobs


def test_a_location_of_another_organization_is_refused(web: Web, db: Any) -> None:
    from carecollect.tenant.models import Location
    from tests.factories import create_tenant

    other = create_tenant(db, manager=web.tenant.manager)
    with db.tenant_session(other.id) as session:
        elsewhere = Location(organization_id=other.id, name="Elsewhere", state="NY",
                             timezone="America/New_York")
        session.add(elsewhere)
        session.flush()
        elsewhere_id = elsewhere.id
    response = web.login("owner").get("/app/insights", params={"location": str(elsewhere_id)})
    assert response.status_code == 400
    assert "no such location" in response.text


@pytest.mark.parametrize(
    ("period", "today", "expected"),
    [
        ("last_30_days", date(2026, 3, 31), (date(2026, 3, 2), date(2026, 4, 1))),
        ("last_90_days", date(2026, 3, 31), (date(2026, 1, 1), date(2026, 4, 1))),
        ("this_month", date(2026, 3, 31), (date(2026, 3, 1), date(2026, 4, 1))),
        ("last_month", date(2026, 1, 15), (date(2025, 12, 1), date(2026, 1, 1))),
        ("last_12_months", date(2026, 3, 31), (date(2025, 4, 1), date(2026, 4, 1))),
        ("year_to_date", date(2026, 3, 31), (date(2026, 1, 1), date(2026, 4, 1))),
    ],
)
def test_period_presets(period: str, today: date, expected: tuple[date, date]) -> None:
    assert preset_bounds(period, today) == expected


def test_presets_follow_the_organization_zone(web: Web) -> None:
    # 03:00 UTC on the 1st is still the last day of the previous month in New York.
    web.clock.value = datetime.fromisoformat("2026-04-01T03:00:00+00:00")
    seed_insights(web)
    body = web.login("owner").get("/app/insights", params={"period": "this_month"}).text
    assert 'name="start" id="filter-start" value="2026-03-01"' in body
    assert 'name="end" id="filter-end" value="2026-04-01"' in body
