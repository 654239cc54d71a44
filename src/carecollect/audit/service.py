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
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from functools import wraps
from typing import Any, Concatenate, NamedTuple, ParamSpec, TypeVar

from sqlalchemy import text
from sqlalchemy.orm import Session

from carecollect.audit.repository import audit_repository
from carecollect.audit.schemas import ACTOR_TYPES, OUTCOMES, AccessLogEntry, Actor, Subject
from carecollect.audit.vocabulary import is_valid_action
from carecollect.kit.audit.canonical import (
    MAX_DETAIL_DEPTH,
    MAX_DETAIL_STRING,
    MAX_DETAILS_BYTES,
    event_body,
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

# Identifiers only (UUIDs, slugs, job and provider names): no spaces, quotes or '@', so
# no name or e-mail address can be smuggled in as an id, and the canonical bytes need no
# escaping (see integrator.canonical_sql).
SAFE_TEXT = re.compile(r"^[A-Za-z0-9._:/=+-]{1,128}$")

# The body around the details (ids, actor, action, subject) is at most ~700 bytes.
MAX_BODY_BYTES = MAX_DETAILS_BYTES + 1024

# PostgreSQL: recording transactions hold this advisory lock in shared mode until they
# end; the integrator takes it exclusively for an instant to learn the highest ordinal
# below which every event is committed (identity values are handed out before commit, so
# commit order can differ from ordinal order). See integrator.safe_frontier().
RECORDING_LOCK_KEY = 0x6361_7265_6175_6401  # "careaud\x01"
_LOCKED_TX_KEY = "carecollect.audit.shared_lock_tx"


def _check_details(value: Any, depth: int) -> None:
    """One walk over `details`: plain JSON only (no floats: an outside verifier must
    reproduce the bytes exactly), bounded strings and depth, and no PHI-named keys."""
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
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValueError("audit detail keys must be strings")
            if key.lower() in FORBIDDEN_DETAIL_KEYS:
                raise ValueError(f"audit detail key {key!r} would hold PHI; record field names")
            _check_details(item, depth + 1)
        return
    if isinstance(value, list | tuple):
        for item in value:
            _check_details(item, depth + 1)
        return
    raise ValueError(f"audit details must be JSON values, not {type(value).__name__}")


_second_cache: tuple[int, str] = (-1, "")
_id_random = random.Random(int.from_bytes(os.urandom(16), "big"))  # noqa: S311
_id_lock = threading.Lock()
_id_last = [0, 0]  # last millisecond, counter


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


def _event_id(ns: int) -> uuid.UUID:
    """A UUIDv7 (RFC 9562) from the recording instant: 48-bit milliseconds, a 12-bit
    counter that keeps ids of one process ordered within a millisecond, 62 random bits.
    Event ids need uniqueness, not secrecy (they are never credentials), so the random
    part comes from a seeded PRNG instead of a system call per event."""
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
    return uuid.UUID(int=(ms << 80) | (0x7 << 76) | (counter << 64) | (0b10 << 62) | rand)


def _hold_recording_lock(session: Session) -> None:
    bind = session.get_bind()
    if bind.dialect.name != "postgresql":
        return
    transaction = session.get_transaction()
    if transaction is not None and session.info.get(_LOCKED_TX_KEY) is transaction:
        return
    session.execute(text("SELECT pg_advisory_xact_lock_shared(:k)"), {"k": RECORDING_LOCK_KEY})
    session.info[_LOCKED_TX_KEY] = session.get_transaction()


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
    (recorded_at, organization_id, patient_id, body)."""
    # Checked at run time too: callers outside typed code must not slip a string in.
    given: object = actor
    if not isinstance(given, Actor) or actor.type not in ACTOR_TYPES:
        raise ValueError("actor must be an audit Actor (staff, patient, api_key, system, webhook)")
    if not SAFE_TEXT.match(actor.id):
        raise ValueError("actor id must be 1 to 128 identifier characters (A-Z a-z 0-9 ._:/=+-)")
    if not is_valid_action(action):
        raise ValueError("action must be a dotted lower-case verb such as 'patient.read'")
    if outcome not in OUTCOMES:
        raise ValueError("outcome must be 'success', 'failure' or 'denied'")
    if details is None:
        details = {}
    elif not isinstance(details, dict):
        raise ValueError("audit details must be a JSON object")
    else:
        _check_details(details, 0)
    subject_type = subject_id = patient_id = None
    if subject is not None:
        subject_type = subject.type
        subject_id = None if subject.id is None else str(subject.id)
        if subject.patient_id is not None:
            patient_id = str(subject.patient_id)
        # str(UUID) is always identifier text; only free-form strings need the pattern.
        elif subject.type == "patient":
            patient_id = subject_id
        if subject.organization_id is not None:
            if organization_id is not None and organization_id != subject.organization_id:
                raise ValueError("subject organization differs from the session organization")
            organization_id = subject.organization_id
        if not SAFE_TEXT.match(subject_type) or len(subject_type) > 64:
            raise ValueError("subject type must be 1 to 64 identifier characters")
        for given_id, value in ((subject.id, subject_id), (subject.patient_id, patient_id)):
            if value is not None and not isinstance(given_id, uuid.UUID) and not (
                SAFE_TEXT.match(value)
            ):
                raise ValueError("subject ids must be 1 to 128 identifier characters")
    if recorded_at is None:
        now_ns = time.time_ns()
        recorded_text = _timestamp_from_ns(now_ns)
    else:
        now_ns = int(recorded_at.timestamp() * 1_000_000) * 1000
        recorded_text = timestamp_text(recorded_at)
    event_id = _event_id(now_ns)
    body = event_body(
        event_id=event_id,
        action=action,
        actor_type=actor.type,
        actor_id=actor.id,
        subject_type=subject_type,
        subject_id=subject_id,
        outcome=outcome,
        details=details,
    )
    if len(body) > MAX_BODY_BYTES:
        raise ValueError(f"audit details exceed {MAX_DETAILS_BYTES} bytes")
    org_text = None if organization_id is None else str(organization_id)
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
    event_id, values = build_event_row(
        actor=actor,
        action=action,
        subject=subject,
        outcome=outcome,
        details=details,
        organization_id=session.info.get("organization_id"),
    )
    _hold_recording_lock(session)
    audit_repository.insert_event(session, values)
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
        _hold_recording_lock(session)
        audit_repository.insert_events(session, [values for _, values in built])
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
