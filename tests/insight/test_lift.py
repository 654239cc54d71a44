"""Holdout lift and its interval, checked against a direct computation with SciPy."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime

import pytest
from scipy.stats import binomtest, norm

from carecollect.db import Database
from carecollect.insight.lift import MIN_ARM, MIN_OUTCOMES, lift, wilson_interval
from carecollect.insight.schemas import ReportFilters
from carecollect.insight.service import build_report
from carecollect.ledger.service import ledger_service
from tests.factories import TEST_ACTOR, create_guarantor, create_tenant
from tests.insight.portfolio import at, enroll
from tests.outreach.helpers import simple_campaign


def scipy_newcombe(k1: int, n1: int, k2: int, n2: int) -> tuple[float, float, float]:
    """Newcombe's hybrid score interval from SciPy's Wilson intervals."""
    ci1 = binomtest(k1, n1).proportion_ci(confidence_level=0.95, method="wilson")
    ci2 = binomtest(k2, n2).proportion_ci(confidence_level=0.95, method="wilson")
    p1, p2 = k1 / n1, k2 / n2
    d = p1 - p2
    low = d - math.sqrt((p1 - ci1.low) ** 2 + (ci2.high - p2) ** 2)
    high = d + math.sqrt((ci1.high - p1) ** 2 + (p2 - ci2.low) ** 2)
    return d, low, high


@pytest.mark.parametrize(("k1", "n1", "k2", "n2"), [
    (18, 40, 9, 35), (0, 50, 0, 50), (50, 50, 10, 50), (5, 30, 25, 30), (1, 3, 2, 7),
    (333, 1000, 250, 990),
])
def test_lift_matches_scipy(k1: int, n1: int, k2: int, n2: int) -> None:
    result = lift(n1, k1, n2, k2)
    d, low, high = scipy_newcombe(k1, n1, k2, n2)
    assert result.difference == pytest.approx(d, abs=1e-12)
    assert result.low == pytest.approx(low, abs=1e-9)
    assert result.high == pytest.approx(high, abs=1e-9)
    p1, p2 = k1 / n1, k2 / n2
    se = math.sqrt(p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2)
    z = norm.ppf(0.975)
    assert result.wald_low == pytest.approx(d - z * se, abs=1e-9)
    assert result.wald_high == pytest.approx(d + z * se, abs=1e-9)


def test_wilson_matches_scipy() -> None:
    for k, n in ((0, 10), (3, 10), (10, 10), (57, 211)):
        ci = binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
        low, high = wilson_interval(k, n)
        assert low == pytest.approx(ci.low, abs=1e-12)
        assert high == pytest.approx(ci.high, abs=1e-12)


@pytest.mark.parametrize(("n1", "k1", "n2", "k2", "warns"), [
    (MIN_ARM, MIN_OUTCOMES, MIN_ARM, MIN_ARM - MIN_OUTCOMES, False),
    (MIN_ARM - 1, 10, 40, 10, True),  # a small treated arm
    (40, 10, MIN_ARM - 1, 10, True),  # a small holdout arm
    (40, MIN_OUTCOMES - 1, 40, 10, True),  # too few successes
    (40, 10, 40, 40 - MIN_OUTCOMES + 1, True),  # too few failures
    (0, 0, 40, 10, True),
])
def test_small_group_warning(n1: int, k1: int, n2: int, k2: int, warns: bool) -> None:
    result = lift(n1, k1, n2, k2)
    assert (result.warning is not None) is warns
    if warns:
        assert result.warning is not None
        assert "Too few accounts to tell" in result.warning


def test_empty_arm_has_no_difference() -> None:
    result = lift(0, 0, 40, 10)
    assert result.difference is None
    assert result.low is None
    assert result.holdout_rate == 0.25


@pytest.mark.parametrize("args", [(10, 11, 10, 1), (10, -1, 10, 1), (10, 1, 5, 6)])
def test_impossible_counts_are_refused(args: tuple[int, int, int, int]) -> None:
    with pytest.raises(ValueError, match="recovered counts"):
        lift(*args)


def test_holdout_lift_report_against_scipy(db: Database) -> None:
    """40 treated accounts (18 pay within 90 days) and 35 held out (9 pay)."""
    tenant = create_tenant(db)
    with db.tenant_session(tenant.id) as s:
        campaign_id = simple_campaign(s, tenant, channels=("sms",), key="spring",
                                      holdout_basis_points=4000)
        guarantor = create_guarantor(s, tenant)
        plan = [("treatment", i < 18) for i in range(40)] + [("holdout", i < 9)
                                                              for i in range(35)]
        for n, (cohort, pays) in enumerate(plan):
            account = ledger_service.open_account(
                s, keys=tenant.keys, actor=TEST_ACTOR, guarantor_id=guarantor.id,
                account_number=f"L-{n}", opened_at=at("2026-01-02"))
            ledger_service.post(s, keys=tenant.keys, actor=TEST_ACTOR, account_id=account.id,
                                kind="charge", amount_cents=10_000, posted_at=at("2026-01-05"))
            if pays:
                # Day 89 after enrollment: inside the window.
                ledger_service.post(s, keys=tenant.keys, actor=TEST_ACTOR,
                                    account_id=account.id, kind="patient_payment",
                                    amount_cents=2_500, posted_at=at("2026-05-01"))
            elif n % 2:
                # Day 91: outside the 90-day window, so not recovered.
                ledger_service.post(s, keys=tenant.keys, actor=TEST_ACTOR,
                                    account_id=account.id, kind="patient_payment",
                                    amount_cents=2_500, posted_at=at("2026-05-03"))
            enroll(s, tenant, campaign_id=campaign_id, account_id=account.id,
                   guarantor_id=guarantor.id, cohort=cohort, enrolled_at=at("2026-02-01"))
    with db.tenant_session(tenant.id) as s:
        report = build_report(s, organization_id=tenant.id, key="holdout_lift",
                              filters=ReportFilters(date(2026, 1, 1), date(2026, 7, 1)),
                              now=datetime(2026, 7, 1, tzinfo=UTC))
    d, low, high = scipy_newcombe(18, 40, 9, 35)
    row = report.rows[0]
    assert row[:7] == ["spring", 40, 18, 0.45, 35, 9, round(9 / 35, 4)]
    assert row[7] == pytest.approx(d, abs=5e-5)
    assert row[8] == pytest.approx(low, abs=5e-5)
    assert row[9] == pytest.approx(high, abs=5e-5)
    assert row[10] is None
    assert not any("Too few" in note for note in report.notes)
