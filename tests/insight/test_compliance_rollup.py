"""compliance_blocks through the rollup's compliance cells: the stored cells are what the
report reads (whole organization and one location), attempts changed after the watermark
are counted live until the next refresh, and the incremental refresh stores what a full
rebuild stores."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select, update

from carecollect.db import Database
from carecollect.insight.models import RollupCell, RollupState
from carecollect.insight.rollup import ALL, COMPLIANCE, LAG, day_ranges, refresh
from carecollect.insight.schemas import Cell, ReportFilters
from carecollect.insight.service import build_dashboard, build_report
from carecollect.outreach.outbox import OutreachAttempt
from tests.insight.portfolio import Portfolio, at, attempt, build

NOW = datetime(2026, 7, 1, 16, 0, tzinfo=UTC)
FEBRUARY = (date(2026, 2, 1), date(2026, 3, 1))
Rows = list[list[Cell]]


@pytest.fixture
def portfolio(db: Database) -> Portfolio:
    """The constructed portfolio plus flagged attempts in both offices: a North (L1)
    attempt blocked under two rules, one re-timed and then blocked, one blocked with no
    rule recorded, a re-timed attempt without an account, and a blocked one outside
    February (on 2026-03-01 00:30 local, which is still 2026-03-01 05:30 UTC)."""
    p = build(db)
    a1, g1 = p.accounts["A1"], p.guarantors["A1"]
    a2, g2 = p.accounts["A2"], p.guarantors["A2"]
    with db.tenant_session(p.tenant.id) as s:
        attempt(s, p.tenant, account_id=a1, guarantor_id=g1, channel="sms",
                when=at("2026-02-03", 14), state="blocked",
                reasons=["TCPA-CONSENT", "REGF-7IN7"])
        attempt(s, p.tenant, account_id=a2, guarantor_id=g2, channel="email",
                when=at("2026-02-28", 23), state="blocked", reasons=["REGF-TIME-8-9"],
                planned_outcome="retime")
        attempt(s, p.tenant, account_id=a2, guarantor_id=g2, channel="call",
                when=at("2026-02-14", 15), state="blocked")
        attempt(s, p.tenant, account_id=None, guarantor_id=g2,  # type: ignore[arg-type]
                channel="letter", when=at("2026-02-14", 16), reasons=["REGF-TIME-8-9"],
                planned_outcome="retime")
        attempt(s, p.tenant, account_id=a1, guarantor_id=g1, channel="sms",
                when=at("2026-03-01", 5, 30), state="blocked", reasons=["PLAT-CEASE"])
    return p


WHOLE = [["(no rule recorded)", "call", 1, 0], ["REGF-7IN7", "sms", 2, 0],
         ["REGF-TIME-8-9", "email", 1, 1], ["REGF-TIME-8-9", "letter", 0, 2],
         ["TCPA-CONSENT", "sms", 1, 0]]
NORTH = [["(no rule recorded)", "call", 1, 0], ["REGF-7IN7", "sms", 1, 0],
         ["REGF-TIME-8-9", "email", 1, 1], ["TCPA-CONSENT", "sms", 1, 0]]
SOUTH = [["REGF-7IN7", "sms", 1, 0], ["REGF-TIME-8-9", "letter", 0, 1]]


def rows(db: Database, p: Portfolio, location: str | None = None,
         period: tuple[date, date] = FEBRUARY) -> Rows:
    filters = ReportFilters(*period, location_id=p.locations[location] if location else None)
    with db.tenant_session(p.tenant.id) as s:
        return build_report(s, organization_id=p.tenant.id, key="compliance_blocks",
                            filters=filters, now=NOW).rows


def all_views(db: Database, p: Portfolio) -> tuple[Rows, Rows, Rows]:
    return rows(db, p), rows(db, p, "L1"), rows(db, p, "L2")


def compliance_cells(db: Database, p: Portfolio) -> list[tuple[object, ...]]:
    with db.tenant_session(p.tenant.id) as s:
        found = s.execute(select(RollupCell.metric, RollupCell.period, RollupCell.location_id,
                                 RollupCell.bucket, RollupCell.amount_cents, RollupCell.count)
                          .where(RollupCell.metric.in_([COMPLIANCE, COMPLIANCE + ALL])))
        return sorted((tuple(r) for r in found), key=str)


def full_refresh(db: Database, p: Portfolio, now: datetime) -> None:
    with db.tenant_session(p.tenant.id) as s:
        state = s.get(RollupState, p.tenant.id)
        if state is not None:
            s.delete(state)
    with db.tenant_session(p.tenant.id) as s:
        assert refresh(s, organization_id=p.tenant.id, now=now).mode == "full"


def test_live_path_hand_computed(db: Database, portfolio: Portfolio) -> None:
    # No rollup state: the report counts the attempts directly.
    assert all_views(db, portfolio) == (WHOLE, NORTH, SOUTH)


def test_report_reads_the_stored_cells(db: Database, portfolio: Portfolio) -> None:
    p = portfolio
    full_refresh(db, p, datetime.now(UTC) + LAG)
    assert all_views(db, p) == (WHOLE, NORTH, SOUTH)
    cells = compliance_cells(db, p)
    north = p.locations["L1"]
    # One cell per (local day, location, kind|channel|rule); the 23:00 UTC attempt of
    # 2026-02-28 is on 2026-02-28 in New York, the 05:30 UTC one of 03-01 on 2026-03-01.
    assert (COMPLIANCE, date(2026, 2, 3), north, "blocked|sms|TCPA-CONSENT", 0, 1) in cells
    assert (COMPLIANCE, date(2026, 2, 28), north, "retimed|email|REGF-TIME-8-9", 0, 1) in cells
    assert (COMPLIANCE, date(2026, 3, 1), north, "blocked|sms|PLAT-CEASE", 0, 1) in cells
    assert (COMPLIANCE, date(2026, 2, 14), None, "retimed|letter|REGF-TIME-8-9", 0, 1) in cells
    assert (COMPLIANCE + ALL, date(2026, 2, 14), None, "blocked|call|(no rule recorded)", 0,
            1) in cells
    # The report adds up those cells: a changed stored count shows (test-only edit).
    with db.tenant_session(p.tenant.id) as s:
        s.execute(update(RollupCell).where(
            RollupCell.metric.in_([COMPLIANCE, COMPLIANCE + ALL]),
            RollupCell.bucket == "blocked|call|(no rule recorded)").values(count=7))
    whole, located, south = all_views(db, p)
    assert whole[0] == ["(no rule recorded)", "call", 7, 0]
    assert located[0] == ["(no rule recorded)", "call", 7, 0]
    assert south == SOUTH
    # March only: the attempt on local 2026-03-01.
    assert rows(db, p, period=(date(2026, 3, 1), date(2026, 4, 1))) == [
        ["PLAT-CEASE", "sms", 1, 0]]


def test_changed_attempts_are_counted_live_then_refreshed(db: Database,
                                                          portfolio: Portfolio) -> None:
    p = portfolio
    full_refresh(db, p, datetime.now(UTC) + LAG)
    stored = compliance_cells(db, p)
    a1, g1 = p.accounts["A1"], p.guarantors["A1"]
    with db.tenant_session(p.tenant.id) as s:
        # A sent attempt blocked at send time after the watermark (updated in place).
        sent = s.scalar(select(OutreachAttempt).where(
            OutreachAttempt.organization_id == p.tenant.id,
            OutreachAttempt.channel == "sms", OutreachAttempt.state == "sent"))
        assert sent is not None
        sent.state, sent.reasons = "blocked", ["TCPA-CONSENT"]
        # A new blocked attempt, written after the watermark.
        new = attempt(s, p.tenant, account_id=a1, guarantor_id=g1, channel="sms",
                      when=at("2026-02-20", 16), state="blocked", reasons=["REGF-7IN7"])
        row = s.get(OutreachAttempt, new)
        assert row is not None
        row.updated_at = datetime.now(UTC)  # the fixture helper backdates it to `when`
        # A blocked attempt of South released (state back to sent: no longer counted).
        blocked = s.scalar(select(OutreachAttempt).where(
            OutreachAttempt.organization_id == p.tenant.id,
            OutreachAttempt.account_id == p.accounts["A4"],
            OutreachAttempt.state == "blocked"))
        assert blocked is not None
        blocked.state = "sent"
    whole = [["(no rule recorded)", "call", 1, 0], ["REGF-7IN7", "sms", 2, 0],
             ["REGF-TIME-8-9", "email", 1, 1], ["REGF-TIME-8-9", "letter", 0, 2],
             ["TCPA-CONSENT", "sms", 2, 0]]
    north = [["(no rule recorded)", "call", 1, 0], ["REGF-7IN7", "sms", 2, 0],
             ["REGF-TIME-8-9", "email", 1, 1], ["TCPA-CONSENT", "sms", 2, 0]]
    south = [["REGF-TIME-8-9", "letter", 0, 1]]
    # Before any refresh: the stored cells are unchanged, the report is already exact.
    assert compliance_cells(db, p) == stored
    assert all_views(db, p) == (whole, north, south)
    with db.tenant_session(p.tenant.id) as s:
        dashboard = build_dashboard(s, organization_id=p.tenant.id, now=NOW,
                                    filters=ReportFilters(*FEBRUARY,
                                                          location_id=p.locations["L1"]))
    assert next(r for r in dashboard if r.key == "compliance_blocks").rows == north
    # The incremental refresh recomputes the changed days; it stores what a full rebuild
    # stores, and the report reads the same figures from the cells.
    later = datetime.now(UTC) + LAG + timedelta(seconds=1)
    with db.tenant_session(p.tenant.id) as s:
        assert refresh(s, organization_id=p.tenant.id, now=later).mode == "incremental"
    incremental = compliance_cells(db, p)
    assert incremental != stored
    assert all_views(db, p) == (whole, north, south)
    full_refresh(db, p, later + timedelta(seconds=1))
    assert compliance_cells(db, p) == incremental
    assert all_views(db, p) == (whole, north, south)


def test_campaign_filter_keeps_the_direct_count(db: Database, portfolio: Portfolio) -> None:
    p = portfolio
    full_refresh(db, p, datetime.now(UTC) + LAG)
    with db.tenant_session(p.tenant.id) as s:
        report = build_report(s, organization_id=p.tenant.id, key="compliance_blocks",
                              filters=ReportFilters(*FEBRUARY, campaign_id=p.campaign_id),
                              now=NOW)
    # Enrolled in c1: A1 (North) and A4 (South); the attempts carry cadence_key c1.
    assert report.rows == [["REGF-7IN7", "sms", 2, 0], ["REGF-TIME-8-9", "letter", 0, 1],
                           ["TCPA-CONSENT", "sms", 1, 0]]


def test_day_ranges_merge_consecutive_local_days() -> None:
    from zoneinfo import ZoneInfo

    zone = ZoneInfo("America/New_York")
    ranges = day_ranges([date(2026, 3, 9), date(2026, 3, 7), date(2026, 3, 8),
                         date(2026, 3, 20)], zone)
    assert ranges == [
        (datetime(2026, 3, 7, 5, tzinfo=UTC), datetime(2026, 3, 10, 4, tzinfo=UTC)),
        (datetime(2026, 3, 20, 4, tzinfo=UTC), datetime(2026, 3, 21, 4, tzinfo=UTC))]
    assert day_ranges([], zone) == []
