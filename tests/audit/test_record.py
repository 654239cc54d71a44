from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select, text

from carecollect.audit import Actor, Subject, access_log, record
from carecollect.audit.models import AuditEvent
from carecollect.db import Database

PATIENT = uuid.UUID("0190f0e0-0000-7000-8000-00000000aaaa")
USER = uuid.UUID("0190f0e0-0000-7000-8000-00000000bbbb")


def test_record_inserts_one_row_in_the_callers_transaction(
    db: Database, org_id: uuid.UUID
) -> None:
    with db.system_session() as session:
        event_id = record(
            session,
            actor=Actor.staff(USER),
            action="patient.read",
            subject=Subject("patient", PATIENT, organization_id=org_id),
            details={"fields": ["last_name", "date_of_birth_field"], "count": 2},
        )
    with db.system_session() as session:
        rows = session.execute(select(AuditEvent)).scalars().all()
    assert len(rows) == 1
    row = rows[0]
    assert row.patient_id == str(PATIENT)
    assert row.organization_id == str(org_id)
    assert len(row.recorded_at) == 27
    assert row.recorded_at.endswith("Z")
    assert row.body == (
        '{"action":"patient.read","actor_id":"' + str(USER) + '","actor_type":"staff",'
        '"details":{"count":2,"fields":["last_name","date_of_birth_field"]},'
        '"id":"' + str(event_id) + '","outcome":"success","subject_id":"' + str(PATIENT)
        + '","subject_type":"patient"}'
    )


def test_rollback_removes_the_event(db: Database) -> None:
    def fail_after_recording() -> None:
        with db.system_session() as session:
            record(session, actor=Actor.system("nightly"), action="import.run")
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        fail_after_recording()
    with db.system_session() as session:
        assert session.execute(text("SELECT count(*) FROM audit_event")).scalar() == 0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"action": "Patient Read"}, "dotted"),
        ({"action": "patient"}, "dotted"),
        ({"outcome": "ok"}, "outcome"),
        ({"details": {"x": 1.5}}, "floats"),
        ({"details": {"x": object()}}, "JSON values"),
        ({"details": {"x": "y" * 300}}, "limited"),
        ({"details": {"k" + str(i): "v" * 200 for i in range(30)}}, "exceed"),
        ({"details": {"last_name": "Doe"}}, "PHI"),
        ({"details": {"changes": [{"new_value": "x"}]}}, "PHI"),
        ({"details": {1: "x"}}, "keys must be strings"),
        ({"actor": Actor.staff("jane@example.org")}, "identifier characters"),
        ({"subject": Subject("patient", "Jane Doe")}, "identifier characters"),
        ({"details": ["a"]}, "JSON object"),
    ],
)
def test_bad_events_are_rejected(db: Database, kwargs: dict, message: str) -> None:
    arguments = {"actor": Actor.system("job"), "action": "patient.read", **kwargs}
    with db.system_session() as session:
        with pytest.raises(ValueError, match=message):
            record(session, **arguments)
        assert session.execute(text("SELECT count(*) FROM audit_event")).scalar() == 0


def test_subject_organization_must_match_tenant_session(db: Database, org_id: uuid.UUID) -> None:
    session = db.new_session(uuid.UUID(int=5))
    try:
        with pytest.raises(ValueError, match="organization differs"):
            record(
                session,
                actor=Actor.staff(USER),
                action="patient.read",
                subject=Subject("patient", PATIENT, organization_id=org_id),
            )
    finally:
        session.close()


def test_access_log_lists_patient_events_newest_first_scoped_to_organization(
    db: Database, org_id: uuid.UUID
) -> None:
    other_org = uuid.UUID(int=7)
    with db.system_session() as session:
        record(session, actor=Actor.staff(USER), action="patient.read",
               subject=Subject("patient", PATIENT, organization_id=org_id),
               details={"fields": ["last_name"], "reason": "call"})
        record(session, actor=Actor.patient(PATIENT), action="portal.view",
               subject=Subject("account", "acct-1", organization_id=org_id, patient_id=PATIENT))
        record(session, actor=Actor.staff(USER), action="patient.read",
               subject=Subject("patient", PATIENT, organization_id=other_org))
        record(session, actor=Actor.staff(USER), action="patient.read",
               subject=Subject("patient", uuid.UUID(int=9), organization_id=org_id))
    with db.system_session() as session:
        entries = access_log(session, org_id, PATIENT)
    assert [(e.action, e.actor_type, e.subject_type, e.seq) for e in entries] == [
        ("portal.view", "patient", "account", None),
        ("patient.read", "staff", "patient", None),
    ]
    assert entries[1].details == {"fields": ["last_name"], "reason": "call"}


def test_triggers_reject_update_and_delete(db: Database) -> None:
    with db.system_session() as session:
        record(session, actor=Actor.system("job"), action="import.run")
    for statement in ("UPDATE audit_event SET body = '{}'", "DELETE FROM audit_event"):
        with pytest.raises(Exception, match="append-only"), db.system_session() as session:
            session.execute(text(statement))
    with db.system_session() as session:
        body = session.execute(text("SELECT body FROM audit_event")).scalar()
        assert '"action":"import.run"' in body


def test_record_in_a_tenant_session(db: Database, org_id: uuid.UUID) -> None:
    # On PostgreSQL this runs as the application role, which may append events only.
    with db.tenant_session(org_id) as session:
        record(session, actor=Actor.staff(USER), action="patient.read",
               subject=Subject("patient", PATIENT))
    with db.tenant_session(org_id) as session:
        entries = access_log(session, org_id, PATIENT)
        assert [(e.action, e.patient_id) for e in entries] == [("patient.read", str(PATIENT))]
    with pytest.raises(Exception, match=r"append-only|permission denied"), db.tenant_session(
        org_id
    ) as session:
        session.execute(text("DELETE FROM audit_event"))


def test_audited_read_requires_an_actor_and_records_the_read(
    db: Database, org_id: uuid.UUID
) -> None:
    from sqlalchemy.orm import Session

    from carecollect.audit import audited_read

    class PatientReader:
        @audited_read("patient.read", lambda found: None if found is None else Subject(
            "patient", found, organization_id=org_id))
        def find(self, session: Session, patient_id: uuid.UUID | None) -> uuid.UUID | None:
            return patient_id

    reader = PatientReader()
    with db.system_session() as session:
        with pytest.raises(TypeError):
            reader.find(session, PATIENT)  # type: ignore[call-arg]
        with pytest.raises(TypeError, match="Actor"):
            reader.find(session, "not an actor", PATIENT)  # type: ignore[arg-type]
        assert reader.find(session, Actor.staff(USER), PATIENT) == PATIENT
        assert reader.find(session, Actor.staff(USER), None) is None
    with db.system_session() as session:
        entries = access_log(session, org_id, PATIENT)
    assert [(e.action, e.actor_id) for e in entries] == [("patient.read", str(USER))]


@pytest.mark.parametrize(
    ("subject", "details"),
    [
        (None, None),
        (Subject("account", "acct-7", patient_id=PATIENT), {"b": [1, True, None], "a": "x\u00e9"}),
    ],
)
def test_event_body_is_canonical_json(subject: Subject | None, details: dict | None) -> None:
    import json

    from carecollect.audit.service import build_event_row

    event_id, (recorded_at, _, _, body) = build_event_row(
        actor=Actor.webhook("twilio"), action="message.send", subject=subject,
        outcome="failure", details=details, organization_id=None)
    parsed = json.loads(body)
    assert body == json.dumps(parsed, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    assert parsed["id"] == str(event_id)
    assert event_id.version == 7
    assert len(recorded_at) == 27
