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


@lru_cache(maxsize=4096)
def phone_time_zones(e164: str) -> tuple[str, ...]:
    """Every IANA zone of the number's area code (empty when unknown)."""
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


@lru_cache(maxsize=65536)
def _zip_record(zip5: str) -> dict[str, object] | None:
    try:
        found = zipcodes.matching(zip5)  # type: ignore[no-untyped-call]
    except (TypeError, ValueError):
        return None
    return found[0] if found else None


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
