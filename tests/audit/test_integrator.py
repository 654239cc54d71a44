from __future__ import annotations

from pathlib import Path

from sqlalchemy import text

from carecollect.db import Database
from carecollect.kit.audit.checkpoint import open_checkpoint
from carecollect.kit.audit.merkle import stored_hash_count
from tests.audit.helpers import key_path, record_events, run_integrator, verify
from carecollect.audit.keys import default_verifier


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
        assert conn.execute(text("SELECT count(*) FROM audit_tree_hash")).scalar() == (
            stored_hash_count(25))
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
