# ruff: noqa: S608 - these tests tamper with the database through raw SQL on purpose.
"""Tampering that bypasses the application (raw SQL with the guards dropped, direct edits
of the SQLite file) is detected by verify and located at the right sequence number."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from sqlalchemy import Connection, text

from carecollect.audit.integrator import EVENT_COLUMNS
from carecollect.audit.models import AUDIT_TABLES
from carecollect.audit.tree_store import read_positions
from carecollect.db import Database
from carecollect.kit.audit.canonical import canonical_bytes
from carecollect.kit.audit.chain import chain_hash
from carecollect.kit.audit.merkle import (
    CompactRange,
    leaf_hash,
    positions_for_range,
    stored_hash_count,
)
from tests.audit.helpers import record_events, run_integrator, verify

COUNT = 20


@pytest.fixture
def log(db: Database, data_dir: Path) -> Database:
    record_events(db, COUNT)
    run_integrator(db, data_dir, batch_size=8)  # checkpoints at 8, 16 and 20
    assert verify(db, data_dir).ok
    return db


def drop_guards(conn: Connection) -> None:
    for table in AUDIT_TABLES:
        if conn.dialect.name == "sqlite":
            conn.execute(text(f"DROP TRIGGER {table}_no_update"))
            conn.execute(text(f"DROP TRIGGER {table}_no_delete"))
        else:
            conn.execute(text(f"ALTER TABLE {table} DISABLE TRIGGER USER"))


def tamper(db: Database, *statements: str) -> None:
    with db.engine.begin() as conn:
        drop_guards(conn)
        for statement in statements:
            conn.exec_driver_sql(statement)


def ordinal_of(db: Database, seq: int) -> int:
    with db.engine.connect() as conn:
        return int(conn.execute(
            text("SELECT event_ordinal FROM audit_log_entry WHERE seq = :s"), {"s": seq}
        ).scalar_one())


def assert_detected(db: Database, data_dir: Path, seq: int, kind: str) -> None:
    report = verify(db, data_dir)
    assert not report.ok
    assert report.first_bad_seq == seq
    assert report.sorted_problems()[0].kind == kind
    # The same findings when the entries are split across worker processes (segment
    # boundaries at 6 and 13 with three, at 10 with two).
    for workers in (2, 3):
        assert verify(db, data_dir, workers=workers).as_dict() == report.as_dict()


def test_changed_detail_byte(log: Database, data_dir: Path) -> None:
    ordinal = ordinal_of(log, 11)
    tamper(log, "UPDATE audit_event SET body = replace(body, '\"count\":11', "
                f"'\"count\":12') WHERE ordinal = {ordinal}")
    assert_detected(log, data_dir, 11, "entry")


def test_deleted_event_row(log: Database, data_dir: Path) -> None:
    tamper(log, f"DELETE FROM audit_event WHERE ordinal = {ordinal_of(log, 5)}")
    assert_detected(log, data_dir, 5, "event-missing")


def test_deleted_log_entry(log: Database, data_dir: Path) -> None:
    tamper(log, "DELETE FROM audit_log_entry WHERE seq = 5")
    assert_detected(log, data_dir, 5, "sequence")


def test_swapped_rows(log: Database, data_dir: Path) -> None:
    first, second = ordinal_of(log, 3), ordinal_of(log, 9)
    tamper(
        log,
        "UPDATE audit_log_entry SET event_ordinal = -1 WHERE seq = 3",
        f"UPDATE audit_log_entry SET event_ordinal = {first} WHERE seq = 9",
        f"UPDATE audit_log_entry SET event_ordinal = {second} WHERE seq = 3",
    )
    assert_detected(log, data_dir, 3, "entry")


def test_forged_row_with_correct_hashes_is_not_signed(log: Database, data_dir: Path) -> None:
    # The forger knows the format and recomputes every hash; only the signing key is
    # out of reach, so the new entry is covered by no checkpoint.
    record_events(log, 1, start=99)
    with log.engine.begin() as conn:
        drop_guards(conn)
        event = conn.exec_driver_sql(
            f"SELECT e.ordinal, {EVENT_COLUMNS} FROM audit_event e ORDER BY ordinal DESC LIMIT 1"
        ).one()
        chain = conn.exec_driver_sql(
            "SELECT chain_hash FROM audit_log_entry WHERE seq = 19").scalar_one()
        stored = read_positions(conn, positions_for_range(0, COUNT))
        tree = CompactRange.from_stored(COUNT, stored)
        leaf = leaf_hash(canonical_bytes(*event[1:], COUNT))
        conn.execute(text("INSERT INTO audit_log_entry VALUES (:s, :o, :c)"),
                     {"s": COUNT, "o": event[0], "c": chain_hash(bytes(chain), leaf)})
        created = tree.append(leaf)
        conn.execute(text("INSERT INTO audit_tree_hash VALUES (:p, :h)"),
                     {"p": stored_hash_count(COUNT), "h": b"".join(created)})
    assert_detected(log, data_dir, COUNT, "unsigned")


def test_forged_event_among_sequenced_events(log: Database, data_dir: Path) -> None:
    # An event slipped in below the integrated frontier (a copy of the event at seq 6
    # with an ordinal between those of seq 6 and seq 7, which the gap-free ordinals leave
    # no room for, so it goes before them all) is never sequenced: verify reports it.
    tamper(log, "INSERT INTO audit_event SELECT -5, recorded_at, organization_id, "
                f"patient_id, body FROM audit_event WHERE ordinal = {ordinal_of(log, 6)}")
    assert_detected(log, data_dir, 0, "forged-event")


def test_truncated_tail(log: Database, data_dir: Path) -> None:
    tamper(
        log,
        "DELETE FROM audit_log_entry WHERE seq >= 15",
        "DELETE FROM audit_tree_hash WHERE position >= 26",  # stored_hash_count(15) == 26
        "DELETE FROM audit_checkpoint WHERE tree_size > 15",
    )
    assert_detected(log, data_dir, 15, "truncated")


def test_rollback_to_older_database_is_detected_by_checkpoint_directory(
    db: Database, data_dir: Path, database_url: str, backend: str, tmp_path: Path
) -> None:
    if backend != "sqlite":
        pytest.skip("restores a copy of the SQLite file")
    record_events(db, 12)
    run_integrator(db, data_dir)
    db.dispose()
    database_file = Path(database_url.removeprefix("sqlite:///"))
    shutil.copyfile(database_file, tmp_path / "old.db")
    record_events(db, 9, start=12)
    run_integrator(db, data_dir)
    assert verify(db, data_dir).ok
    db.dispose()
    shutil.copyfile(tmp_path / "old.db", database_file)
    for suffix in ("-wal", "-shm"):
        Path(str(database_file) + suffix).unlink(missing_ok=True)
    report = verify(db, data_dir)
    assert report.first_bad_seq == 12
    assert report.sorted_problems()[0].kind == "truncated"
    assert "checkpoint-000000000000021.txt" in report.sorted_problems()[0].message


def test_direct_edit_of_the_sqlite_file(
    log: Database, data_dir: Path, database_url: str, backend: str
) -> None:
    if backend != "sqlite":
        pytest.skip("edits the SQLite file")
    log.dispose()  # checkpoints the WAL into the main file
    path = Path(database_url.removeprefix("sqlite:///"))
    content = path.read_bytes()
    needle = b'{"count":13,'
    assert content.count(needle) == 1
    path.write_bytes(content.replace(needle, b'{"count":43,'))
    assert_detected(log, data_dir, 13, "entry")


def test_corrupt_checkpoint_file(log: Database, data_dir: Path) -> None:
    path = data_dir / "checkpoints" / "checkpoint-000000000000016.txt"
    path.write_text(path.read_text(encoding="utf-8").replace("\n16\n", "\n17\n"),
                    encoding="utf-8")
    report = verify(log, data_dir)
    assert not report.ok
    assert [p.kind for p in report.problems] == ["checkpoint"]
    assert "checkpoint-000000000000016.txt" in report.problems[0].message
    assert "does not verify" in report.problems[0].message


def test_integrator_refuses_to_run_behind_the_checkpoint_directory(
    log: Database, data_dir: Path
) -> None:
    from carecollect.errors import AppError

    tamper(log, "DELETE FROM audit_log_entry WHERE seq >= 16",
           "DELETE FROM audit_tree_hash WHERE position >= 31",
           "DELETE FROM audit_checkpoint WHERE tree_size > 16")
    before = (data_dir / "checkpoints" / "checkpoint-000000000000020.txt").read_bytes()
    with pytest.raises(AppError, match="behind"):
        run_integrator(log, data_dir)
    assert (data_dir / "checkpoints" / "checkpoint-000000000000020.txt").read_bytes() == before
