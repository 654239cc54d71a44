"""The job queue: transactional enqueue, unique keys, claims, retries, rescue, scheduler."""

from __future__ import annotations

import random
import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from carecollect.db import Database
from carecollect.kit.jobs import (
    ClaimedJob,
    JobContext,
    RetryableError,
    Snooze,
    TerminalError,
    scheduler,
)
from carecollect.kit.jobs import queue as q
from carecollect.kit.jobs.models import Job
from carecollect.kit.jobs.registry import PeriodicSpec, TaskRegistry
from carecollect.kit.jobs.worker import InProcessWorker, Worker

NOW = datetime(2026, 3, 10, 15, 0, tzinfo=UTC)


def _jobs(db: Database) -> list[Job]:
    with db.system_session() as session:
        return list(session.scalars(select(Job).order_by(Job.created_at, Job.id)))


def test_enqueue_is_part_of_the_callers_transaction(db: Database) -> None:
    def enqueue_then_fail() -> None:
        with db.system_session() as session:
            q.enqueue(session, "demo.kind", {"x": 1})
            raise RuntimeError("roll back")

    with pytest.raises(RuntimeError):
        enqueue_then_fail()
    assert _jobs(db) == []
    with db.system_session() as session:
        job_id = q.enqueue(session, "demo.kind", {"x": 1})
    jobs = _jobs(db)
    assert [j.id for j in jobs] == [job_id]
    assert (jobs[0].state, jobs[0].attempt, jobs[0].args) == ("available", 0, {"x": 1})


def test_args_are_ids_and_scalars_only(db: Database) -> None:
    with pytest.raises(ValueError, match="ids and small scalars"), db.system_session() as s:
        q.enqueue(s, "demo.kind", {"blob": {"nested": "no"}})
    with pytest.raises(ValueError, match="200 characters"), db.system_session() as s:
        q.enqueue(s, "demo.kind", {"text": "x" * 201})


def test_unique_key_makes_enqueue_idempotent(db: Database) -> None:
    with db.system_session() as session:
        first = q.enqueue(session, "demo.kind", unique_key="once")
        second = q.enqueue(session, "demo.kind", unique_key="once")
    with db.system_session() as session:
        third = q.enqueue(session, "demo.kind", unique_key="once")
    assert first is not None
    assert (second, third) == (None, None)
    assert len(_jobs(db)) == 1


def test_claim_leases_due_jobs_in_priority_order_once(db: Database) -> None:
    with db.system_session() as session:
        low = q.enqueue(session, "a", priority=5, scheduled_at=NOW - timedelta(minutes=2))
        high = q.enqueue(session, "b", priority=-1, scheduled_at=NOW - timedelta(minutes=1))
        q.enqueue(session, "c", scheduled_at=NOW + timedelta(hours=1))  # not due
        q.enqueue(session, "d", queue="other", scheduled_at=NOW)  # other queue
    got = q.claim(db, "w1", limit=1, now=NOW)
    assert [j.id for j in got] == [high]
    got2 = q.claim(db, "w2", limit=10, now=NOW)
    assert [j.id for j in got2] == [low]
    assert q.claim(db, "w3", limit=10, now=NOW) == []
    states = {j.kind: (j.state, j.locked_by, j.attempt) for j in _jobs(db)}
    assert states == {"a": ("running", "w2", 1), "b": ("running", "w1", 1),
                      "c": ("available", None, 0), "d": ("available", None, 0)}


def test_concurrent_claims_are_disjoint(db: Database) -> None:
    with db.system_session() as session:
        q.enqueue_many(session, [{"kind": "k", "scheduled_at": NOW} for _ in range(60)])
    results: list[list[ClaimedJob]] = []
    lock = threading.Lock()

    def claimer(name: str) -> None:
        while True:
            got = q.claim(db, name, limit=7, now=NOW)
            if not got:
                return
            with lock:
                results.append(got)

    threads = [threading.Thread(target=claimer, args=(f"w{i}",)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ids = [j.id for batch in results for j in batch]
    assert len(ids) == 60
    assert len(set(ids)) == 60


def test_backoff_is_attempt_to_the_fourth_plus_bounded_jitter() -> None:
    rng = random.Random(7)
    for attempt in (1, 2, 3, 5, 10):
        value = q.backoff_seconds(attempt, rng)
        assert attempt**4 <= value <= attempt**4 + 10 * attempt


def test_retry_then_discard_after_max_attempts(db: Database) -> None:
    with db.system_session() as session:
        q.enqueue(session, "k", max_attempts=2, scheduled_at=NOW)
    [job] = q.claim(db, "w", now=NOW)
    assert q.fail(db, "w", job, RetryableError("net_down"), now=NOW,
                  rng=random.Random(1)) == "available"
    [row] = _jobs(db)
    assert row.state == "available"
    assert NOW + timedelta(seconds=1) <= row.scheduled_at <= NOW + timedelta(seconds=11)
    assert row.errors == [{"attempt": 1, "at": NOW.isoformat(), "error": "RetryableError",
                           "code": "net_down"}]
    assert q.claim(db, "w", now=NOW) == []  # not due yet
    [job] = q.claim(db, "w", now=NOW + timedelta(seconds=12))
    assert job.attempt == 2
    assert q.fail(db, "w", job, ValueError("may quote PHI"), now=NOW) == "discarded"
    [row] = _jobs(db)
    assert row.state == "discarded"
    assert row.errors[-1] == {"attempt": 2, "at": NOW.isoformat(), "error": "ValueError",
                              "code": None}
    assert "PHI" not in str(row.errors)


def test_terminal_error_discards_at_once(db: Database) -> None:
    with db.system_session() as session:
        q.enqueue(session, "k", scheduled_at=NOW)
    [job] = q.claim(db, "w", now=NOW)
    assert q.fail(db, "w", job, TerminalError("compliance_block"), now=NOW) == "discarded"


def test_rescuer_requeues_expired_leases_and_fences_the_old_worker(db: Database) -> None:
    with db.system_session() as session:
        q.enqueue(session, "k", scheduled_at=NOW)
    [job] = q.claim(db, "dead", now=NOW, lease=timedelta(seconds=30))
    assert q.rescue_expired(db, now=NOW + timedelta(seconds=10)) == 0
    assert q.rescue_expired(db, now=NOW + timedelta(seconds=31)) == 1
    [again] = q.claim(db, "alive", now=NOW + timedelta(seconds=31))
    assert (again.id, again.attempt) == (job.id, 2)
    # The dead worker waking up cannot complete or fail what it no longer holds.
    assert q.complete(db, "dead", [job.id]) == 0
    assert q.fail(db, "dead", job, RetryableError("x")) == "lost"
    assert q.complete(db, "alive", [job.id]) == 1
    assert _jobs(db)[0].state == "completed"


def test_scheduler_enqueues_each_period_once(db: Database) -> None:
    reg = TaskRegistry()
    reg.add_periodic(PeriodicSpec("sweep", "demo.sweep", every=timedelta(minutes=15)))
    assert scheduler.tick(db, reg, NOW) == 1
    assert scheduler.tick(db, reg, NOW + timedelta(minutes=14)) == 0
    assert scheduler.tick(db, reg, NOW + timedelta(minutes=15)) == 1
    keys = sorted(j.unique_key or "" for j in _jobs(db))
    assert keys == ["cron:sweep:20260310T150000Z", "cron:sweep:20260310T151500Z"]


def test_worker_runs_handlers_and_records_outcomes(db: Database) -> None:
    reg = TaskRegistry()
    seen: list[int] = []

    @reg.task("demo.ok")
    def ok(ctx: JobContext, job: ClaimedJob) -> None:
        seen.append(int(job.args["n"]))

    @reg.task("demo.flaky")
    def flaky(ctx: JobContext, job: ClaimedJob) -> None:
        raise RetryableError("flaky")

    @reg.task("demo.snooze")
    def snoozing(ctx: JobContext, job: ClaimedJob) -> None:
        raise Snooze(60)

    with db.system_session() as session:
        for n in range(3):
            q.enqueue(session, "demo.ok", {"n": n}, scheduled_at=NOW)
        q.enqueue(session, "demo.flaky", scheduled_at=NOW)
        q.enqueue(session, "demo.snooze", scheduled_at=NOW)
        q.enqueue(session, "demo.unknown", scheduled_at=NOW)
    worker = Worker(db, None, registry=reg, clock=lambda: NOW, run_scheduler=False)
    stats = worker.drain()
    assert sorted(seen) == [0, 1, 2]
    assert (stats.completed, stats.failed, stats.snoozed, stats.discarded) == (3, 1, 1, 1)
    by_kind = {j.kind: (j.state, j.attempt) for j in _jobs(db)}
    assert by_kind == {"demo.ok": ("completed", 1), "demo.flaky": ("available", 1),
                       "demo.snooze": ("available", 0), "demo.unknown": ("discarded", 1)}


def test_in_process_worker_thread_starts_and_stops(db: Database) -> None:
    reg = TaskRegistry()
    done = threading.Event()

    @reg.task("demo.ok")
    def ok(ctx: JobContext, job: ClaimedJob) -> None:
        done.set()

    with db.system_session() as session:
        q.enqueue(session, "demo.ok")
    runner = InProcessWorker(Worker(db, None, registry=reg, poll_interval=0.05)).start()
    try:
        assert done.wait(10)
    finally:
        runner.stop()
    assert not runner.thread.is_alive()
