"""Canonical bytes of an audit event (version 1).

The leaf hash of an event is computed over these bytes, so they must be deterministic
across processes, databases and years (ARCHITECTURE.md section 5). Version 1 is a compact
JSON object with sorted keys, ASCII only::

    {"event":{"action":..,"actor_id":..,"actor_type":..,"details":{..},"id":..,
              "outcome":..,"subject_id":..|null,"subject_type":..|null},
     "organization_id":..|null,"patient_id":..|null,
     "recorded_at":"YYYY-MM-DDTHH:MM:SS.ffffffZ","seq":N,"v":1}

`event` (the *body*) is itself canonical JSON (sorted keys, `,` and `:` separators,
ASCII with `\\uXXXX` escapes, integers only) and is stored verbatim by `record()`. The
three keys the database queries by (organization, patient, time) are stored as their own
columns and enter the bytes directly, so no field is stored twice and none can be
changed without changing the hash. Those three values are identifier text (no quotes
or backslashes), so they need no escaping.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

CANONICAL_VERSION = 1
MAX_DETAILS_BYTES = 4096
MAX_DETAIL_STRING = 256
MAX_DETAIL_DEPTH = 4


def timestamp_text(value: datetime) -> str:
    """Render an aware instant as `YYYY-MM-DDTHH:MM:SS.ffffffZ` (UTC, microseconds)."""
    if value.tzinfo is None:
        raise ValueError("naive datetime refused in canonical bytes")
    if value.utcoffset():
        value = value.astimezone(UTC)
    # isoformat() is several times faster than strftime() on this hot path.
    return value.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def _quoted(value: str | None) -> str:
    return "null" if value is None else f'"{value}"'


def canonical_bytes(
    body: str, organization_id: str | None, patient_id: str | None, recorded_at: str, seq: int
) -> bytes:
    """The version-1 canonical bytes of an event at log position `seq`."""
    return (
        f'{{"event":{body},"organization_id":{_quoted(organization_id)},'
        f'"patient_id":{_quoted(patient_id)},"recorded_at":"{recorded_at}",'
        f'"seq":{seq},"v":1}}'
    ).encode()


def event_body(
    *,
    event_id: uuid.UUID,
    action: str,
    actor_type: str,
    actor_id: str,
    subject_type: str | None,
    subject_id: str | None,
    outcome: str,
    details: dict[str, Any],
) -> str:
    """The canonical JSON body of an event.

    The text fields are identifier text (checked by `record()`: no quotes, backslashes or
    non-ASCII), so they are written without an encoder; `details` goes through
    json.dumps with sorted keys. Equal to json.dumps of the whole object with sort_keys,
    compact separators and ensure_ascii (tests check this).
    """
    details_text = (
        json.dumps(details, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
        if details else "{}"
    )
    return (
        f'{{"action":"{action}","actor_id":"{actor_id}","actor_type":"{actor_type}",'
        f'"details":{details_text},"id":"{event_id}","outcome":"{outcome}",'
        f'"subject_id":{_quoted(subject_id)},"subject_type":{_quoted(subject_type)}}}'
    )


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
    """Validate `details` and return its canonical JSON text (for size checks).

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
