from __future__ import annotations

import itertools
from pathlib import Path

from sqlalchemy import text

from carecollect.audit.keys import default_verifier
from carecollect.db import Database
from carecollect.kit.audit.checkpoint import open_checkpoint
from carecollect.kit.audit.merkle import stored_hash_count
from tests.audit.helpers import key_path, record_events, run_integrator, verify


def test_integrate_sequences_hashes_and_checkpoints(db: Database, data_dir: Path) -> None:
    record_events(db, 25)
    result = run_integrator(db, data_dir, batch_size=10)
    assert (result.integrated, result.tree_size) == (25, 25)
    with db.engine.connect() as conn:
        seqs = [r[0] for r in conn.execute(text("SELECT seq FROM audit_log_entry ORDER BY seq"))]
        assert seqs == list(range(25))
        ordinals = [r[0] for r in conn.execute(
            text("SELECT event_ordinal FROM audit_log_entry ORDER BY seq"))]
        assert ordinals == sorted(ordinals)
        blobs = [bytes(r[0]) for r in conn.execute(
            text("SELECT hashes FROM audit_tree_hash ORDER BY position"))]
        assert sum(len(b) for b in blobs) == 32 * stored_hash_count(25)
        assert len(blobs) == 3  # one run per batch of 10 events
        sizes = [r[0] for r in conn.execute(
            text("SELECT tree_size FROM audit_checkpoint ORDER BY tree_size"))]
    assert sizes == [10, 20, 25]
    files = sorted(p.name for p in (data_dir / "checkpoints").iterdir())
    assert files == [f"checkpoint-{n:015d}.txt" for n in (10, 20, 25)]
    verifier = default_verifier(key_path(data_dir))
    checkpoint = open_checkpoint(
        (data_dir / "checkpoints" / files[-1]).read_text(encoding="utf-8"), verifier)
    assert checkpoint.tree_size == 25
    assert checkpoint.root_hash == result.root_hash
    report = verify(db, data_dir)
    assert report.problems == []
    assert (report.tree_size, report.entries_checked, report.checkpoints_checked) == (25, 25, 6)


def test_second_run_appends_and_stays_consistent(db: Database, data_dir: Path) -> None:
    record_events(db, 7)
    run_integrator(db, data_dir)
    assert run_integrator(db, data_dir).integrated == 0
    record_events(db, 6, start=7)
    result = run_integrator(db, data_dir)
    assert (result.integrated, result.tree_size) == (6, 13)
    report = verify(db, data_dir)
    assert report.ok
    assert sorted(c.tree_size for c in report.valid_checkpoints) == [7, 7, 13, 13]


def test_empty_log_verifies(db: Database, data_dir: Path) -> None:
    result = run_integrator(db, data_dir)
    assert (result.integrated, result.tree_size, result.root_hash) == (0, 0, None)
    report = verify(db, data_dir)
    assert report.ok
    assert report.tree_size == 0


def test_deep_verify_compares_stored_tree_hashes(db: Database, data_dir: Path) -> None:
    from carecollect.audit.verification import verify_database

    record_events(db, 9)
    run_integrator(db, data_dir)
    with db.engine.begin() as conn:
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql("DROP TRIGGER audit_tree_hash_no_update")
        else:
            conn.exec_driver_sql("ALTER TABLE audit_tree_hash DISABLE TRIGGER USER")
        start, blob = conn.exec_driver_sql(
            "SELECT position, hashes FROM audit_tree_hash WHERE position <= 5 "
            "ORDER BY position DESC LIMIT 1").one()
        offset = (5 - start) * 32
        damaged = bytes(blob[:offset]) + bytes(32) + bytes(blob[offset + 32:])
        conn.execute(text("UPDATE audit_tree_hash SET hashes = :b WHERE position = :p"),
                     {"b": damaged, "p": start})
    verifier = default_verifier(key_path(data_dir))
    shallow = verify_database(db.engine, verifier=verifier, checkpoint_dir=None)
    assert shallow.ok  # the log itself is intact; only a proof path is damaged
    deep = verify_database(db.engine, verifier=verifier, checkpoint_dir=None, deep=True)
    assert [(p.seq, p.kind) for p in deep.problems] == [(0, "tree")]
    assert "position 5" in deep.problems[0].message


def test_postgres_single_integrator_and_frontier(db: Database, data_dir: Path) -> None:
    import pytest
    from sqlalchemy import text as sql

    from carecollect.audit import Actor, record
    from carecollect.audit.integrator import INTEGRATOR_LOCK_KEY

    if not db.is_postgres:
        pytest.skip("advisory locks are PostgreSQL-only")
    record_events(db, 3)
    # Another integrator holds the lock: this one returns at once, doing nothing.
    with db.engine.connect() as holder:
        holder.execute(sql("SELECT pg_advisory_lock(:k)"), {"k": INTEGRATOR_LOCK_KEY})
        result = run_integrator(db, data_dir)
        assert result.skipped
        holder.execute(sql("SELECT pg_advisory_unlock(:k)"), {"k": INTEGRATOR_LOCK_KEY})
        holder.commit()
    # An uncommitted recording transaction with a lower ordinal than a committed one:
    # the integrator must wait for it rather than skip past it.
    slow = db.new_session()
    record(slow, actor=Actor.system("slow"), action="import.run")
    record_events(db, 2, start=10)
    import threading

    def commit_later() -> None:
        import time

        time.sleep(0.5)
        slow.commit()
        slow.close()

    thread = threading.Thread(target=commit_later)
    thread.start()
    result = run_integrator(db, data_dir)
    thread.join()
    assert (result.integrated, result.tree_size) == (6, 6)
    with db.engine.connect() as conn:
        ordinals = [r[0] for r in conn.execute(
            sql("SELECT event_ordinal FROM audit_log_entry ORDER BY seq"))]
    assert ordinals == sorted(ordinals)
    assert verify(db, data_dir).ok


def test_packed_tree_runs_across_chunk_boundaries(db: Database, data_dir: Path) -> None:
    from carecollect.audit.tree_store import CHUNK
    from carecollect.audit.verification import prove, verify_database

    record_events(db, 1100)
    run_integrator(db, data_dir, batch_size=700)
    with db.engine.connect() as conn:
        runs = [(int(p), len(h) // 32) for p, h in conn.exec_driver_sql(
            "SELECT position, hashes FROM audit_tree_hash ORDER BY position")]
    # Runs are contiguous, never cross a multiple of CHUNK, and cover every stored hash.
    assert runs[0][0] == 0
    assert all(a + n == b for (a, n), (b, _) in itertools.pairwise(runs))
    assert all(a // CHUNK == (a + n - 1) // CHUNK for a, n in runs)
    assert sum(n for _, n in runs) == stored_hash_count(1100)
    verifier = default_verifier(key_path(data_dir))
    report = verify_database(db.engine, verifier=verifier, checkpoint_dir=data_dir / "checkpoints",
                             deep=True)
    assert report.ok, report.as_dict()
    for seq in (0, 511, 699, 700, 1023, 1024, 1099):
        assert prove(db.engine, seq, verifier=verifier)["tree_size"] == 1100
