"""Normalization of contact data and the offline time-zone lookups it feeds.

Phones become E.164 (`phonenumbers`), with every IANA zone of the area code; ZIP codes map
to the IANA zone of the address (`zipcodes`, shipped data, no network at run time).
"""

from __future__ import annotations

import re
from functools import lru_cache

import phonenumbers
import zipcodes
from phonenumbers import timezone as phone_timezone

from carecollect.errors import BadInput

_EMAIL_RE = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")
_ZIP_RE = re.compile(r"^(\d{5})(?:-?\d{4})?$")
_NYC_COUNTIES = {
    "New York County",
    "Kings County",
    "Queens County",
    "Bronx County",
    "Richmond County",
}


def normalize_phone(raw: str, region: str = "US") -> str:
    """E.164 form of a phone number; BadInput (naming no digits) when it is not one."""
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        raise BadInput("phone number is not parseable") from None
    if not phonenumbers.is_valid_number(number):
        raise BadInput("phone number is not a valid number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def phone_time_zones(e164: str) -> tuple[str, ...]:
    """Every IANA zone of the number's area code (empty when unknown).

    phonenumbers keys its zone data by country code plus at most six national digits
    (NPA-NXX in the NANP), so numbers sharing their first seven digits share their zones:
    the lookup is cached on that prefix, which keeps bulk imports fast.
    """
    prefix = e164[:8]
    zones = _PHONE_ZONES.get(prefix)
    if zones is None:
        zones = _phone_time_zones(e164)
        if len(_PHONE_ZONES) < 200_000:
            _PHONE_ZONES[prefix] = zones
    return zones


_PHONE_ZONES: dict[str, tuple[str, ...]] = {}


def _phone_time_zones(e164: str) -> tuple[str, ...]:
    try:
        number = phonenumbers.parse(e164)
    except phonenumbers.NumberParseException:
        return ()
    zones = tuple(z for z in phone_timezone.time_zones_for_number(number) if "/" in z)
    return tuple(sorted(set(zones)))


def normalize_email(raw: str) -> str:
    value = raw.strip().lower()
    if len(value) > 254 or not _EMAIL_RE.match(value):
        raise BadInput("e-mail address is not valid")
    return value


def normalize_zip(raw: str) -> str:
    match = _ZIP_RE.match(raw.strip())
    if not match:
        raise BadInput("ZIP code is not a 5- or 9-digit US ZIP code")
    return match.group(1)


@lru_cache(maxsize=1)
def _zip_table() -> dict[str, dict[str, object]]:
    """Every US ZIP code from the `zipcodes` package's shipped data, indexed once.

    `zipcodes.matching` scans the whole list on every call (over 100 ms); one pass to build
    a dictionary makes each later lookup a hash probe.
    """
    table: dict[str, dict[str, object]] = {}
    for record in zipcodes.list_all():  # type: ignore[no-untyped-call]
        table.setdefault(str(record["zip_code"]), record)
    return table


def _zip_record(zip5: str) -> dict[str, object] | None:
    return _zip_table().get(zip5)


def zip_time_zone(zip5: str) -> str | None:
    record = _zip_record(zip5)
    zone = record.get("timezone") if record else None
    return zone if isinstance(zone, str) and zone else None


def zip_state(zip5: str) -> str | None:
    record = _zip_record(zip5)
    state = record.get("state") if record else None
    return state if isinstance(state, str) else None


def zip_in_nyc(zip5: str) -> bool:
    """True when the ZIP lies in one of New York City's five boroughs (counties)."""
    record = _zip_record(zip5)
    if record is None or record.get("state") != "NY":
        return False
    return str(record.get("county")) in _NYC_COUNTIES


def warm_lookups() -> None:
    """Build the lookup tables now (before forking workers, so they share them)."""
    _zip_table()
