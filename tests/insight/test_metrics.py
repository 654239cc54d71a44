"""Every report on the constructed portfolio (tests/insight/portfolio.py), against figures
computed by hand. Each test runs twice: live from the ledger (no rollup) and through a
rollup refreshed before the query."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import pytest

from carecollect.db import Database
from carecollect.insight.rollup import refresh
from carecollect.insight.schemas import Report, ReportFilters
from carecollect.insight.service import build_report
from tests.insight.portfolio import Portfolio, build

NOW = datetime(2026, 7, 1, 16, 0, tzinfo=UTC)  # 12:00 local, 2026-07-01


@pytest.fixture(params=["live", "rollup"])
def portfolio(request: pytest.FixtureRequest, db: Database) -> Iterator[Portfolio]:
    p = build(db)
    if request.param == "rollup":
        with db.tenant_session(p.tenant.id) as s:
            # The lines were written at the real clock time: refresh past it.
            result = refresh(s, organization_id=p.tenant.id,
                             now=datetime.now(UTC) + timedelta(minutes=10))
            assert result.mode == "full"
            assert result.accounts == 4
    return p


def report(db: Database, p: Portfolio, key: str, start: date, end: date,
           now: datetime = NOW, **filters: object) -> Report:
    with db.tenant_session(p.tenant.id) as s:
        return build_report(s, organization_id=p.tenant.id, key=key,
                            filters=ReportFilters(start, end, **filters),  # type: ignore[arg-type]
                            now=now)


def test_aging_balances_month_ends(db: Database, portfolio: Portfolio) -> None:
    r = report(db, portfolio, "aging_balances", date(2026, 4, 1), date(2026, 6, 1))
    assert r.columns == [
        "as_of", "balance_0_30_cents", "balance_31_60_cents", "balance_61_90_cents",
        "balance_91_120_cents", "balance_over_120_cents", "total_balance_cents",
        "accounts_0_30", "accounts_31_60", "accounts_61_90", "accounts_91_120",
        "accounts_over_120", "accounts_with_balance"]
    assert r.rows == [
        ["2026-04-30", 20_00, 40_00, 65_00, 60_00, 200_00, 385_00, 0, 1, 1, 1, 1, 4],
        ["2026-05-31", 0, 20_00, 40_00, 65_00, 60_00, 185_00, 0, 0, 1, 1, 1, 3],
    ]
    assert r.chart is not None
    assert r.chart.kind == "stacked-bar"
    assert r.chart.labels == ["2026-04-30", "2026-05-31"]
    assert [d.values for d in r.chart.datasets] == [
        [20.0, 0.0], [40.0, 20.0], [65.0, 40.0], [60.0, 65.0], [200.0, 60.0]]
    assert r.drill_buckets == ["0-30", "31-60", "61-90", "91-120", "120+"]


def test_aging_includes_today_when_period_reaches_it(db: Database, portfolio: Portfolio) -> None:
    now = datetime(2026, 5, 15, 16, 0, tzinfo=UTC)
    r = report(db, portfolio, "aging_balances", date(2026, 5, 1), date(2026, 6, 1), now=now)
    # Only point: the start of 2026-05-15 (end of 05-14). A3 was paid on 05-10.
    # A1 60.00 (Jan 10, 124 days: 120+), A2 20.00 (24 days) + 40.00 (70 days),
    # A4 65.00 (Feb 1, 102 days).
    assert r.rows == [["2026-05-14", 20_00, 0, 40_00, 65_00, 60_00, 185_00, 0, 0, 1, 1, 1, 3]]


def test_aging_filters_by_location_and_campaign(db: Database, portfolio: Portfolio) -> None:
    north = report(db, portfolio, "aging_balances", date(2026, 4, 1), date(2026, 5, 1),
                   location_id=portfolio.locations["L1"])
    assert north.rows == [["2026-04-30", 20_00, 40_00, 0, 60_00, 0, 120_00, 0, 1, 0, 1, 0, 2]]
    campaign = report(db, portfolio, "aging_balances", date(2026, 4, 1), date(2026, 5, 1),
                      campaign_id=portfolio.campaign_id)
    assert campaign.rows == [["2026-04-30", 0, 0, 65_00, 60_00, 0, 125_00, 0, 0, 1, 1, 0, 2]]
    both = report(db, portfolio, "aging_balances", date(2026, 4, 1), date(2026, 5, 1),
                  campaign_id=portfolio.campaign_id, location_id=portfolio.locations["L2"])
    assert both.rows == [["2026-04-30", 0, 0, 65_00, 0, 0, 65_00, 0, 0, 1, 0, 0, 1]]


def test_collections_by_day_in_the_local_zone(db: Database, portfolio: Portfolio) -> None:
    r = report(db, portfolio, "collections_by_day", date(2026, 2, 14), date(2026, 3, 11))
    assert r.columns == ["day", "patient_collected_cents", "insurance_collected_cents",
                         "charges_cents", "patient_payments"]
    nonzero = [row for row in r.rows if any(row[1:])]
    assert len(r.rows) == 25
    assert nonzero == [
        ["2026-02-15", 30_00, 0, 0, 1],
        ["2026-03-01", 20_00, 0, 0, 1],
        ["2026-03-03", -5_00, 0, 0, 0],
        ["2026-03-05", 0, 0, 50_00, 0],
        # Posted 2026-03-10 03:30 UTC, which is 23:30 on 03-09 in New York.
        ["2026-03-09", 10_00, 0, 0, 1],
    ]
    north = report(db, portfolio, "collections_by_day", date(2026, 2, 14), date(2026, 3, 11),
                   location_id=portfolio.locations["L1"])
    assert [row for row in north.rows if any(row[1:])] == [
        ["2026-02-15", 30_00, 0, 0, 1], ["2026-03-05", 0, 0, 50_00, 0],
        ["2026-03-09", 10_00, 0, 0, 1]]


def test_days_sales_outstanding(db: Database, portfolio: Portfolio) -> None:
    r = report(db, portfolio, "days_sales_outstanding", date(2026, 4, 1), date(2026, 6, 1))
    assert r.columns == ["month", "receivables_end_cents", "charges_cents", "days", "dso_days"]
    # Receivables before April: 60 + 50 + 200 + 65 = 375.00. April: +20 -10 -> 385.00,
    # charges 20.00 over 30 days -> 385 * 30 / 20 = 577.5. May: -200 -> 185.00, no charges.
    assert r.rows == [
        ["2026-04", 385_00, 20_00, 30, 577.5],
        ["2026-05", 185_00, 0, 31, None],
        ["period", 185_00, 20_00, 61, 564.2],  # 185 * 61 / 20 = 564.25, rounded half-even
    ]


def test_recovery_by_cohort(db: Database, portfolio: Portfolio) -> None:
    r = report(db, portfolio, "recovery_by_cohort", date(2026, 1, 1), date(2026, 7, 1))
    assert r.columns == [
        "cohort", "accounts_placed", "balance_at_placement_cents", "collected_30_cents",
        "collected_60_cents", "collected_90_cents", "collected_120_cents", "recovery_rate_30",
        "recovery_rate_60", "recovery_rate_90", "recovery_rate_120"]
    # A1 placed 02-01 with 100.00: 30.00 after 14 days, 10.00 after 36.5 days.
    # A4 placed 02-10 with 80.00: 20.00 paid, 5.00 refunded, within 21 days.
    assert r.rows == [["2026-02", 2, 180_00, 45_00, 55_00, 55_00, 55_00,
                       0.25, 0.3056, 0.3056, 0.3056]]
    early = report(db, portfolio, "recovery_by_cohort", date(2026, 1, 1), date(2026, 7, 1),
                   now=datetime(2026, 5, 15, 16, tzinfo=UTC))
    # Windows end 30/60/90/120 days after 02-28: only 30 and 60 have passed by 05-15.
    assert early.rows == [["2026-02", 2, 180_00, 45_00, 55_00, 55_00, 55_00,
                           0.25, 0.3056, None, None]]
    south = report(db, portfolio, "recovery_by_cohort", date(2026, 1, 1), date(2026, 7, 1),
                   location_id=portfolio.locations["L2"])
    assert south.rows == [["2026-02", 1, 80_00, 15_00, 15_00, 15_00, 15_00,
                           0.1875, 0.1875, 0.1875, 0.1875]]
    march = report(db, portfolio, "recovery_by_cohort", date(2026, 3, 1), date(2026, 7, 1))
    assert march.rows == []


def test_agency_recovered(db: Database, portfolio: Portfolio) -> None:
    r = report(db, portfolio, "agency_recovered", date(2026, 1, 1), date(2026, 8, 1))
    assert r.columns == ["month", "accounts_reaching_threshold", "balance_at_threshold_cents",
                         "accounts_recovered", "recovered_in_house_cents", "recovery_rate"]
    # A3 crosses 120 days on 04-01 (charge 2025-12-01) and pays 200.00 on 05-10; A1 on 05-11
    # with 60.00; A4 on 06-02 with 65.00; A2 would cross on 07-04, after today (07-01).
    assert r.rows == [
        ["2026-04", 1, 200_00, 1, 200_00, 1.0],
        ["2026-05", 1, 60_00, 0, 0, 0.0],
        ["2026-06", 1, 65_00, 0, 0, 0.0],
    ]
    assert r.notes[0].startswith("An account reaches the agency threshold")


def test_collections_by_channel_last_touch(db: Database, portfolio: Portfolio) -> None:
    r = report(db, portfolio, "collections_by_channel", date(2026, 2, 1), date(2026, 6, 1))
    assert r.columns == ["channel", "campaign", "step", "payments", "collected_cents", "share"]
    # 02-15 (A1) -> the SMS of 02-10; 03-01 (A4) -> the letter of 02-25; 03-10 (A1): its
    # only attempt within 14 days bounced, so unattributed; 05-10 (A3): no attempt.
    assert r.rows == [
        ["letter", "c1", "1:A", 1, 20_00, 0.0769],
        ["sms", "c1", "0:A", 1, 30_00, 0.1154],
        ["unattributed", "", "", 2, 210_00, 0.8077],
    ]
    assert r.chart is not None
    assert r.chart.kind == "doughnut"


def test_cost_per_dollar(db: Database, portfolio: Portfolio) -> None:
    r = report(db, portfolio, "cost_per_dollar", date(2026, 2, 1), date(2026, 6, 1))
    assert r.columns == ["channel", "attempts_sent", "cost_cents", "attributed_collected_cents",
                         "cost_per_dollar"]
    assert r.rows == [
        ["email", 1, 0, 0, None],
        ["letter", 1, 65, 20_00, 0.0325],
        ["sms", 1, 1, 30_00, 0.0003],
        ["all channels", 3, 66, 260_00, 0.0025],  # 65.890 cents of cost over 260.00
    ]


def test_step_funnel(db: Database, portfolio: Portfolio) -> None:
    r = report(db, portfolio, "step_funnel", date(2026, 2, 1), date(2026, 6, 1))
    assert r.rows == [
        ["c1", "0:A", "sms", 2, 1, 1, 1, 1, 0, 1, 1.0, 1.0, 1.0, 0.0, 1.0],
        ["c1", "1:A", "email", 1, 1, 0, 0, 0, 0, 0, 0.0, None, None, None, None],
        ["c1", "1:A", "letter", 1, 1, 1, 0, 0, 0, 1, 1.0, 0.0, 0.0, 0.0, 1.0],
    ]


def test_payment_plans(db: Database, portfolio: Portfolio) -> None:
    r = report(db, portfolio, "payment_plans", date(2026, 4, 1), date(2026, 7, 1))
    assert r.rows == [
        ["2026-04", 2, 125_00, 0, 1, 0.0, 0.5, 0, 0, None],
        ["2026-05", 0, 0, 0, 0, None, None, 2, 1, 0.5],
        ["2026-06", 0, 0, 0, 0, None, None, 2, 0, 0.0],
        ["period", 2, 125_00, 0, 1, 0.0, 0.5, 4, 1, 0.25],
    ]
    north = report(db, portfolio, "payment_plans", date(2026, 4, 1), date(2026, 7, 1),
                   location_id=portfolio.locations["L1"])
    assert north.rows[-1] == ["period", 1, 60_00, 0, 0, 0.0, 0.0, 2, 1, 0.5]


def test_compliance_blocks(db: Database, portfolio: Portfolio) -> None:
    r = report(db, portfolio, "compliance_blocks", date(2026, 2, 1), date(2026, 3, 1))
    assert r.rows == [["REGF-7IN7", "sms", 1, 0], ["REGF-TIME-8-9", "letter", 0, 1]]
    north = report(db, portfolio, "compliance_blocks", date(2026, 2, 1), date(2026, 3, 1),
                   location_id=portfolio.locations["L1"])
    assert north.rows == []


def test_opt_outs(db: Database, portfolio: Portfolio) -> None:
    r = report(db, portfolio, "opt_outs", date(2026, 2, 1), date(2026, 4, 1))
    assert r.rows == [["2026-02", 2, 1, 0, 0.5, 0.0], ["2026-03", 1, 0, 1, 0.0, 1.0]]
    assert "revocation:sms: 1" in r.notes
    assert "opt-out:email: 1" in r.notes
    south = report(db, portfolio, "opt_outs", date(2026, 2, 1), date(2026, 4, 1),
                   location_id=portfolio.locations["L2"])
    assert south.rows == [["2026-02", 1, 0, 0, 0.0, 0.0], ["2026-03", 0, 0, 1, None, None]]


def test_disputes(db: Database, portfolio: Portfolio) -> None:
    r = report(db, portfolio, "disputes", date(2026, 4, 1), date(2026, 5, 1))
    assert r.rows == [["2026-04", 2, 1, 1, 2.5, 2.5]]
    south = report(db, portfolio, "disputes", date(2026, 4, 1), date(2026, 5, 1),
                   location_id=portfolio.locations["L2"])
    assert south.rows == [["2026-04", 1, 0, 1, None, None]]


def test_holdout_lift_small_groups_warn(db: Database, portfolio: Portfolio) -> None:
    r = report(db, portfolio, "holdout_lift", date(2026, 1, 1), date(2026, 7, 1))
    assert r.rows[0][:8] == ["c1", 1, 1, 1.0, 1, 1, 1.0, 0.0]
    assert r.rows[0][10] is not None
    assert r.rows[0][10].startswith("Too few accounts")
    assert any(note.startswith("c1: Too few accounts") for note in r.notes)
    # Enrollments whose 90-day window has not passed are left out.
    early = report(db, portfolio, "holdout_lift", date(2026, 1, 1), date(2026, 7, 1),
                   now=datetime(2026, 5, 5, 16, tzinfo=UTC))
    assert early.rows[0][:7] == ["c1", 1, 1, 1.0, 0, 0, None]


def test_compliance_blocks_by_campaign(db: Database, portfolio: Portfolio) -> None:
    from tests.outreach.helpers import simple_campaign

    with db.tenant_session(portfolio.tenant.id) as s:
        other = simple_campaign(s, portfolio.tenant, channels=("sms",), key="c2")
    mine = report(db, portfolio, "compliance_blocks", date(2026, 2, 1), date(2026, 3, 1),
                  campaign_id=portfolio.campaign_id)
    assert mine.rows == [["REGF-7IN7", "sms", 1, 0], ["REGF-TIME-8-9", "letter", 0, 1]]
    theirs = report(db, portfolio, "compliance_blocks", date(2026, 2, 1), date(2026, 3, 1),
                    campaign_id=other)
    assert theirs.rows == []
