"""Business days and the validation period (12 CFR 1006.34(b)(5); 5 USC 6103(a))."""

from __future__ import annotations

import datetime as dt
import functools


@functools.lru_cache(maxsize=64)
def federal_holidays(year: int) -> frozenset[dt.date]:
    """Federal legal public holidays of 5 USC 6103(a), with observed Friday/Monday dates."""
    import holidays

    return frozenset(holidays.country_holidays("US", years=year).keys())


def is_business_day(day: dt.date) -> bool:
    return day.weekday() < 5 and day not in federal_holidays(day.year)


def add_business_days(day: dt.date, count: int) -> dt.date:
    """`count` business days after `day` (excluding Saturdays, Sundays, federal holidays)."""
    current = day
    remaining = count
    while remaining > 0:
        current += dt.timedelta(days=1)
        if is_business_day(current):
            remaining -= 1
    return current


def validation_period_end(provided: dt.date) -> dt.date:
    """Last day of the validation period: assumed receipt (5 business days) + 30 days."""
    return add_business_days(provided, 5) + dt.timedelta(days=30)
