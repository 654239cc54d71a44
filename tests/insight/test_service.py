"""The insights service: registry and errors, the dashboard, no PHI in any report, the
audited drill-down, the rollup's incremental path and the agency threshold setting."""

from __future__ import annotations

import dataclasses
import json
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from carecollect.db import Database
from carecollect.errors import BadInput, NotFound
from carecollect.insight.models import InsightSettings, RollupCell, RollupState
from carecollect.insight.rollup import LAG, refresh
from carecollect.insight.schemas import Report, ReportFilters
from carecollect.insight.service import (
    DASHBOARD,
    REPORTS,
    UnknownReport,
    accounts_for,
    build_dashboard,
    build_report,
)
from carecollect.ledger.service import ledger_service
from carecollect.tenant.models import Location
from tests.factories import TEST_ACTOR, audit_events, create_tenant
from tests.insight.portfolio import CANARIES, Portfolio, add_account, at, build

NOW = datetime(2026, 7, 1, 16, 0, tzinfo=UTC)
WIDE = ReportFilters(date(2025, 11, 1), date(2026, 8, 1))


@pytest.fixture
def portfolio(db: Database) -> Portfolio:
    return build(db)


def _report(db: Database, p: Portfolio, key: str, filters: ReportFilters,
            now: datetime = NOW) -> Report:
    with db.tenant_session(p.tenant.id) as s:
        return build_report(s, organization_id=p.tenant.id, key=key, filters=filters, now=now)


def _text(report: Report) -> str:
    return json.dumps(dataclasses.asdict(report), default=str)


def test_registry_and_dashboard(db: Database, portfolio: Portfolio) -> None:
    assert set(DASHBOARD) <= set(REPORTS)
    assert len(REPORTS) == 13
    with db.tenant_session(portfolio.tenant.id) as s:
        reports = build_dashboard(s, organization_id=portfolio.tenant.id, filters=WIDE, now=NOW)
    assert [r.key for r in reports] == list(DASHBOARD)
    for report in reports:
        assert report.generated_at == NOW
        assert report.title == REPORTS[report.key].title
        for row in report.rows:
            assert len(row) == len(report.columns)
        money = [i for i, c in enumerate(report.columns) if c.endswith("_cents")]
        for row in report.rows:
            assert all(row[i] is None or isinstance(row[i], int) for i in money)


@pytest.mark.parametrize("key", ["nope", "", "aging_balances "])
def test_unknown_report_is_a_clear_error(db: Database, portfolio: Portfolio, key: str) -> None:
    with pytest.raises(UnknownReport, match="unknown report") as caught:
        _report(db, portfolio, key, WIDE)
    assert isinstance(caught.value, NotFound)
    assert "aging_balances" in caught.value.message


@pytest.mark.parametrize(("start", "end", "message"), [
    (date(2026, 5, 1), date(2026, 5, 1), "period_end must be after period_start"),
    (date(2026, 5, 2), date(2026, 5, 1), "period_end must be after period_start"),
    (date(2010, 1, 1), date(2026, 1, 1), "at most ten years"),
])
def test_bad_periods(start: date, end: date, message: str) -> None:
    with pytest.raises(BadInput, match=message):
        ReportFilters(start, end)


def test_unknown_location_and_campaign(db: Database, portfolio: Portfolio) -> None:
    other = create_tenant(db)
    with db.tenant_session(other.id) as s:
        foreign = Location(id=uuid.uuid4(), organization_id=other.id, name="Elsewhere",
                           state="MA", timezone="America/New_York")
        s.add(foreign)
    for filters, message in (
        (ReportFilters(date(2026, 1, 1), date(2026, 2, 1), location_id=uuid.uuid4()),
         "no such location"),
        (ReportFilters(date(2026, 1, 1), date(2026, 2, 1), location_id=foreign.id),
         "no such location"),
        (ReportFilters(date(2026, 1, 1), date(2026, 2, 1), campaign_id=uuid.uuid4()),
         "no such campaign"),
    ):
        with pytest.raises(NotFound, match=message):
            _report(db, portfolio, "aging_balances", filters)


def test_naive_now_is_refused(db: Database, portfolio: Portfolio) -> None:
    with pytest.raises(BadInput, match="timezone-aware"):
        _report(db, portfolio, "aging_balances", WIDE, now=datetime(2026, 7, 1))  # noqa: DTZ001


def test_no_phi_in_any_report(db: Database, portfolio: Portfolio) -> None:
    filters = [WIDE, dataclasses.replace(WIDE, location_id=portfolio.locations["L1"]),
               dataclasses.replace(WIDE, campaign_id=portfolio.campaign_id)]
    texts = [_text(_report(db, portfolio, key, f)) for f in filters for key in REPORTS]
    assert len(texts) == 39
    everything = "\n".join(texts)
    # The reports did run on the canary accounts...
    assert "38500" in everything
    for canary in CANARIES:
        assert canary.lower() not in everything.lower(), canary
    for account_id in portfolio.accounts.values():
        assert str(account_id) not in everything
    for guarantor_id in portfolio.guarantors.values():
        assert str(guarantor_id) not in everything


def test_drill_down_lists_accounts_and_is_audited(db: Database, portfolio: Portfolio) -> None:
    before = len(audit_events(db, "insight.drilldown"))
    filters = ReportFilters(date(2026, 4, 1), date(2026, 6, 1))
    with db.tenant_session(portfolio.tenant.id) as s:
        rows = accounts_for(s, organization_id=portfolio.tenant.id, key="aging_balances",
                            filters=filters, bucket="120+", actor=TEST_ACTOR, now=NOW)
    assert [r.account_id for r in rows] == [portfolio.accounts["A1"]]
    assert rows[0].label == f"account ...{portfolio.accounts['A1'].hex[-6:]} (120+)"
    for canary in CANARIES:
        assert canary not in rows[0].label
    events = audit_events(db, "insight.drilldown")
    assert len(events) == before + 1
    event = events[-1]
    assert event["details"] == {"report": "aging_balances", "bucket": "120+", "accounts": 1,
                                "period_start": "2026-04-01", "period_end": "2026-06-01"}
    assert (event["actor_type"], event["actor_id"]) == ("staff", TEST_ACTOR.id)
    assert (event["subject_type"], event["subject_id"]) == (
        "organization", str(portfolio.tenant.id))
    with db.tenant_session(portfolio.tenant.id) as s:
        recovered = accounts_for(s, organization_id=portfolio.tenant.id, key="agency_recovered",
                                 filters=WIDE, bucket="recovered", actor=TEST_ACTOR, now=NOW)
        eligible = accounts_for(s, organization_id=portfolio.tenant.id, key="agency_recovered",
                                filters=WIDE, bucket="eligible", actor=TEST_ACTOR, now=NOW)
    assert [r.account_id for r in recovered] == [portfolio.accounts["A3"]]
    assert {r.account_id for r in eligible} == {portfolio.accounts[a] for a in ("A1", "A3", "A4")}
    assert len(audit_events(db, "insight.drilldown")) == before + 3


@pytest.mark.parametrize(("key", "bucket", "error", "message"), [
    ("aging_balances", "200+", BadInput, "unknown bucket"),
    ("agency_recovered", "120+", BadInput, "unknown bucket"),
    ("collections_by_day", "x", BadInput, "has no drill-down"),
    ("nope", "x", UnknownReport, "unknown report"),
])
def test_bad_drill_down_records_nothing(db: Database, portfolio: Portfolio, key: str,
                                        bucket: str, error: type[Exception],
                                        message: str) -> None:
    before = audit_events(db)
    with pytest.raises(error, match=message), db.tenant_session(portfolio.tenant.id) as s:
        accounts_for(s, organization_id=portfolio.tenant.id, key=key, filters=WIDE,
                     bucket=bucket, actor=TEST_ACTOR, now=NOW)
    assert audit_events(db) == before


def _all_rows(db: Database, p: Portfolio, now: datetime = NOW) -> dict[str, Any]:
    return {key: _report(db, p, key, WIDE, now).rows for key in REPORTS}


def _cells(db: Database, p: Portfolio) -> list[tuple[Any, ...]]:
    with db.tenant_session(p.tenant.id) as s:
        rows = s.execute(select(RollupCell.metric, RollupCell.period, RollupCell.location_id,
                                RollupCell.bucket, RollupCell.amount_cents, RollupCell.count))
        return sorted((tuple(r) for r in rows), key=str)


def test_rollup_incremental_matches_live_and_full(db: Database, portfolio: Portfolio) -> None:
    p = portfolio
    live = _all_rows(db, p)
    with db.tenant_session(p.tenant.id) as s:
        first = refresh(s, organization_id=p.tenant.id, now=datetime.now(UTC) + LAG)
    assert first.mode == "full"
    assert _all_rows(db, p) == live
    # A new payment after the watermark: reports see it at once (live correction).
    with db.tenant_session(p.tenant.id) as s:
        ledger_service.post(s, keys=p.tenant.keys, actor=TEST_ACTOR,
                            account_id=p.accounts["A2"], kind="patient_payment",
                            amount_cents=15_00, posted_at=at("2026-05-20"))
    corrected = _all_rows(db, p)
    assert corrected != live
    may_end = _report(db, p, "aging_balances", ReportFilters(date(2026, 5, 1), date(2026, 6, 1)))
    assert may_end.rows[0][:7] == ["2026-05-31", 0, 20_00, 25_00, 65_00, 60_00, 170_00]
    with db.tenant_session(p.tenant.id) as s:
        second = refresh(s, organization_id=p.tenant.id,
                         now=datetime.now(UTC) + LAG + timedelta(seconds=1))
    assert second.mode == "incremental"
    assert second.accounts == 1
    assert _all_rows(db, p) == corrected
    incremental_cells = _cells(db, p)
    with db.tenant_session(p.tenant.id) as s:
        s.delete(s.get(RollupState, p.tenant.id))
    with db.tenant_session(p.tenant.id) as s:
        third = refresh(s, organization_id=p.tenant.id,
                        now=datetime.now(UTC) + LAG + timedelta(seconds=2))
    assert third.mode == "full"
    assert _cells(db, p) == incremental_cells
    assert _all_rows(db, p) == corrected


def test_agency_threshold_setting(db: Database, portfolio: Portfolio) -> None:
    p = portfolio
    with db.tenant_session(p.tenant.id) as s:
        refresh(s, organization_id=p.tenant.id, now=datetime.now(UTC) + LAG)
        s.add(InsightSettings(organization_id=p.tenant.id, agency_threshold_days=90))
    report = _report(db, p, "agency_recovered", WIDE)
    # 90 days: A3 crosses on 03-02, A1 on 04-11, A4 on 05-03, A2 on 06-04 (40.00 of its
    # 60.00 is in the old charge).
    assert report.rows == [
        ["2026-03", 1, 200_00, 1, 200_00, 1.0],
        ["2026-04", 1, 60_00, 0, 0, 0.0],
        ["2026-05", 1, 65_00, 0, 0, 0.0],
        ["2026-06", 1, 60_00, 0, 0, 0.0],
    ]
    assert "more than 90 days old" in report.notes[0]


def test_tenants_do_not_see_each_other(db: Database, portfolio: Portfolio) -> None:
    other = create_tenant(db)
    with db.tenant_session(other.id) as s:
        add_account(s, other, n=9, location_id=None,
                    lines=[("charge", 7_00, at("2026-04-10"))])
    with db.tenant_session(other.id) as s:
        refresh(s, organization_id=other.id, now=datetime.now(UTC) + LAG)
        report = build_report(s, organization_id=other.id, key="aging_balances",
                              filters=ReportFilters(date(2026, 4, 1), date(2026, 5, 1)), now=NOW)
        cells = s.scalar(select(func.count()).select_from(RollupCell))
    assert report.rows == [["2026-04-30", 7_00, 0, 0, 0, 0, 7_00, 1, 0, 0, 0, 0, 1]]
    assert cells is not None
    assert cells > 0
    mine = _report(db, portfolio, "aging_balances", ReportFilters(date(2026, 4, 1),
                                                                  date(2026, 5, 1)))
    assert mine.rows[0][6] == 385_00


def test_refresh_job_refreshes_every_active_organization(db: Database,
                                                         portfolio: Portfolio) -> None:
    from carecollect.insight.jobs import ROLLUP_JOB, rollup_refresh
    from carecollect.kit.jobs import JobContext, registry
    from carecollect.kit.jobs.queue import ClaimedJob

    other = create_tenant(db)
    assert registry.tasks[ROLLUP_JOB].handler is rollup_refresh
    when = datetime.now(UTC) + LAG
    ctx = JobContext(db=db, keys=None, worker_id="test", clock=lambda: when)
    rollup_refresh(ctx, ClaimedJob(uuid.uuid4(), "default", ROLLUP_JOB, {}, 1, 3, None))
    with db.system_session() as s:
        states = {row.organization_id: row.watermark_at for row in s.scalars(
            select(RollupState))}
    assert states == {portfolio.tenant.id: when - LAG, other.id: when - LAG}
    # The organization with a ledger now has stored cells.
    with db.tenant_session(portfolio.tenant.id) as s:
        cells = s.scalar(select(func.count()).select_from(RollupCell))
    assert cells is not None
    assert cells > 0
