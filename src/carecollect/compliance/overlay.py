"""Organization overlay: tenant settings that can only tighten the catalog.

Stricter contact window, quiet weekdays (STATE-SUNDAY: tenant-configurable, default off),
holidays from the `holidays` package, and lower contact caps. Construction rejects any
setting that would loosen a legal limit, so an overlay can never turn a block into an allow.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
from typing import Any

LEGAL_START = dt.time(8, 0)
LEGAL_END = dt.time(21, 0)
REGF_CALL_CAP = 7
_WEEKDAYS = {"mon": 0, "tue": 1, "wed": 2, "thu": 3, "fri": 4, "sat": 5, "sun": 6}


class OverlayError(ValueError):
    """An overlay setting would loosen the rules or is malformed."""


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class OrgOverlay:
    window_start: dt.time = LEGAL_START
    window_end: dt.time = LEGAL_END
    quiet_weekdays: frozenset[int] = frozenset()
    holiday_country: str | None = None
    holiday_subdivision: str | None = None
    extra_quiet_dates: frozenset[dt.date] = frozenset()
    max_calls_per_7_days: int | None = None
    max_contacts_per_7_days: int | None = None

    def __post_init__(self) -> None:
        if self.window_start < LEGAL_START or self.window_end > LEGAL_END:
            raise OverlayError("the overlay window must lie inside [08:00, 21:00)")
        if self.window_start >= self.window_end:
            raise OverlayError("the overlay window is empty")
        if any(d not in range(7) for d in self.quiet_weekdays):
            raise OverlayError("quiet weekdays are 0 (Monday) to 6 (Sunday)")
        if len(self.quiet_weekdays) == 7:
            raise OverlayError("an overlay cannot make every weekday quiet")
        if self.max_calls_per_7_days is not None and \
                not 0 <= self.max_calls_per_7_days <= REGF_CALL_CAP:
            raise OverlayError("the call cap must be between 0 and 7 per 7 days")
        if self.max_contacts_per_7_days is not None and self.max_contacts_per_7_days < 0:
            raise OverlayError("the contact cap cannot be negative")
        if self.holiday_country is not None:
            _holidays(self.holiday_country, self.holiday_subdivision, 2026)

    def is_quiet(self, day: dt.date) -> str | None:
        if day.weekday() in self.quiet_weekdays:
            return "quiet weekday"
        if day in self.extra_quiet_dates:
            return "organization quiet date"
        return None

    def holiday(self, day: dt.date) -> str | None:
        if self.holiday_country is None:
            return None
        return _holidays(self.holiday_country, self.holiday_subdivision, day.year).get(day)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> OrgOverlay:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise OverlayError("unknown overlay settings: " + ", ".join(sorted(unknown)))
        try:
            kwargs: dict[str, Any] = {}
            for key in ("window_start", "window_end"):
                if key in data:
                    kwargs[key] = dt.time.fromisoformat(str(data[key]))
            if "quiet_weekdays" in data:
                kwargs["quiet_weekdays"] = frozenset(
                    _WEEKDAYS[str(d).lower()[:3]] if isinstance(d, str) else int(d)
                    for d in data["quiet_weekdays"])
            if "extra_quiet_dates" in data:
                kwargs["extra_quiet_dates"] = frozenset(
                    dt.date.fromisoformat(str(d)) for d in data["extra_quiet_dates"])
            for key in ("holiday_country", "holiday_subdivision"):
                if data.get(key) is not None:
                    kwargs[key] = str(data[key])
            for key in ("max_calls_per_7_days", "max_contacts_per_7_days"):
                if data.get(key) is not None:
                    kwargs[key] = int(data[key])
        except (KeyError, ValueError, TypeError) as exc:
            raise OverlayError(f"malformed overlay: {exc}") from None
        return cls(**kwargs)


@functools.lru_cache(maxsize=64)
def _holidays(country: str, subdivision: str | None, year: int) -> dict[dt.date, str]:
    import holidays

    try:
        cal = holidays.country_holidays(country, subdiv=subdivision, years=year)
    except NotImplementedError as exc:
        raise OverlayError(f"unknown holiday calendar: {country}/{subdivision}") from exc
    return dict(cal.items())
