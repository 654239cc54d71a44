"""Time-zone resolution (PLAT-TZ-RESOLVE) and local-window arithmetic (PLAT-TIME-BOUNDARY).

Offline only: ZIP → IANA zone through the bundled `zipcodes` data, area code → zone through
`phonenumbers.timezone`. Every conversion goes through `zoneinfo` (DST-aware); a fixed UTC
offset is never used for a zone.
"""

from __future__ import annotations

import datetime as dt
import functools
import zoneinfo

UTC = dt.UTC


@functools.lru_cache(maxsize=512)
def zone(name: str) -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(name)


@functools.lru_cache(maxsize=512)
def is_valid_zone(name: str) -> bool:
    if not name or ("/" not in name and name != "UTC"):
        return False
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return False
    return True


@functools.lru_cache(maxsize=65536)
def zip_zone(zip_code: str) -> str | None:
    """IANA zone of a US ZIP code, or None when unknown."""
    import zipcodes

    code = zip_code.strip()[:5]
    if len(code) != 5 or not code.isdigit():
        return None
    try:
        matches = zipcodes.matching(code)  # type: ignore[no-untyped-call]
    except (ValueError, TypeError):
        return None
    for match in matches:
        name = match.get("timezone")
        if isinstance(name, str) and is_valid_zone(name):
            return name
    return None


@functools.lru_cache(maxsize=65536)
def phone_zones(number: str) -> tuple[str, ...]:
    """IANA zones of a (NANP) phone number's area code; () when unknown."""
    import phonenumbers
    from phonenumbers import timezone as phone_tz

    try:
        parsed = phonenumbers.parse(number, "US")
    except phonenumbers.NumberParseException:
        return ()
    names = phone_tz.time_zones_for_number(parsed)
    return tuple(sorted(n for n in names if is_valid_zone(n)))


def local(instant: dt.datetime, zone_name: str) -> dt.datetime:
    return instant.astimezone(zone(zone_name))


def local_date(instant: dt.datetime, zone_name: str) -> dt.date:
    return instant.astimezone(zone(zone_name)).date()


def day_start(day: dt.date, zone_name: str) -> dt.datetime:
    """The first instant of a local calendar day (US transitions are at 02:00, never 00:00)."""
    return dt.datetime(day.year, day.month, day.day, tzinfo=zone(zone_name))


def at_local(day: dt.date, clock: dt.time, zone_name: str) -> dt.datetime:
    return dt.datetime.combine(day, clock, tzinfo=zone(zone_name))


def in_window(instant: dt.datetime, zone_name: str, start: dt.time, end: dt.time) -> bool:
    """Half-open local window [start, end) (PLAT-TIME-BOUNDARY)."""
    clock = instant.astimezone(zone(zone_name)).time()
    return start <= clock < end


def next_window_start(instant: dt.datetime, zone_name: str, start: dt.time,
                      end: dt.time) -> dt.datetime:
    """Earliest instant >= `instant` inside [start, end) local in `zone_name`."""
    loc = instant.astimezone(zone(zone_name))
    clock = loc.time()
    if start <= clock < end:
        return instant
    day = loc.date() if clock < start else loc.date() + dt.timedelta(days=1)
    return at_local(day, start, zone_name).astimezone(UTC)
