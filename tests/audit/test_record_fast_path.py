"""The cheaper record() path (issue 3: audited/unaudited write ratio) keeps every guarantee:
the body is byte for byte the canonical `event_body`, validation is not skipped by the
caches, ids are valid UUIDv7, and on PostgreSQL the recording lock is held whenever an
event is inserted, also after a rolled-back savepoint."""

from __future__ import annotations

import json
import uuid

import pytest
from sqlalchemy import text

from carecollect.audit import Actor, Subject, record
from carecollect.audit.service import (
    RECORDING_LOCK_KEY,
    PendingEvent,
    build_event_row,
    record_many,
)
from carecollect.db import Database
from carecollect.kit.audit.canonical import event_body

ORG = uuid.UUID("0190f0e0-0000-7000-8000-000000000001")
PATIENT = uuid.UUID("0190f0e0-0000-7000-8000-00000000aaaa")
USER = uuid.UUID("0190f0e0-0000-7000-8000-00000000bbbb")


@pytest.mark.parametrize(
    ("actor", "subject", "details"),
    [
        (Actor.staff(USER), None, None),
        (Actor.staff(USER), None, {}),
        (Actor.system("nightly"), Subject("import_run"), {"count": 0}),
        (Actor.patient(PATIENT), Subject("account", "acct-1", ORG, PATIENT), {"b": [1, True]}),
        (
            Actor.api_key("key-1"),
            Subject("patient", PATIENT, ORG),
            {"z": {"y": [None, "x\u00e9\n\"q\""], "a": -3}, "fields": ("last_name_field",)},
        ),
        (Actor.webhook("twilio"), Subject("ledger_entry", str(USER), patient_id=str(PATIENT)),
         {"kind": "payment", "fields": ["amount_cents"], "ok": False}),
    ],
)
def test_body_equals_the_canonical_event_body(
    actor: Actor, subject: Subject | None, details: dict | None
) -> None:
    for _ in range(2):  # the second time through the caches
        event_id, (recorded_at, org, patient_id, body) = build_event_row(
            actor=actor, action="patient.read", subject=subject, outcome="denied",
            details=details, organization_id=None)
        expected = event_body(
            event_id=event_id, action="patient.read", actor_type=actor.type,
            actor_id=actor.id,
            subject_type=None if subject is None else subject.type,
            subject_id=None if subject is None or subject.id is None else str(subject.id),
            outcome="denied", details=details or {})
        assert body == expected
        assert body == json.dumps(json.loads(body), sort_keys=True, separators=(",", ":"),
                                  ensure_ascii=True)
        assert org == (None if subject is None or subject.organization_id is None
                       else str(subject.organization_id))
        if subject is not None and subject.patient_id is not None:
            assert patient_id == str(subject.patient_id)
        elif subject is not None and subject.type == "patient":
            assert patient_id == str(subject.id)
        else:
            assert patient_id is None
        assert len(recorded_at) == 27


def test_event_ids_are_ordered_uuid7_matching_their_text() -> None:
    ids = []
    for _ in range(3000):  # several events per millisecond
        event_id, (_, _, _, body) = build_event_row(
            actor=Actor.system("job"), action="import.run", subject=None, outcome="success",
            details=None, organization_id=None)
        assert json.loads(body)["id"] == str(event_id)
        assert event_id == uuid.UUID(str(event_id))
        assert (event_id.version, event_id.variant) == (7, uuid.RFC_4122)
        ids.append(event_id)
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"actor": Actor.staff("abc\n")}, "identifier characters"),
        ({"action": "patient.read\n"}, "dotted"),
        ({"subject": Subject("patient\n")}, "subject type"),
        ({"subject": Subject("account", "acct-1\n")}, "identifier characters"),
        ({"subject": Subject("account", "acct-1", patient_id="p\n")}, "identifier characters"),
        ({"details": {"Last_Name": "x"}}, "PHI"),
        ({"details": {"fields": ["a"], "nested": {"deeper": {"deepest": {"x": [1]}}}}},
         "nest at most"),
        ({"details": {"fields": [1.0]}}, "floats"),
        ({"details": {"fields": ["y" * 257]}}, "limited"),
    ],
)
def test_validation_holds_after_the_caches_are_warm(kwargs: dict, message: str) -> None:
    arguments = {"actor": Actor.staff(USER), "action": "patient.read", "subject": None,
                 "outcome": "success", "details": {"fields": ["a"], "last_name_field": 1},
                 "organization_id": None}
    build_event_row(**arguments)  # warm: actor, action, keys, subject type
    build_event_row(**{**arguments, "subject": Subject("account", "acct-1")})
    with pytest.raises(ValueError, match=message):
        build_event_row(**{**arguments, **kwargs})


def test_a_plain_tuple_does_not_pass_for_a_cached_actor() -> None:
    actor = Actor.staff(USER)
    build_event_row(actor=actor, action="patient.read", subject=None, outcome="success",
                    details=None, organization_id=None)
    with pytest.raises(ValueError, match="audit Actor"):
        build_event_row(actor=tuple(actor), action="patient.read",  # type: ignore[arg-type]
                        subject=None, outcome="success", details=None, organization_id=None)


def test_record_many_and_record_share_the_transaction(db: Database) -> None:
    with db.system_session() as session:
        record(session, actor=Actor.system("job"), action="import.run")
        ids = record_many(session, [PendingEvent(Actor.system("job"), "import.row")] * 3)
        record(session, actor=Actor.system("job"), action="import.done")
        assert len(ids) == 3
        session.rollback()
    with db.system_session() as session:
        assert session.execute(text("SELECT count(*) FROM audit_event")).scalar() == 0


def _lock_is_held_elsewhere(db: Database) -> bool:
    """True when some transaction holds the recording lock (shared): an exclusive try
    from another connection fails."""
    with db.engine.connect() as other:
        got = other.execute(text("SELECT pg_try_advisory_lock(:k)"),
                            {"k": RECORDING_LOCK_KEY}).scalar()
        if got:
            other.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": RECORDING_LOCK_KEY})
        other.commit()
    return not got


def test_recording_lock_is_taken_again_after_a_rolled_back_savepoint(db: Database) -> None:
    if not db.is_postgres:
        pytest.skip("the recording lock is PostgreSQL-only")
    session = db.new_session()
    try:
        savepoint = session.begin_nested()
        record(session, actor=Actor.system("job"), action="import.run")
        assert _lock_is_held_elsewhere(db)
        savepoint.rollback()  # PostgreSQL releases a lock taken inside the savepoint
        assert not _lock_is_held_elsewhere(db)
        record(session, actor=Actor.system("job"), action="import.done")
        assert _lock_is_held_elsewhere(db)
        # Taken in the outer transaction, the lock survives a savepoint rolled back later.
        with session.begin_nested() as inner:
            record(session, actor=Actor.system("job"), action="import.row")
            inner.rollback()
        assert _lock_is_held_elsewhere(db)
        session.commit()
        assert not _lock_is_held_elsewhere(db)
        # A new transaction takes it again.
        record(session, actor=Actor.system("job"), action="import.run")
        assert _lock_is_held_elsewhere(db)
        session.rollback()
    finally:
        session.close()
    with db.system_session() as check:
        actions = check.execute(text("SELECT body FROM audit_event ORDER BY ordinal")).scalars()
        assert [json.loads(b)["action"] for b in actions] == ["import.done"]


def test_caches_stay_bounded_and_keep_validating(monkeypatch: pytest.MonkeyPatch) -> None:
    from carecollect.audit import service

    monkeypatch.setattr(service, "_CACHE_LIMIT", 8)
    for i in range(50):
        build_event_row(actor=Actor.staff(f"user-{i}"), action="patient.read",
                        subject=Subject(f"kind_{i}", f"id-{i}", ORG), outcome="success",
                        details={f"field_{i}": i}, organization_id=None)
    for cache in (service._body_prefixes, service._subject_types, service._detail_keys,
                  service._org_texts):
        assert len(cache) <= 8
    with pytest.raises(ValueError, match="identifier characters"):
        build_event_row(actor=Actor.staff("user 1"), action="patient.read", subject=None,
                        outcome="success", details=None, organization_id=None)
