"""Holdout lift: the difference in recovery rate between treated and held-out accounts.

Recovery is counted per account (a two-proportion comparison, not dollar-weighted): an
enrollment is recovered when the patient paid anything, net of refunds, within
LIFT_WINDOW_DAYS after it. The 95 % interval of the difference p_treated - p_holdout is
Newcombe's hybrid score interval (Newcombe 1998, method 10), built from the two Wilson score
intervals; unlike the Wald interval it stays inside [-1, 1] and behaves at rates near 0 or 1
and with small groups. The Wald interval is returned too, for reference.

Too small to say anything: fewer than MIN_ARM accounts in either arm, or fewer than
MIN_OUTCOMES recovered or not-recovered accounts in either arm (the usual rule of thumb for
the normal approximation behind both intervals).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

Z_95 = 1.959963984540054  # the 97.5th percentile of the standard normal distribution
MIN_ARM = 30
MIN_OUTCOMES = 5


def wilson_interval(successes: int, total: int, z: float = Z_95) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion (Wilson 1927)."""
    if total <= 0:
        return (0.0, 1.0)
    p = successes / total
    denominator = 1 + z * z / total
    centre = (p + z * z / (2 * total)) / denominator
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / denominator
    return (max(0.0, centre - half), min(1.0, centre + half))


@dataclass(frozen=True)
class Lift:
    treated: int
    treated_recovered: int
    holdout: int
    holdout_recovered: int
    treated_rate: float | None
    holdout_rate: float | None
    difference: float | None
    low: float | None  # Newcombe 95 % interval
    high: float | None
    wald_low: float | None
    wald_high: float | None
    warning: str | None


def too_small(treated: int, treated_recovered: int, holdout: int, holdout_recovered: int) -> bool:
    if treated < MIN_ARM or holdout < MIN_ARM:
        return True
    counts = (treated_recovered, treated - treated_recovered,
              holdout_recovered, holdout - holdout_recovered)
    return min(counts) < MIN_OUTCOMES


def lift(treated: int, treated_recovered: int, holdout: int, holdout_recovered: int) -> Lift:
    """Difference in recovery rate, treated minus holdout, with its 95 % intervals."""
    if not (0 <= treated_recovered <= treated and 0 <= holdout_recovered <= holdout):
        raise ValueError("recovered counts must lie between zero and the group size")
    warning = None
    if too_small(treated, treated_recovered, holdout, holdout_recovered):
        warning = (
            f"Too few accounts to tell: each group needs at least {MIN_ARM} accounts and at "
            f"least {MIN_OUTCOMES} that paid and {MIN_OUTCOMES} that did not."
        )
    if treated == 0 or holdout == 0:
        return Lift(treated, treated_recovered, holdout, holdout_recovered,
                    treated_recovered / treated if treated else None,
                    holdout_recovered / holdout if holdout else None,
                    None, None, None, None, None, warning)
    p1 = treated_recovered / treated
    p2 = holdout_recovered / holdout
    difference = p1 - p2
    l1, u1 = wilson_interval(treated_recovered, treated)
    l2, u2 = wilson_interval(holdout_recovered, holdout)
    low = difference - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    high = difference + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    standard_error = math.sqrt(p1 * (1 - p1) / treated + p2 * (1 - p2) / holdout)
    return Lift(
        treated, treated_recovered, holdout, holdout_recovered, p1, p2, difference,
        low, high, difference - Z_95 * standard_error, difference + Z_95 * standard_error,
        warning,
    )
