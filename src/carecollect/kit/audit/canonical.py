"""Canonical bytes of an audit event (version 1).

The leaf hash of an event is computed over these bytes, so they must be deterministic
across processes, databases and years (ARCHITECTURE.md section 5). Version 1 is a compact
JSON object whose keys appear in sorted order::

    {"action":..,"actor_id":..,"actor_type":..,"details":{..},"id":..,
     "organization_id":..|null,"outcome":..,"patient_id":..|null,"recorded_at":"YYYY-MM-DDTHH:MM:SS.ffffffZ",
     "seq":N,"subject_id":..|null,"subject_type":..|null,"v":1}

Strings are JSON-escaped with ASCII output (`\\uXXXX` for anything else); `details` is
itself canonical JSON (sorted keys, `,` and `:` separators, ASCII, no floats), and is
stored in that form by `record()`, so the verifier splices the stored text in verbatim.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from json.encoder import encode_basestring_ascii  # type: ignore[attr-defined]
from typing import Any

CANONICAL_VERSION = 1
MAX_DETAILS_BYTES = 4096
MAX_DETAIL_STRING = 256
MAX_DETAIL_DEPTH = 4

_encode: Any = encode_basestring_ascii


@dataclass(frozen=True, slots=True)
class EventFields:
    """The hashed fields of one audit event, as text (ids and timestamps pre-rendered)."""

    id: str
    recorded_at: str
    organization_id: str | None
    actor_type: str
    actor_id: str
    action: str
    subject_type: str | None
    subject_id: str | None
    patient_id: str | None
    outcome: str
    details: str


def timestamp_text(value: datetime | str) -> str:
    """Render a UTC instant as `YYYY-MM-DDTHH:MM:SS.ffffffZ` (always microseconds).

    Accepts an aware datetime or SQLite's stored text `YYYY-MM-DD HH:MM:SS.ffffff` (which
    SQLAlchemy always writes in UTC with six fractional digits).
    """
    if isinstance(value, str):
        if len(value) == 26 and value[10] in " T":
            return f"{value[:10]}T{value[11:]}Z"
        value = datetime.fromisoformat(value)
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
    if value.tzinfo is None:
        raise ValueError("naive datetime refused in canonical bytes")
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def uuid_text(value: uuid.UUID | str | None) -> str | None:
    """Hyphenated lower-case UUID text; SQLite stores 32 hex digits without hyphens."""
    if value is None:
        return None
    if isinstance(value, uuid.UUID):
        return str(value)
    if len(value) == 32:
        return f"{value[:8]}-{value[8:12]}-{value[12:16]}-{value[16:20]}-{value[20:]}".lower()
    return str(uuid.UUID(value))


def _opt(value: str | None) -> str:
    return "null" if value is None else _encode(value)  # type: ignore[no-any-return]


def canonical_bytes(event: EventFields, seq: int) -> bytes:
    """The version-1 canonical bytes of `event` at log position `seq`."""
    return (
        '{"action":' + _encode(event.action)
        + ',"actor_id":' + _encode(event.actor_id)
        + ',"actor_type":' + _encode(event.actor_type)
        + ',"details":' + event.details
        + ',"id":' + _encode(event.id)
        + ',"organization_id":' + _opt(event.organization_id)
        + ',"outcome":' + _encode(event.outcome)
        + ',"patient_id":' + _opt(event.patient_id)
        + ',"recorded_at":' + _encode(event.recorded_at)
        + ',"seq":' + str(seq)
        + ',"subject_id":' + _opt(event.subject_id)
        + ',"subject_type":' + _opt(event.subject_type)
        + ',"v":1}'
    ).encode("ascii")


def _check_value(value: Any, depth: int) -> None:
    if value is None or isinstance(value, bool | int):
        return
    if isinstance(value, str):
        if len(value) > MAX_DETAIL_STRING:
            raise ValueError(f"audit detail strings are limited to {MAX_DETAIL_STRING} chars")
        return
    if isinstance(value, float):
        # Float text differs between languages; an outside verifier must reproduce the
        # bytes exactly, so details hold integers (counts, cents) only.
        raise ValueError("audit details may not contain floats; use integers")
    if depth >= MAX_DETAIL_DEPTH:
        raise ValueError(f"audit details nest at most {MAX_DETAIL_DEPTH} levels")
    if isinstance(value, list | tuple):
        for item in value:
            _check_value(item, depth + 1)
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValueError("audit detail keys must be strings")
            _check_value(item, depth + 1)
        return
    raise ValueError(f"audit details must be JSON values, not {type(value).__name__}")


def canonical_details(details: dict[str, Any] | None) -> str:
    """Validate `details` and return its canonical JSON text.

    Raises ValueError for anything that is not plain JSON (objects, arrays, strings,
    integers, booleans, null), for floats, and for more than MAX_DETAILS_BYTES.
    """
    if details is None:
        return "{}"
    if not isinstance(details, dict):
        raise ValueError("audit details must be a JSON object")
    _check_value(details, 0)
    text = json.dumps(details, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    if len(text) > MAX_DETAILS_BYTES:
        raise ValueError(f"audit details exceed {MAX_DETAILS_BYTES} bytes")
    return text
