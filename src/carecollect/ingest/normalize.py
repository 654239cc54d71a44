"""Field normalization and validation for every import format.

Money becomes integer cents by string arithmetic (never through a float: 0.1 + 0.2 is
not 0.3 in binary floating point); phones become E.164 with line type where known and
every zone of their area code; ZIP codes give the address zone from the `zipcodes`
package's shipped data (no network at run time). Every error names the field and the
kind of problem, never the value.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers

from carecollect.errors import BadInput
from carecollect.ingest.errors import FieldError
from carecollect.kit.contact import (
    normalize_email,
    normalize_zip,
    phone_time_zones,
    zip_in_nyc,
    zip_state,
    zip_time_zone,
)
from carecollect.kit.crypto.blind import normalize_phone as fast_e164

MAX_CENTS = 100_000_000_00  # matches ledger_service.MAX_ENTRY_CENTS
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_MONEY = re.compile(r"^(\d{1,3}(?:,\d{3})+|\d+)?(?:\.(\d{1,2}))?$")
_LINE_TYPES = {
    phonenumbers.PhoneNumberType.MOBILE: "wireless",
    phonenumbers.PhoneNumberType.FIXED_LINE: "landline",
    phonenumbers.PhoneNumberType.VOIP: "voip",
}
LINE_TYPES = ("wireless", "landline", "voip")
_STATES = (
    "AL AK AZ AR CA CO CT DE DC FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS MO MT NE NV "
    "NH NJ NM NY NC ND OH OK OR PA RI SC SD TN TX UT VT VA WA WV WI WY PR VI GU AS MP"
)
US_STATES = frozenset(_STATES.split(" "))
_STATE_NAMES = {
    "alabama": "AL", "alaska": "AK", "arizona": "AZ", "arkansas": "AR", "california": "CA",
    "colorado": "CO", "connecticut": "CT", "delaware": "DE", "district of columbia": "DC",
    "florida": "FL", "georgia": "GA", "hawaii": "HI", "idaho": "ID", "illinois": "IL",
    "indiana": "IN", "iowa": "IA", "kansas": "KS", "kentucky": "KY", "louisiana": "LA",
    "maine": "ME", "maryland": "MD", "massachusetts": "MA", "michigan": "MI",
    "minnesota": "MN", "mississippi": "MS", "missouri": "MO", "montana": "MT",
    "nebraska": "NE", "nevada": "NV", "new hampshire": "NH", "new jersey": "NJ",
    "new mexico": "NM", "new york": "NY", "north carolina": "NC", "north dakota": "ND",
    "ohio": "OH", "oklahoma": "OK", "oregon": "OR", "pennsylvania": "PA",
    "rhode island": "RI", "south carolina": "SC", "south dakota": "SD", "tennessee": "TN",
    "texas": "TX", "utah": "UT", "vermont": "VT", "virginia": "VA", "washington": "WA",
    "west virginia": "WV", "wisconsin": "WI", "wyoming": "WY", "puerto rico": "PR",
}


def money_cents(raw: str, field: str, *, allow_negative: bool = False) -> int:
    """Integer cents from text such as ``1234.5``, ``$1,234.50`` or ``(12.00)``.

    Negative amounts are refused unless `allow_negative` (a ledger line's kind gives its
    direction; a negative charge is almost always an export error).
    """
    text = raw.strip().replace("$", "").replace(" ", "")
    negative = False
    if text.startswith("(") and text.endswith(")"):
        negative, text = True, text[1:-1]
    elif text.startswith("-"):
        negative, text = True, text[1:]
    elif text.startswith("+"):
        text = text[1:]
    match = _MONEY.fullmatch(text)
    if not text or match is None or (match.group(1) is None and match.group(2) is None):
        raise FieldError(field, "is not an amount of money")
    whole = int((match.group(1) or "0").replace(",", ""))
    cents = whole * 100 + int((match.group(2) or "0").ljust(2, "0"))
    if cents > MAX_CENTS:
        raise FieldError(field, "amount is implausibly large")
    if negative and cents:
        if not allow_negative:
            raise FieldError(field, "amount is negative")
        return -cents
    return cents


def parse_date(raw: str, field: str, formats: tuple[str, ...] = ("%Y-%m-%d",)) -> date:
    parsed = _parse_date(raw.strip(), formats)
    if parsed is None:
        raise FieldError(field, "is not a date in the mapped format")
    if not 1900 <= parsed.year <= 2100:
        raise FieldError(field, "date is out of range")
    return parsed


@lru_cache(maxsize=65_536)
def _parse_date(text: str, formats: tuple[str, ...]) -> date | None:
    """Cached: exports repeat dates (report date, posting dates) on row after row, and
    strptime is slow."""
    for fmt in formats:
        try:
            return datetime.strptime(text, fmt).date()  # noqa: DTZ007 - a calendar date
        except ValueError:
            continue
    return None


def parse_timestamp(raw: str, field: str) -> datetime:
    """An ISO 8601 instant; a bare date means midnight UTC."""
    text = raw.strip()
    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), time(0), tzinfo=UTC)
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise FieldError(field, "is not an ISO 8601 date or timestamp") from None
    if value.tzinfo is None:
        raise FieldError(field, "timestamp has no time zone")
    return value.astimezone(UTC)


def at_noon(day: date, zone: str) -> datetime:
    """A calendar date as an instant: noon in the practice's zone, so it stays that date."""
    try:
        tz = ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        tz = ZoneInfo("UTC")
    return datetime.combine(day, time(12), tzinfo=tz).astimezone(UTC)


@dataclass(frozen=True, slots=True)
class Phone:
    e164: str
    line_type: str | None
    zones: tuple[str, ...]


def phone(raw: str, field: str, line_type: str | None = None) -> Phone:
    """E.164, line type (the source's when given, else phonenumbers' when it knows: NANP
    numbers are usually FIXED_LINE_OR_MOBILE, i.e. unknown) and area-code zones."""
    try:
        e164 = fast_e164(raw)
    except BadInput:
        raise FieldError(field, "is not a phone number") from None
    if line_type is not None and line_type not in LINE_TYPES:
        raise FieldError(field, "line type is not wireless, landline or voip")
    checked = _check_number(e164[:8]) if e164.startswith("+1") and len(e164) == 12 else \
        _check_number(e164)
    if checked is None:
        raise FieldError(field, "is not a valid phone number")
    return Phone(e164, line_type or checked or None, phone_time_zones(e164))


_UNKNOWN = ""


@lru_cache(maxsize=200_000)
def _check_number(number_or_prefix: str) -> str | None:
    """Validity and line type of a number, or of a NANP NPA-NXX prefix (`+1NPANXX`).

    In the NANP, phonenumbers decides validity and type from the area code and exchange
    (the subscriber digits never matter), so a bulk import checks each exchange once.
    Returns None when invalid, "" when the type is unknown.
    """
    probe = number_or_prefix + "0100" if len(number_or_prefix) == 8 else number_or_prefix
    try:
        number = phonenumbers.parse(probe)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return _LINE_TYPES.get(phonenumbers.number_type(number), _UNKNOWN)


def email(raw: str, field: str) -> str:
    try:
        return normalize_email(raw)
    except BadInput:
        raise FieldError(field, "is not a valid e-mail address") from None


@dataclass(frozen=True, slots=True)
class Place:
    zip5: str
    zone: str | None
    state: str | None
    nyc: bool


def zip_place(raw: str, field: str) -> Place:
    try:
        zip5 = normalize_zip(raw)
    except BadInput:
        raise FieldError(field, "is not a 5- or 9-digit ZIP code") from None
    return Place(zip5, zip_time_zone(zip5), zip_state(zip5), zip_in_nyc(zip5))


def state_code(raw: str, field: str) -> str:
    text = raw.strip()
    code = text.upper() if len(text) == 2 else _STATE_NAMES.get(text.lower())
    if code is None or code not in US_STATES:
        raise FieldError(field, "is not a US state")
    return code


def text_field(raw: str | None, field: str, *, required: bool, max_length: int = 200) -> str | None:
    value = (raw or "").strip()
    if not value:
        if required:
            raise FieldError(field, "is required")
        return None
    if len(value) > max_length:
        raise FieldError(field, f"is longer than {max_length} characters")
    if _CONTROL.search(value):
        raise FieldError(field, "contains control characters")
    return value
