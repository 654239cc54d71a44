"""Periodic jobs: enqueued by whichever worker holds the scheduler lock.

On PostgreSQL a tick runs only in the worker that wins `pg_try_advisory_xact_lock`; on
SQLite there is a single in-process worker. Either way each run's `unique_key`
(`cron:<name>:<period start>`) makes the enqueue idempotent, so a tick repeated by two
workers, or after a restart, never doubles a run.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func, select

from carecollect.db import Database
from carecollect.kit.jobs.queue import enqueue_many
from carecollect.kit.jobs.registry import PeriodicSpec, TaskRegistry

SCHEDULER_LOCK_KEY = 0x6361_7265_6A6F_6273  # "carejobs"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def period_start(spec: PeriodicSpec, now: datetime) -> datetime:
    step = spec.every.total_seconds()
    since = (now - _EPOCH - spec.offset).total_seconds()
    return _EPOCH + spec.offset + (spec.every * int(since // step))


def run_key(spec: PeriodicSpec, now: datetime) -> str:
    return f"cron:{spec.name}:{period_start(spec, now).strftime('%Y%m%dT%H%M%SZ')}"


def tick(db: Database, registry: TaskRegistry, now: datetime) -> int:
    """Enqueue the current period's run of every periodic job; returns how many were new
    (0 when another worker holds the scheduler lock)."""
    if not registry.periodic:
        return 0
    with db.system_session() as session:
        if db.is_postgres:
            got = session.execute(
                select(func.pg_try_advisory_xact_lock(SCHEDULER_LOCK_KEY))
            ).scalar_one()
            if not got:
                return 0
        specs = [
            {
                "kind": spec.kind,
                "args": spec.args,
                "queue": spec.queue,
                "scheduled_at": period_start(spec, now),
                "unique_key": run_key(spec, now),
                "max_attempts": 3,
            }
            for spec in registry.periodic.values()
        ]
        return len(enqueue_many(session, specs))
