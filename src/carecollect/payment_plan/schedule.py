"""Plan policy bounds and exact-cent schedules (pure: no I/O, no clock).

* Installments sum exactly to the financed amount: `divmod(financed, n)` and the first
  `remainder` installments carry one cent more, so no two differ by more than a cent and
  nothing is lost to rounding.
* Dates are monthly on the start date's day, clamped to the month's end (Jan 31 -> Feb 28
  or Feb 29 in a leap year -> Mar 31: the anchor day is kept, not drifted).
* Bounds: down payment at least the policy's minimum (cents or a share of the balance),
  each installment at least the minimum installment (a single installment may be
  smaller: it is the whole rest), and no more installments than the balance tier allows.
* Interest-free and fee-free by default. A fee is allowed only when the account agreement
  authorizes it (REGF-UNAUTH-AMOUNT, 12 CFR 1006.22(b)); interest-bearing plans are
  refused: they would be consumer credit needing Truth in Lending disclosures (Reg Z).
"""

from __future__ import annotations

import calendar
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date

from carecollect.errors import BadInput

MAX_MONTHS = 120


@dataclass(frozen=True, slots=True)
class TermTier:
    up_to_cents: int | None  # inclusive upper bound of the balance; None = no bound
    max_months: int


DEFAULT_TIERS: tuple[TermTier, ...] = (
    TermTier(50_000, 6), TermTier(200_000, 12), TermTier(None, 24))


@dataclass(frozen=True, slots=True)
class PolicyTerms:
    min_down_payment_cents: int = 0
    min_down_payment_bps: int = 0
    min_installment_cents: int = 2_500
    term_tiers: tuple[TermTier, ...] = DEFAULT_TIERS
    interest_bps: int = 0
    setup_fee_cents: int = 0
    fee_authorized_by_agreement: bool = False
    grace_days: int = 10
    retry_days: tuple[int, ...] = (3, 7)
    misses_to_default: int = 2
    allow_self_service: bool = True
    autopay_hour_local: int = 9
    extra: dict[str, int] = field(default_factory=dict)

    def validate(self) -> None:
        if self.interest_bps != 0:
            raise BadInput("interest-bearing plans are not supported: plans are interest-free")
        if self.setup_fee_cents < 0:
            raise BadInput("the plan fee cannot be negative")
        if self.setup_fee_cents > 0 and not self.fee_authorized_by_agreement:
            # REGF-UNAUTH-AMOUNT (12 CFR 1006.22(b)): no fee unless the agreement allows it.
            raise BadInput("a plan fee needs the account agreement's authorization "
                           "(REGF-UNAUTH-AMOUNT)")
        if self.min_down_payment_cents < 0 or not 0 <= self.min_down_payment_bps <= 10_000:
            raise BadInput("the minimum down payment is out of range")
        if self.min_installment_cents < 1:
            raise BadInput("the minimum installment must be at least one cent")
        if not self.term_tiers or self.term_tiers[-1].up_to_cents is not None:
            raise BadInput("the last term tier must have no upper bound")
        bounds = [t.up_to_cents for t in self.term_tiers[:-1]]
        if any(b is None or b <= 0 for b in bounds) or bounds != sorted(set(bounds)):  # type: ignore[type-var]
            raise BadInput("term tiers must have increasing upper bounds")
        if any(not 1 <= t.max_months <= MAX_MONTHS for t in self.term_tiers):
            raise BadInput(f"a tier's maximum term must be 1 to {MAX_MONTHS} months")
        if not 0 <= self.grace_days <= 60:
            raise BadInput("the grace period must be 0 to 60 days")
        if list(self.retry_days) != sorted(set(self.retry_days)) or any(
                d < 1 or d > self.grace_days for d in self.retry_days):
            raise BadInput("retry days must increase and fall within the grace period")
        if not 1 <= self.misses_to_default <= 12:
            raise BadInput("misses before default must be 1 to 12")
        if not 0 <= self.autopay_hour_local <= 23:
            raise BadInput("the autopay hour must be 0 to 23")


@dataclass(frozen=True, slots=True)
class Installment:
    sequence: int
    due_on: date
    amount_cents: int
    is_down_payment: bool = False


@dataclass(frozen=True, slots=True)
class Schedule:
    balance_cents: int
    fee_cents: int
    down_payment_cents: int
    installments: tuple[Installment, ...]

    @property
    def total_cents(self) -> int:
        return sum(i.amount_cents for i in self.installments)


def max_months(policy: PolicyTerms, balance_cents: int) -> int:
    for tier in policy.term_tiers:
        if tier.up_to_cents is None or balance_cents <= tier.up_to_cents:
            return tier.max_months
    return policy.term_tiers[-1].max_months


def required_down_payment(policy: PolicyTerms, balance_cents: int) -> int:
    share = -(-balance_cents * policy.min_down_payment_bps // 10_000)  # ceiling
    return min(balance_cents, max(policy.min_down_payment_cents, share))


def max_installments(policy: PolicyTerms, balance_cents: int, financed_cents: int) -> int:
    """The most monthly installments (after any down payment) the policy allows."""
    if financed_cents <= 0:
        return 0
    by_minimum = financed_cents // policy.min_installment_cents
    return max(1, min(max_months(policy, balance_cents), by_minimum))


def add_months(start: date, months: int, anchor_day: int | None = None) -> date:
    day = anchor_day or start.day
    index = start.month - 1 + months
    year, month = start.year + index // 12, index % 12 + 1
    return date(year, month, min(day, calendar.monthrange(year, month)[1]))


def split_exact(total_cents: int, count: int) -> list[int]:
    base, extra = divmod(total_cents, count)
    return [base + 1 if i < extra else base for i in range(count)]


def build_schedule(
    policy: PolicyTerms,
    *,
    balance_cents: int,
    start_on: date,
    installments: int | None = None,
    down_payment_cents: int | None = None,
    waive_down_payment: bool = False,
) -> Schedule:
    """A schedule within policy; `installments` defaults to the most the policy allows
    (the smallest monthly amount), `down_payment_cents` to the required minimum."""
    policy.validate()
    if isinstance(balance_cents, bool) or balance_cents <= 0:
        raise BadInput("There is nothing to put on a plan.")
    required = 0 if waive_down_payment else required_down_payment(policy, balance_cents)
    down = required if down_payment_cents is None else down_payment_cents
    if down < required:
        raise BadInput("The down payment is less than the plan policy's minimum.")
    if down > balance_cents:
        raise BadInput("The down payment is more than what is owed.")
    fee = policy.setup_fee_cents
    financed = balance_cents - down + fee
    limit = max_installments(policy, balance_cents, financed)
    count = limit if installments is None else installments
    if financed > 0 and not 1 <= count <= limit:
        raise BadInput(f"The plan can have 1 to {limit} monthly payments under the "
                       "organization's policy.")
    rows: list[Installment] = []
    if down > 0:
        rows.append(Installment(0, start_on, down, is_down_payment=True))
    if financed > 0:
        offset = 1 if down > 0 else 0
        for i, cents in enumerate(split_exact(financed, count)):
            rows.append(Installment(i + 1, add_months(start_on, i + offset), cents))
    return Schedule(balance_cents, fee, down, tuple(rows))


def redate(amounts: Sequence[int], start_on: date) -> list[tuple[date, int]]:
    """Monthly dates from `start_on` for amounts kept as they are (resume after a pause)."""
    return [(add_months(start_on, i), cents) for i, cents in enumerate(amounts)]
