"""Recording audit events and reading them back.

`record()` is the one function every domain calls: it inserts one `audit_event` row into
the caller's transaction (no commit, CONVENTIONS.md rule 4), so the event exists exactly
when the change it describes exists. Sequence numbers and hashes are assigned later by
the integrator (`carecollect.audit.integrator`).
"""

from __future__ import annotations

import json
import os
import random
import re
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from functools import wraps
from json import encoder as _json_encoder
from typing import Any, Concatenate, NamedTuple, ParamSpec, TypeVar

from sqlalchemy import Connection
from sqlalchemy.orm import Session, SessionTransaction

from carecollect.audit.repository import audit_repository
from carecollect.audit.schemas import ACTOR_TYPES, OUTCOMES, AccessLogEntry, Actor, Subject
from carecollect.audit.vocabulary import is_valid_action
from carecollect.kit.audit.canonical import (
    MAX_DETAIL_DEPTH,
    MAX_DETAIL_STRING,
    MAX_DETAILS_BYTES,
    timestamp_text,
)

# Keys that would carry PHI values rather than ids, names of fields or counts. Details
# say *which* fields changed, never *what* they contain (HIPAA minimum necessary,
# 45 CFR 164.502(b)); the audit trail must itself stay free of PHI (PRODUCT.md).
FORBIDDEN_DETAIL_KEYS = frozenset(
    {
        "name", "first_name", "last_name", "full_name", "dob", "date_of_birth",
        "birth_date", "ssn", "phone", "phone_number", "email", "address", "street",
        "city", "zip", "postal_code", "mrn", "diagnosis", "value", "values", "old_value",
        "new_value", "old", "new", "password", "token", "secret", "card_number", "body",
    }
)

# Identifiers only (UUIDs, slugs, job and provider names): no spaces, quotes, control
# characters or '@', so no name or e-mail address can be smuggled in as an id, and the
# canonical bytes need no escaping (see integrator.canonical_sql). Always used with
# fullmatch(): `$` would also accept a trailing newline.
SAFE_TEXT = re.compile(r"[A-Za-z0-9._:/=+-]{1,128}")

# The body around the details (ids, actor, action, subject) is at most ~700 bytes.
MAX_BODY_BYTES = MAX_DETAILS_BYTES + 1024

# PostgreSQL: recording transactions hold this advisory lock in shared mode until they
# end; the integrator takes it exclusively for an instant to learn the highest ordinal
# below which every event is committed (identity values are handed out before commit, so
# commit order can differ from ordinal order). See integrator.safe_frontier().
RECORDING_LOCK_KEY = 0x6361_7265_6175_6401  # "careaud\x01"
_LOCKED_TX_KEY = "carecollect.audit.shared_lock_tx"

# Caches of what has been validated once (record() runs in every audited request; the
# same few actors, actions, subject types and detail keys recur). Each is bounded: when
# one is full it is emptied and fills again with what is in use now.
_CACHE_LIMIT = 4096
# (action, actor) -> the body's canonical text up to the details:
# `{"action":..,"actor_id":..,"actor_type":..,"details":`
_body_prefixes: dict[tuple[str, Actor], str] = {}
_subject_types: set[str] = set()
_detail_keys: set[str] = set()
_org_texts: dict[uuid.UUID, str] = {}


def _no_default(value: Any) -> Any:
    # Never reached for validated details; refuses anything the JSON encoder cannot write.
    raise ValueError(f"audit details must be JSON values, not {type(value).__name__}")


_c_make_encoder = getattr(_json_encoder, "c_make_encoder", None)
if _c_make_encoder is not None:
    # One C encoder for every call (json.dumps with sort_keys builds a new JSONEncoder and
    # C encoder per call). No circular-reference bookkeeping: validation bounds nesting
    # first. Same text as json.dumps(sort_keys=True, separators=(",", ":"),
    # ensure_ascii=True), which tests check.
    _iterencode = _c_make_encoder(
        None, _no_default, _json_encoder.encode_basestring_ascii, None, ":", ",",
        True, False, True,
    )

    def _details_json(details: dict[str, Any]) -> str:
        return "".join(_iterencode(details, 0))

else:  # pragma: no cover - interpreters without the C accelerator
    _encoder = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=True)

    def _details_json(details: dict[str, Any]) -> str:
        return _encoder.encode(details)


def _check_key(key: Any) -> None:
    if not isinstance(key, str):
        raise ValueError("audit detail keys must be strings")
    if key.lower() in FORBIDDEN_DETAIL_KEYS:
        raise ValueError(f"audit detail key {key!r} would hold PHI; record field names")
    if len(_detail_keys) >= _CACHE_LIMIT:
        _detail_keys.clear()
    _detail_keys.add(key)


def _check_details(value: Any, depth: int) -> None:
    """One walk over `details`: plain JSON only (no floats: an outside verifier must
    reproduce the bytes exactly), bounded strings and depth, and no PHI-named keys.
    Strings, integers, booleans and null inside a container are checked in the loop
    (no call per value); containers and anything unusual recurse."""
    if value is None or isinstance(value, bool | int):
        return
    if isinstance(value, str):
        if len(value) > MAX_DETAIL_STRING:
            raise ValueError(f"audit detail strings are limited to {MAX_DETAIL_STRING} chars")
        return
    if isinstance(value, float):
        raise ValueError("audit details may not contain floats; use integers")
    if depth >= MAX_DETAIL_DEPTH:
        raise ValueError(f"audit details nest at most {MAX_DETAIL_DEPTH} levels")
    if isinstance(value, list | tuple):
        for item in value:
            kind = type(item)
            if kind is str:
                if len(item) > MAX_DETAIL_STRING:
                    raise ValueError(
                        f"audit detail strings are limited to {MAX_DETAIL_STRING} chars"
                    )
            elif not (kind is int or kind is bool or item is None):
                _check_details(item, depth + 1)
        return
    if not isinstance(value, dict):
        raise ValueError(f"audit details must be JSON values, not {type(value).__name__}")
    for key, item in value.items():
        if key not in _detail_keys:
            _check_key(key)
        kind = type(item)
        if kind is str:
            if len(item) > MAX_DETAIL_STRING:
                raise ValueError(f"audit detail strings are limited to {MAX_DETAIL_STRING} chars")
        elif not (kind is int or kind is bool or item is None):
            _check_details(item, depth + 1)


_second_cache: tuple[int, str] = (-1, "")
_id_random = random.Random(int.from_bytes(os.urandom(16), "big"))  # noqa: S311
_id_lock = threading.Lock()
_id_last = [0, 0]  # last millisecond, counter
_id_prefix: tuple[int, str] = (-1, "")  # a millisecond and its text `xxxxxxxx-xxxx-7`
_new_object = object.__new__
_set_slot = object.__setattr__
_UUID_SAFE_UNKNOWN = uuid.SafeUUID.unknown


def _timestamp_from_ns(ns: int) -> str:
    """`YYYY-MM-DDTHH:MM:SS.ffffffZ` for a Unix time in nanoseconds, reusing the rendered
    second (rendering a datetime is the costliest step of recording an event)."""
    global _second_cache
    seconds, rest = divmod(ns, 1_000_000_000)
    cached_second, prefix = _second_cache
    if cached_second != seconds:
        prefix = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        _second_cache = (seconds, prefix)
    return f"{prefix}.{rest // 1000:06d}Z"


def _event_id(ns: int) -> tuple[uuid.UUID, str]:
    """A UUIDv7 (RFC 9562) from the recording instant, and its text: 48-bit milliseconds,
    a 12-bit counter that keeps ids of one process ordered within a millisecond, 62 random
    bits. Event ids need uniqueness, not secrecy (they are never credentials), so the
    random part comes from a seeded PRNG instead of a system call per event."""
    global _id_prefix
    ms = ns // 1_000_000
    with _id_lock:
        if ms <= _id_last[0]:
            ms = _id_last[0]
            _id_last[1] += 1
            if _id_last[1] > 0xFFF:
                ms += 1
                _id_last[0], _id_last[1] = ms, 0
        else:
            _id_last[0], _id_last[1] = ms, 0
        counter = _id_last[1]
        rand = _id_random.getrandbits(62)
        prefix_ms, prefix = _id_prefix
        if prefix_ms != ms:
            hex_ms = f"{ms:012x}"
            prefix = f"{hex_ms[:8]}-{hex_ms[8:]}-7"
            _id_prefix = (ms, prefix)
    low = 0x8000_0000_0000_0000 | rand  # variant 0b10, then the random bits
    # uuid.UUID(int=...) re-checks the range and str() formats all 128 bits again; the
    # value is in range by construction, so the object is filled in directly (as
    # UUID.__setstate__ does) and the text reuses the millisecond's rendering.
    event_id = _new_object(uuid.UUID)
    _set_slot(event_id, "int", (((ms << 16) | 0x7000 | counter) << 64) | low)
    _set_slot(event_id, "is_safe", _UUID_SAFE_UNKNOWN)
    hex_low = f"{low:016x}"
    return event_id, f"{prefix}{counter:03x}-{hex_low[:4]}-{hex_low[4:]}"


def _org_text(organization_id: uuid.UUID) -> str:
    text = _org_texts.get(organization_id)
    if text is None:
        text = str(organization_id)
        if len(_org_texts) >= _CACHE_LIMIT:
            _org_texts.clear()
        _org_texts[organization_id] = text
    return text


def _body_prefix(actor: Actor, action: str) -> str:
    """Validate the actor and the action; their part of the canonical body."""
    # Checked at run time too: callers outside typed code must not slip a string in.
    given: object = actor
    if not isinstance(given, Actor) or actor.type not in ACTOR_TYPES:
        raise ValueError("actor must be an audit Actor (staff, patient, api_key, system, webhook)")
    if not SAFE_TEXT.fullmatch(actor.id):
        raise ValueError("actor id must be 1 to 128 identifier characters (A-Z a-z 0-9 ._:/=+-)")
    if not is_valid_action(action):
        raise ValueError("action must be a dotted lower-case verb such as 'patient.read'")
    prefix = (
        f'{{"action":"{action}","actor_id":"{actor.id}","actor_type":"{actor.type}",'
        '"details":'
    )
    if len(_body_prefixes) >= _CACHE_LIMIT:
        _body_prefixes.clear()
    _body_prefixes[(action, actor)] = prefix
    return prefix


def _hold_recording_lock(
    session: Session, connection: Connection, current: SessionTransaction | None
) -> None:
    """PostgreSQL: take RECORDING_LOCK_KEY shared for the rest of the transaction, before
    the insert draws its ordinal, unless this transaction already holds it.

    A lock taken inside a savepoint is released when that savepoint is rolled back, so
    the lock counts as held only if it was taken in the current (innermost) transaction
    or in one of its enclosing ones; after a rolled-back savepoint it is taken again."""
    held_ref = session.info.get(_LOCKED_TX_KEY)
    held = None if held_ref is None else held_ref()
    level = current
    while held is not None and level is not None:
        if level is held:
            return
        level = level.parent
    connection.exec_driver_sql(
        "SELECT pg_advisory_xact_lock_shared(%(k)s)", {"k": RECORDING_LOCK_KEY}
    )
    # Weak references: session.info must not keep the transaction (which refers back to
    # the session) alive, or every recording session would end in a reference cycle.
    session.info[_LOCKED_TX_KEY] = None if current is None else weakref.ref(current)


def _recording_target(session: Session) -> tuple[Any, str]:
    """The driver connection of the session's transaction and the event INSERT, with the
    recording lock held (PostgreSQL). `session.connection()` begins the transaction if
    needed and refuses one that a failed flush has deactivated."""
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        _hold_recording_lock(
            session, connection, session.get_nested_transaction() or session.get_transaction()
        )
    return audit_repository.insert_target(connection)


def build_event_row(
    *,
    actor: Actor,
    action: str,
    subject: Subject | None,
    outcome: str,
    details: dict[str, Any] | None,
    organization_id: uuid.UUID | None,
    recorded_at: datetime | None = None,
) -> tuple[uuid.UUID, tuple[str, str | None, str | None, str]]:
    """Validate one event; return its id and its `audit_event` values
    (recorded_at, organization_id, patient_id, body).

    The body is the canonical JSON of `kit.audit.canonical.event_body` (tests check the
    two agree), written from pieces: the validated actor and action's part is cached."""
    return _build(actor, action, subject, outcome, details, organization_id, recorded_at)


def _build(
    actor: Actor,
    action: str,
    subject: Subject | None,
    outcome: str,
    details: dict[str, Any] | None,
    organization_id: uuid.UUID | None,
    recorded_at: datetime | None,
) -> tuple[uuid.UUID, tuple[str, str | None, str | None, str]]:
    """`build_event_row` with positional arguments (record()'s path)."""
    # Checked at run time too (callers outside typed code): a plain tuple equal to a
    # cached Actor must not pass for one, so the type is checked before the cache.
    given: object = actor
    prefix = _body_prefixes.get((action, actor)) if isinstance(given, Actor) else None
    if prefix is None:
        prefix = _body_prefix(actor, action)
    if outcome not in OUTCOMES:
        raise ValueError("outcome must be 'success', 'failure' or 'denied'")
    if not details:
        if details is not None and not isinstance(details, dict):
            raise ValueError("audit details must be a JSON object")
        details_text = "{}"
    elif not isinstance(details, dict):
        raise ValueError("audit details must be a JSON object")
    else:
        _check_details(details, 0)
        details_text = _details_json(details)
    if subject is None:
        patient_id = None
        subject_text = '"subject_id":null,"subject_type":null}'
    else:
        subject_type, given_id, subject_org, given_patient = subject
        if subject_type not in _subject_types:
            given_type: object = subject_type
            if not isinstance(given_type, str) or not SAFE_TEXT.fullmatch(subject_type) or (
                len(subject_type) > 64
            ):
                raise ValueError("subject type must be 1 to 64 identifier characters")
            if len(_subject_types) >= _CACHE_LIMIT:
                _subject_types.clear()
            _subject_types.add(subject_type)
        # str(UUID) is always identifier text; only other ids need the pattern.
        if given_id is None:
            subject_id = None
            subject_text = f'"subject_id":null,"subject_type":"{subject_type}"}}'
        else:
            subject_id = str(given_id)
            if not isinstance(given_id, uuid.UUID) and not SAFE_TEXT.fullmatch(subject_id):
                raise ValueError("subject ids must be 1 to 128 identifier characters")
            subject_text = f'"subject_id":"{subject_id}","subject_type":"{subject_type}"}}'
        if given_patient is not None:
            patient_id = str(given_patient)
            if not isinstance(given_patient, uuid.UUID) and not SAFE_TEXT.fullmatch(patient_id):
                raise ValueError("subject ids must be 1 to 128 identifier characters")
        elif subject_type == "patient":
            patient_id = subject_id
        else:
            patient_id = None
        if subject_org is not None:
            if organization_id is not None and organization_id != subject_org:
                raise ValueError("subject organization differs from the session organization")
            organization_id = subject_org
    if recorded_at is None:
        now_ns = time.time_ns()
        recorded_text = _timestamp_from_ns(now_ns)
    else:
        now_ns = int(recorded_at.timestamp() * 1_000_000) * 1000
        recorded_text = timestamp_text(recorded_at)
    event_id, id_text = _event_id(now_ns)
    body = f'{prefix}{details_text},"id":"{id_text}","outcome":"{outcome}",{subject_text}'
    if len(body) > MAX_BODY_BYTES:
        raise ValueError(f"audit details exceed {MAX_DETAILS_BYTES} bytes")
    org_text = None if organization_id is None else _org_text(organization_id)
    return event_id, (recorded_text, org_text, patient_id, body)


def record(
    session: Session,
    *,
    actor: Actor,
    action: str,
    subject: Subject | None = None,
    outcome: str = "success",
    details: dict[str, Any] | None = None,
) -> uuid.UUID:
    """Record one audit event in the caller's transaction and return its event id.

    Nothing is committed here: the event becomes durable with the change it describes and
    disappears with it on rollback. `details` holds ids, field names, counts and reasons,
    never PHI values; non-JSON values, floats, PHI-named keys or more than 4 KiB raise
    ValueError.
    """
    event_id, values = _build(
        actor, action, subject, outcome, details, session.info.get("organization_id"), None
    )
    driver, sql = _recording_target(session)
    audit_repository.insert_event(driver, sql, values)
    return event_id


class PendingEvent(NamedTuple):
    """One event for `record_many` (the arguments of `record`)."""

    actor: Actor
    action: str
    subject: Subject | None = None
    outcome: str = "success"
    details: dict[str, Any] | None = None


def record_many(session: Session, events: Sequence[PendingEvent]) -> list[uuid.UUID]:
    """`record` for many events in one statement (a batch job's events: one round trip
    instead of one per event). Every event is validated before any is inserted; same
    transaction rules as `record`."""
    organization_id = session.info.get("organization_id")
    built = [
        build_event_row(actor=e.actor, action=e.action, subject=e.subject, outcome=e.outcome,
                        details=e.details, organization_id=organization_id)
        for e in events
    ]
    if built:
        driver, sql = _recording_target(session)
        audit_repository.insert_events(driver, sql, [values for _, values in built])
    return [event_id for event_id, _ in built]


def access_log(
    session: Session,
    organization_id: uuid.UUID,
    patient_id: uuid.UUID | str,
    *,
    limit: int = 500,
) -> list[AccessLogEntry]:
    """Who viewed or changed this patient's records, when and why; newest first.

    Serves the staff "access log" screen now and the patient's own "who viewed my
    account" page later (HIPAA 45 CFR 164.528 accounting of disclosures). Scoped to the
    organization; the caller records its own `audit.access_log` event.
    """
    rows = audit_repository.access_log(
        session, organization_id=str(organization_id), patient_id=str(patient_id), limit=limit
    )
    entries = []
    for row in rows:
        body = json.loads(row.body)
        entries.append(
            AccessLogEntry(
                recorded_at=datetime.fromisoformat(row.recorded_at),
                actor_type=body["actor_type"],
                actor_id=body["actor_id"],
                action=body["action"],
                outcome=body["outcome"],
                subject_type=body["subject_type"],
                subject_id=body["subject_id"],
                patient_id=row.patient_id,
                details=body["details"],
                event_id=uuid.UUID(body["id"]),
                seq=row.seq,
            )
        )
    return entries


P = ParamSpec("P")
R = TypeVar("R")


def audited_read(
    action: str, subject_of: Callable[[Any], Subject | None]
) -> Callable[
    [Callable[Concatenate[Any, Session, P], R]],
    Callable[Concatenate[Any, Session, Actor, P], R],
]:
    """Decorate a repository method that reads PHI so that it needs an actor.

    The decorated method is called as `repo.method(session, actor, ...)`: forgetting the
    actor is a TypeError, and after a successful read the event `action` is recorded in
    the same transaction with the subject `subject_of(result)` (e.g. the patient row).
    Reads that return nothing record nothing.
    """

    def decorate(
        method: Callable[Concatenate[Any, Session, P], R],
    ) -> Callable[Concatenate[Any, Session, Actor, P], R]:
        @wraps(method)
        def wrapper(
            self: Any, session: Session, actor: Actor, /, *args: P.args, **kwargs: P.kwargs
        ) -> R:
            if not isinstance(actor, Actor):
                raise TypeError("a PHI read needs an audit Actor as its second argument")
            result = method(self, session, *args, **kwargs)
            subject = subject_of(result)
            if subject is not None:
                record(session, actor=actor, action=action, subject=subject)
            return result

        return wrapper

    return decorate
