"""Schedules: exact cents, policy bounds and valid dates, for any balance, policy and
start date (hypothesis), plus known answers for month ends and leap years."""

from __future__ import annotations

import calendar
from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from carecollect.errors import BadInput
from carecollect.payment_plan.schedule import (
    PolicyTerms,
    TermTier,
    add_months,
    build_schedule,
    max_installments,
    max_months,
    required_down_payment,
    split_exact,
)


@st.composite
def policies(draw: st.DrawFn) -> PolicyTerms:
    bounds = sorted(set(draw(st.lists(st.integers(1_000, 5_000_000), max_size=4))))
    tiers = [TermTier(b, draw(st.integers(1, 60))) for b in bounds]
    tiers.append(TermTier(None, draw(st.integers(1, 120))))
    fee = draw(st.sampled_from([0, 0, 0, 500, 2_500]))
    grace = draw(st.integers(0, 30))
    retries = sorted(set(draw(st.lists(st.integers(1, max(grace, 1)), max_size=3))))
    return PolicyTerms(
        min_down_payment_cents=draw(st.sampled_from([0, 0, 1_000, 5_000, 25_000])),
        min_down_payment_bps=draw(st.sampled_from([0, 0, 1_000, 2_500, 10_000])),
        min_installment_cents=draw(st.sampled_from([1, 100, 2_500, 5_000, 10_000])),
        term_tiers=tuple(tiers),
        setup_fee_cents=fee,
        fee_authorized_by_agreement=fee > 0,
        grace_days=grace,
        retry_days=tuple(r for r in retries if r <= grace),
        misses_to_default=draw(st.integers(1, 4)),
    )


@settings(max_examples=400, deadline=None)
@given(policy=policies(), balance=st.integers(1, 10_000_000),
       start=st.dates(date(2024, 1, 1), date(2040, 12, 31)),
       choice=st.floats(0, 1), extra_down=st.integers(0, 100_000))
def test_schedule_sums_exactly_respects_policy_and_has_valid_dates(
    policy: PolicyTerms, balance: int, start: date, choice: float, extra_down: int
) -> None:
    required = required_down_payment(policy, balance)
    down = min(balance, required + extra_down)
    financed = balance - down + policy.setup_fee_cents
    limit = max_installments(policy, balance, financed)
    count = max(1, round(choice * limit)) if financed else None
    schedule = build_schedule(policy, balance_cents=balance, start_on=start,
                              installments=count, down_payment_cents=down)
    items = schedule.installments
    # Exact cents: everything owed (plus an authorized fee), nothing more, nothing less.
    assert sum(i.amount_cents for i in items) == balance + policy.setup_fee_cents
    assert all(i.amount_cents > 0 for i in items)
    # Down payment bound.
    downs = [i for i in items if i.is_down_payment]
    assert sum(i.amount_cents for i in downs) == down >= required
    if downs:
        assert (downs[0].sequence, downs[0].due_on) == (0, start)
    # Term bound by balance tier; installment minimum unless a single installment.
    monthly = [i for i in items if not i.is_down_payment]
    assert len(monthly) <= max_months(policy, balance)
    if len(monthly) > 1:
        assert min(i.amount_cents for i in monthly) >= policy.min_installment_cents
    if monthly:
        assert max(i.amount_cents for i in monthly) - min(i.amount_cents for i in monthly) <= 1
    # Dates: real calendar dates, strictly increasing, one per month, on the anchor day
    # or the month's last day when the month is shorter.
    dates = [i.due_on for i in items]
    assert dates == sorted(set(dates))
    assert dates[0] == start
    offset = 1 if downs else 0
    for n, inst in enumerate(monthly):
        months = start.year * 12 + start.month - 1 + n + offset
        year, month = divmod(months, 12)
        last = calendar.monthrange(year, month + 1)[1]
        assert inst.due_on == date(year, month + 1, min(start.day, last))
    assert [i.sequence for i in items] == list(range(0 if downs else 1, len(items) + (0 if downs
                                                                                      else 1)))


@settings(max_examples=200, deadline=None)
@given(total=st.integers(1, 10**9), count=st.integers(1, 120))
def test_split_exact(total: int, count: int) -> None:
    parts = split_exact(total, count)
    assert sum(parts) == total
    assert len(parts) == count
    assert max(parts) - min(parts) <= 1
    assert parts == sorted(parts, reverse=True)


@pytest.mark.parametrize(("start", "months", "expected"), [
    (date(2028, 1, 31), 1, date(2028, 2, 29)),   # leap year
    (date(2027, 1, 31), 1, date(2027, 2, 28)),
    (date(2028, 1, 31), 2, date(2028, 3, 31)),   # the anchor day comes back
    (date(2026, 8, 31), 1, date(2026, 9, 30)),
    (date(2026, 12, 15), 1, date(2027, 1, 15)),  # year rollover
    (date(2024, 2, 29), 12, date(2025, 2, 28)),
    (date(2024, 2, 29), 48, date(2028, 2, 29)),
])
def test_month_ends_and_leap_years(start: date, months: int, expected: date) -> None:
    assert add_months(start, months) == expected


def test_known_schedule() -> None:
    policy = PolicyTerms(min_down_payment_bps=1_000, min_installment_cents=2_500)
    schedule = build_schedule(policy, balance_cents=100_001, start_on=date(2028, 1, 31),
                              installments=4)
    assert [(i.sequence, i.due_on.isoformat(), i.amount_cents)
            for i in schedule.installments] == [
        (0, "2028-01-31", 10_001),
        (1, "2028-02-29", 22_500),
        (2, "2028-03-31", 22_500),
        (3, "2028-04-30", 22_500),
        (4, "2028-05-31", 22_500),
    ]


@pytest.mark.parametrize(("terms", "message"), [
    (PolicyTerms(setup_fee_cents=500), "REGF-UNAUTH-AMOUNT"),
    (PolicyTerms(interest_bps=500), "interest-free"),
    (PolicyTerms(term_tiers=(TermTier(1_000, 3),)), "last term tier"),
    (PolicyTerms(term_tiers=(TermTier(5_000, 3), TermTier(1_000, 3), TermTier(None, 6))),
     "increasing"),
    (PolicyTerms(grace_days=5, retry_days=(3, 7)), "retry days"),
    (PolicyTerms(min_installment_cents=0), "minimum installment"),
])
def test_invalid_policies_are_refused(terms: PolicyTerms, message: str) -> None:
    with pytest.raises(BadInput, match=message):
        build_schedule(terms, balance_cents=10_000, start_on=date(2026, 1, 1))


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"installments": 7}, "1 to 6 monthly payments"),
    ({"installments": 0}, "1 to 6 monthly payments"),
    ({"down_payment_cents": 10}, "less than the plan policy's minimum"),
    ({"down_payment_cents": 40_001}, "more than what is owed"),
])
def test_requests_outside_policy_are_refused(kwargs: dict[str, int], message: str) -> None:
    policy = PolicyTerms(min_down_payment_cents=2_000)
    with pytest.raises(BadInput, match=message):
        build_schedule(policy, balance_cents=40_000, start_on=date(2026, 1, 1), **kwargs)
