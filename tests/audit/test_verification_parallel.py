# ruff: noqa: S608 - these tests tamper with the database through raw SQL on purpose.
"""Parallel verification with more segments than workers (a large log is cut into up to
SEGMENTS_PER_WORKER segments per worker, handed out as workers free up; segments after a
bad one are cancelled; the main process looks for unlogged events while the workers
run): every tamper, in the middle of a segment or at a boundary, gives exactly the report
of one process. The SQLite query's printf() builds exactly the canonical bytes."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from sqlalchemy import text

from carecollect.audit import Actor, Subject, record
from carecollect.audit import verification as verification_module
from carecollect.audit.integrator import EVENT_COLUMNS
from carecollect.audit.verification import (
    AUTO_WORKERS,
    MIN_SEGMENT,
    SEGMENTS_PER_WORKER,
    _segment_sql,
    segment_bounds,
)
from carecollect.db import Database
from carecollect.kit.audit.canonical import canonical_bytes
from carecollect.kit.audit.chain import chain_hash
from carecollect.kit.audit.merkle import leaf_hash
from tests.audit.helpers import ORG, record_events, run_integrator, verify
from tests.audit.test_tamper import ordinal_of, tamper

COUNT = 20
# With MIN_SEGMENT 3, two workers cut 20 entries into min(2 * 4, 20 // 3) = 6 segments.
BOUNDS = [0, 3, 6, 10, 13, 16, 20]


@pytest.fixture
def log(db: Database, data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Database:
    record_events(db, COUNT)
    run_integrator(db, data_dir, batch_size=8)  # checkpoints at 8, 16 and 20
    monkeypatch.setattr(verification_module, "MIN_SEGMENT", 3)
    assert segment_bounds(COUNT, 2) == BOUNDS
    return db


def same_report_every_way(db: Database, data_dir: Path) -> dict[str, object]:
    """The report of one process, asserted equal to the chunked two- and three-worker
    reports (three workers: min(12, 6) = 6 segments too, handed out differently)."""
    one = verify(db, data_dir, workers=1).as_dict()
    for workers in (2, 3):
        assert verify(db, data_dir, workers=workers).as_dict() == one
    return one


def test_segment_bounds() -> None:
    assert (SEGMENTS_PER_WORKER, MIN_SEGMENT) == (4, 50_000)
    assert 2 <= AUTO_WORKERS <= 8
    assert segment_bounds(0, 2) == [0]
    assert segment_bounds(20, 1) == [0, 20]
    assert segment_bounds(20, 2) == [0, 10, 20]
    assert segment_bounds(3, 7) == [0, 1, 2, 3]
    # Large logs: up to four segments per worker, none below MIN_SEGMENT entries.
    assert segment_bounds(120_000, 2) == [0, 60_000, 120_000]
    assert segment_bounds(250_000, 2) == [0, 50_000, 100_000, 150_000, 200_000, 250_000]
    assert segment_bounds(1_002_000, 2) == [125_250 * k for k in range(9)]
    assert segment_bounds(1_002_000, 1) == [0, 1_002_000]


def test_intact_log_with_more_segments_than_workers(log: Database, data_dir: Path) -> None:
    assert same_report_every_way(log, data_dir) == {
        "ok": True,
        "tree_size": 20,
        "entries_checked": 20,
        "checkpoints_checked": 6,
        "first_bad_seq": None,
        "problems": [],
    }


# Boundaries of BOUNDS (3, 6, 10, 13, 16), the entries just before them, the first and
# last entries, and entries in the middle of a segment (1, 4, 8, 11, 14, 18).
@pytest.mark.parametrize("seq", [0, 1, 2, 3, 4, 5, 6, 8, 9, 10, 11, 12, 13, 14, 16, 18, 19])
def test_edited_event_in_any_segment(log: Database, data_dir: Path, seq: int) -> None:
    tamper(
        log,
        "UPDATE audit_event SET body = replace(body, '\"count\":', '\"count\":9') "
        f"WHERE ordinal = {ordinal_of(log, seq)}",
    )
    report = same_report_every_way(log, data_dir)
    assert (report["first_bad_seq"], report["entries_checked"]) == (seq, seq)
    problems = report["problems"]
    assert isinstance(problems, list)
    assert problems[0] == {
        "seq": seq,
        "kind": "entry",
        "message": f"sequence number {seq} does not match its stored chain hash (event "
        "edited, replaced or reordered, or the chain hash altered)",
    }


@pytest.mark.parametrize("seq", [2, 3, 8, 13, 19])
def test_altered_chain_hash_at_and_inside_segments(log: Database, data_dir: Path, seq: int) -> None:
    # The stored chain before a segment is where the next worker starts: altering it is
    # found at that entry, not at the next segment's first entry.
    tamper(
        log,
        f"UPDATE audit_log_entry SET chain_hash = zeroblob(32) WHERE seq = {seq}"
        if log.engine.dialect.name == "sqlite"
        else f"UPDATE audit_log_entry SET chain_hash = '\\x{'00' * 32}'::bytea WHERE seq = {seq}",
    )
    report = same_report_every_way(log, data_dir)
    assert (report["first_bad_seq"], report["entries_checked"]) == (seq, seq)


@pytest.mark.parametrize("seq", [3, 8, 16, 18])
def test_deleted_entry_at_and_inside_segments(log: Database, data_dir: Path, seq: int) -> None:
    tamper(log, f"DELETE FROM audit_log_entry WHERE seq = {seq}")
    report = same_report_every_way(log, data_dir)
    problems = report["problems"]
    assert isinstance(problems, list)
    assert problems[0] == {
        "seq": seq,
        "kind": "sequence",
        "message": f"sequence number {seq} is missing (entry deleted)",
    }


def test_truncated_tail_with_segments(log: Database, data_dir: Path) -> None:
    # The last segment loses its end: the log is shorter than the signed 20.
    tamper(log, "DELETE FROM audit_log_entry WHERE seq >= 17")
    report = same_report_every_way(log, data_dir)
    problems = report["problems"]
    assert isinstance(problems, list)
    assert [(p["seq"], p["kind"]) for p in problems] == [(17, "truncated")]
    assert report["entries_checked"] == 17


@pytest.mark.parametrize("seq", [6, 7])
def test_deleted_event_at_and_inside_segments(log: Database, data_dir: Path, seq: int) -> None:
    tamper(log, f"DELETE FROM audit_event WHERE ordinal = {ordinal_of(log, seq)}")
    report = same_report_every_way(log, data_dir)
    problems = report["problems"]
    assert isinstance(problems, list)
    assert problems[0] == {
        "seq": seq,
        "kind": "event-missing",
        "message": f"the event of sequence number {seq} is missing",
    }


def test_swapped_events_across_a_boundary(log: Database, data_dir: Path) -> None:
    first, second = ordinal_of(log, 9), ordinal_of(log, 10)
    tamper(
        log,
        "UPDATE audit_log_entry SET event_ordinal = -1 WHERE seq = 9",
        f"UPDATE audit_log_entry SET event_ordinal = {first} WHERE seq = 10",
        f"UPDATE audit_log_entry SET event_ordinal = {second} WHERE seq = 9",
    )
    report = same_report_every_way(log, data_dir)
    assert (report["first_bad_seq"], report["entries_checked"]) == (9, 9)


def test_forged_event_is_found_while_workers_run(log: Database, data_dir: Path) -> None:
    # An event inserted below the frontier without a log entry; the main process finds it
    # while the workers check the (intact) entries.
    tamper(
        log,
        f"INSERT INTO audit_event (ordinal, recorded_at, organization_id, "
        f"patient_id, body) SELECT ordinal + 1000, recorded_at, organization_id, "
        f"patient_id, body FROM audit_event WHERE ordinal = {ordinal_of(log, 0)}",
        "UPDATE audit_log_entry SET event_ordinal = event_ordinal + 2000 WHERE seq = 19",
    )
    # The entry of seq 19 now points past the forged ordinal, so the forgery lies below the
    # frontier (and seq 19 has lost its event).
    report = same_report_every_way(log, data_dir)
    kinds = [(p["seq"], p["kind"]) for p in report["problems"]]  # type: ignore[attr-defined]
    assert kinds == [(19, "event-missing"), (19, "forged-event")]


def test_rewritten_chain_fails_roots_computed_from_six_segments(
    log: Database, data_dir: Path
) -> None:
    tamper(
        log,
        "UPDATE audit_event SET body = replace(body, '\"count\":4', "
        f"'\"count\":5') WHERE ordinal = {ordinal_of(log, 4)}",
    )
    with log.engine.begin() as conn:
        rows = conn.exec_driver_sql(
            f"SELECT l.seq, {EVENT_COLUMNS} FROM audit_log_entry l JOIN audit_event e "
            "ON e.ordinal = l.event_ordinal ORDER BY l.seq"
        ).all()
        chain = bytes(
            conn.exec_driver_sql(
                "SELECT chain_hash FROM audit_log_entry WHERE seq = 3"
            ).scalar_one()
        )
        for seq, *columns in rows[4:]:
            chain = chain_hash(chain, leaf_hash(canonical_bytes(*columns, seq)))
            conn.execute(
                text("UPDATE audit_log_entry SET chain_hash = :c WHERE seq = :s"),
                {"c": chain, "s": seq},
            )
    report = same_report_every_way(log, data_dir)
    assert [(p["seq"], p["kind"]) for p in report["problems"]] == [  # type: ignore[attr-defined]
        (0, "unsigned"),
        (7, "checkpoint-root"),
        (7, "checkpoint-root"),
        (15, "checkpoint-root"),
        (15, "checkpoint-root"),
        (19, "checkpoint-root"),
        (19, "checkpoint-root"),
    ]


def test_query_builds_the_canonical_bytes_of_unusual_events(db: Database, data_dir: Path) -> None:
    # Escaped characters in details (a quote, a backslash, a non-ASCII letter, a percent
    # sign that printf() must not interpret), no organization or patient, a subject
    # patient id that is not a UUID, and a missing event (NULL).
    with db.system_session() as session:
        record(
            session,
            actor=Actor.system("nightly"),
            action="job.run",
            subject=Subject("job", "nightly"),
            details={"reason": 'caf\u00e9 "100%" \\ %s %d', "count": -3},
        )
        record(
            session,
            actor=Actor.staff(uuid.UUID(int=7)),
            action="patient.read",
            subject=Subject("patient", "MRN-00042", organization_id=ORG),
            details={"fields": []},
        )
        record(session, actor=Actor.system("nightly"), action="audit.verify")
    run_integrator(db, data_dir)
    with db.engine.connect() as conn:
        built = conn.exec_driver_sql(_segment_sql(db.engine.dialect.name, 0, 3)).all()
        expected = conn.exec_driver_sql(
            f"SELECT l.seq, {EVENT_COLUMNS} FROM audit_log_entry l JOIN audit_event e "
            "ON e.ordinal = l.event_ordinal ORDER BY l.seq"
        ).all()
    assert [bytes(row[2]) for row in built] == [
        canonical_bytes(*row[1:], row[0]) for row in expected
    ]
    assert b'\\"100%\\" \\\\ %s %d' in bytes(built[0][2])
    assert b'"patient_id":"MRN-00042"' in bytes(built[1][2])
    tamper(db, f"DELETE FROM audit_event WHERE ordinal = {ordinal_of(db, 1)}")
    with db.engine.connect() as conn:
        built = conn.exec_driver_sql(_segment_sql(db.engine.dialect.name, 0, 3)).all()
    assert [row[2] is None for row in built] == [False, True, False]
