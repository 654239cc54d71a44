"""Calendar arithmetic in the organization's zone: local days, month ends, UTC bounds."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from carecollect.insight.schemas import ReportFilters


def local_start(day: date, zone: ZoneInfo) -> datetime:
    """The UTC instant at which `day` begins in `zone` (DST-safe: zoneinfo resolves it)."""
    return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)


def local_day(instant: datetime, zone: ZoneInfo) -> date:
    return instant.astimezone(zone).date()


def utc_bounds(filters: ReportFilters, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """[start, end) of the filter period as UTC instants."""
    return local_start(filters.period_start, zone), local_start(filters.period_end, zone)


def month_start(day: date) -> date:
    return day.replace(day=1)


def next_month(day: date) -> date:
    first = day.replace(day=1)
    return (first + timedelta(days=32)).replace(day=1)


def days_in(filters: ReportFilters) -> list[date]:
    count = (filters.period_end - filters.period_start).days
    return [filters.period_start + timedelta(days=i) for i in range(count)]


def months_in(filters: ReportFilters) -> list[date]:
    """First days of the months that intersect the period."""
    months: list[date] = []
    current = month_start(filters.period_start)
    while current < filters.period_end:
        months.append(current)
        current = next_month(current)
    return months


def aging_points(filters: ReportFilters, today: date) -> list[date]:
    """As-of days of the aging series: each balance is taken at the *start* of the as-of day
    (end of the previous local day). Points are the month ends inside the period (the first
    of each following month) that have passed, plus today's start when the period reaches
    today and today is not a month start."""
    points: list[date] = []
    current = next_month(filters.period_start)
    while current <= filters.period_end and current <= today:
        points.append(current)
        current = next_month(current)
    if filters.period_start < today <= filters.period_end and (not points or points[-1] != today):
        points.append(today)
    return points
