"""`carecollect worker --once` through the real entry point on a fresh install."""

from __future__ import annotations

from pathlib import Path

from tests.cli.test_core_commands import run


def test_worker_once_runs_due_jobs_and_exits(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert run("init", "--data-dir", str(data)).returncode == 0
    result = run("worker", "--data-dir", str(data), "--once")
    assert result.returncode == 0, result.stderr
    # The scheduler enqueued this period's run of each periodic job (outreach reconcile
    # sweep, nightly plan, payment-plan sweep, audit integration, insights rollup refresh,
    # monthly insights report sweep, webhook outbox purge), and the worker ran them.
    assert result.stdout.strip() == "completed 7 failed 0 discarded 0 rescued 0"
    again = run("worker", "--data-dir", str(data), "--once")
    # Nothing is due again within its period. The exceptions are the audit integration
    # (every minute) and the insights rollup refresh (every 2 minutes): if the second run
    # starts in a new period they run once more.
    assert again.stdout.strip() in {
        "completed 0 failed 0 discarded 0 rescued 0",
        "completed 1 failed 0 discarded 0 rescued 0",
        "completed 2 failed 0 discarded 0 rescued 0",
    }


def test_worker_integrates_the_audit_trail(tmp_path: Path) -> None:
    """The periodic audit job signs what `init` recorded, so `audit verify` sees entries."""
    import json

    data = tmp_path / "data"
    assert run("init", "--data-dir", str(data)).returncode == 0
    assert run("worker", "--data-dir", str(data), "--once").returncode == 0
    verified = run("audit", "verify", "--data-dir", str(data), "--json")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    report = json.loads(verified.stdout)
    assert report["ok"] is True
    assert report["tree_size"] >= 2  # organization creation and the first admin, at least
