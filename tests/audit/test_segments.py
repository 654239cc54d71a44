# ruff: noqa: S608 - these tests tamper with the database through raw SQL on purpose.
"""The segment verifier: the log split across worker processes gives exactly the report of
one process, whatever the split, including at the segments' boundaries; the Merkle roots
at checkpoints are recomputed from every segment's subtrees."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from carecollect.audit import Actor, Subject, record
from carecollect.audit.integrator import EVENT_COLUMNS
from carecollect.audit.verification import _segment_sql
from carecollect.db import Database
from carecollect.kit.audit.canonical import canonical_bytes
from carecollect.kit.audit.chain import chain_hash
from carecollect.kit.audit.merkle import (
    EMPTY_ROOT,
    CompactRange,
    ProofError,
    SubtreeStack,
    leaf_hash,
    root_from_subtrees,
)
from tests.audit.helpers import record_events, run_integrator, verify
from tests.audit.test_tamper import ordinal_of, tamper

COUNT = 20


@pytest.fixture
def log(db: Database, data_dir: Path) -> Database:
    record_events(db, COUNT)
    run_integrator(db, data_dir, batch_size=8)  # checkpoints at 8, 16 and 20
    return db


def reports(db: Database, data_dir: Path) -> list[dict[str, object]]:
    return [verify(db, data_dir, workers=w).as_dict() for w in (1, 2, 3, 4, 7)]


def test_intact_log_same_report_for_every_split(log: Database, data_dir: Path) -> None:
    found = reports(log, data_dir)
    assert found[0] == {
        "ok": True, "tree_size": 20, "entries_checked": 20, "checkpoints_checked": 6,
        "first_bad_seq": None, "problems": [],
    }
    assert all(report == found[0] for report in found)
    two = verify(log, data_dir, workers=2)
    assert sorted(c.tree_size for c in two.valid_checkpoints) == [8, 8, 16, 16, 20, 20]


# Three workers split 20 entries at 6 and 13, four at 5, 10 and 15, seven at 2, 5, 8, ...
@pytest.mark.parametrize("seq", [0, 4, 5, 6, 9, 10, 12, 13, 14, 15, 19])
def test_edit_at_and_around_segment_boundaries(
    log: Database, data_dir: Path, seq: int
) -> None:
    tamper(log, "UPDATE audit_event SET body = replace(body, '\"count\":', '\"count\":9') "
                f"WHERE ordinal = {ordinal_of(log, seq)}")
    found = reports(log, data_dir)
    assert all(report == found[0] for report in found)
    assert found[0]["first_bad_seq"] == seq
    assert found[0]["entries_checked"] == seq
    problems = found[0]["problems"]
    assert isinstance(problems, list)
    assert problems[0]["kind"] == "entry"


@pytest.mark.parametrize("seq", [1, 5, 6, 12, 13, 18])
def test_deleted_entry_at_segment_boundaries(log: Database, data_dir: Path, seq: int) -> None:
    tamper(log, f"DELETE FROM audit_log_entry WHERE seq = {seq}")
    found = reports(log, data_dir)
    assert all(report == found[0] for report in found)
    assert found[0]["first_bad_seq"] == seq
    problems = found[0]["problems"]
    assert isinstance(problems, list)
    assert problems[0] == {
        "seq": seq, "kind": "sequence",
        "message": f"sequence number {seq} is missing (entry deleted)",
    }


def test_deleted_event_at_a_boundary(log: Database, data_dir: Path) -> None:
    tamper(log, f"DELETE FROM audit_event WHERE ordinal = {ordinal_of(log, 13)}")
    found = reports(log, data_dir)
    assert all(report == found[0] for report in found)
    assert (found[0]["first_bad_seq"], found[0]["entries_checked"]) == (13, 13)


def test_negative_sequence_number_is_found_with_workers(log: Database, data_dir: Path) -> None:
    tamper(log, "INSERT INTO audit_log_entry SELECT -1, -7, chain_hash FROM audit_log_entry "
                "WHERE seq = 0")
    found = reports(log, data_dir)
    assert all(report == found[0] for report in found)
    problems = found[0]["problems"]
    assert isinstance(problems, list)
    assert problems[0] == {
        "seq": 0, "kind": "sequence",
        "message": "sequence number -1 appears out of order or twice",
    }


def test_rewritten_chain_is_caught_by_checkpoint_roots_across_segments(
    log: Database, data_dir: Path
) -> None:
    # A forger edits entry 7 and recomputes every later chain hash, so the chain holds;
    # only the signed roots (8, 16, 20), each recomputed from several segments, disagree.
    tamper(log, "UPDATE audit_event SET body = replace(body, '\"count\":7', "
                f"'\"count\":8') WHERE ordinal = {ordinal_of(log, 7)}")  # guards now off
    with log.engine.begin() as conn:
        rows = conn.exec_driver_sql(
            f"SELECT l.seq, {EVENT_COLUMNS} FROM audit_log_entry l JOIN audit_event e "
            "ON e.ordinal = l.event_ordinal ORDER BY l.seq"
        ).all()
        chain = bytes(conn.exec_driver_sql(
            "SELECT chain_hash FROM audit_log_entry WHERE seq = 6").scalar_one())
        for seq, *columns in rows[7:]:
            chain = chain_hash(chain, leaf_hash(canonical_bytes(*columns, seq)))
            conn.execute(text("UPDATE audit_log_entry SET chain_hash = :c WHERE seq = :s"),
                         {"c": chain, "s": seq})
    found = reports(log, data_dir)
    assert all(report == found[0] for report in found)
    problems = found[0]["problems"]
    assert isinstance(problems, list)
    assert [(p["seq"], p["kind"]) for p in problems] == [
        (0, "unsigned"),
        (7, "checkpoint-root"), (7, "checkpoint-root"),
        (15, "checkpoint-root"), (15, "checkpoint-root"),
        (19, "checkpoint-root"), (19, "checkpoint-root"),
    ]
    assert found[0]["entries_checked"] == COUNT


def test_canonical_bytes_built_by_the_database_equal_canonical_bytes(
    db: Database, data_dir: Path
) -> None:
    # Events with and without organization and patient (a system event has neither).
    with db.system_session() as session:
        record(session, actor=Actor.system("nightly"), action="audit.verify")
        record(session, actor=Actor.system("nightly"), action="job.run",
               subject=Subject("job", "nightly"), details={"count": 3, "ok": True})
    record_events(db, 2)
    run_integrator(db, data_dir)
    with db.engine.connect() as conn:
        built = conn.exec_driver_sql(_segment_sql(db.engine.dialect.name, 0, 4)).all()
        expected = conn.exec_driver_sql(
            f"SELECT l.seq, {EVENT_COLUMNS} FROM audit_log_entry l JOIN audit_event e "
            "ON e.ordinal = l.event_ordinal ORDER BY l.seq"
        ).all()
    assert [bytes(row[2]) for row in built] == [
        canonical_bytes(*row[1:], row[0]) for row in expected
    ]
    assert b'"organization_id":null,"patient_id":null' in bytes(built[0][2])


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 300), st.lists(st.integers(0, 300), max_size=5), st.integers(1, 64))
def test_subtrees_of_any_split_give_the_root(size: int, cuts: list[int], step: int) -> None:
    leaves = [leaf_hash(i.to_bytes(2, "big")) for i in range(size)]
    whole = CompactRange()
    whole.extend(leaves)
    bounds = sorted({0, size, *(c for c in cuts if c < size)})
    known: dict[tuple[int, int], bytes] = {}
    for begin, end in itertools.pairwise(bounds):
        stack = SubtreeStack(begin)
        for first in range(begin, end, step):
            stack.extend(leaves[first:min(end, first + step)])
        assert stack.end == end
        known.update(((level, index), h) for level, index, h in stack.subtrees())
    assert root_from_subtrees(size, known) == whole.root()


def test_root_from_subtrees_needs_every_leaf() -> None:
    assert root_from_subtrees(0, {}) == EMPTY_ROOT
    stack = SubtreeStack(0)
    stack.extend([leaf_hash(b"a"), leaf_hash(b"b")])
    tiles = {(level, index): h for level, index, h in stack.subtrees()}
    with pytest.raises(ProofError, match="no hash covers leaf 2"):
        root_from_subtrees(3, tiles)
