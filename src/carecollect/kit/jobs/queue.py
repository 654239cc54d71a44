"""Enqueue, claim, finish, retry and rescue jobs (ARCHITECTURE.md §6).

* `enqueue` is an INSERT in the caller's transaction: the job exists exactly when the
  change that asked for it commits. With a `unique_key` it is idempotent
  (`ON CONFLICT DO NOTHING`): the second enqueue of the same key is a no-op, which is how
  periodic runs and "one delivery job per outreach attempt" are made exactly-once.
* `claim` takes up to `n` due jobs and leases them to one worker. PostgreSQL:
  `WITH picked AS (SELECT ... FOR UPDATE SKIP LOCKED LIMIT n) UPDATE ... RETURNING`, so
  any number of workers claim disjoint jobs without waiting on each other. SQLite: the
  transaction starts with `BEGIN IMMEDIATE` (the database write lock) and runs one
  `UPDATE ... WHERE id IN (SELECT ... LIMIT n) RETURNING`.
* A failed job is retried after `attempt^4 + jitter` seconds unless the error is terminal
  or the attempts are used up (then it is `discarded`). Errors are stored as class names and
  fixed codes only, never exception text (third-party messages may quote PHI).
* `rescue_expired` returns jobs whose lease ran out (a killed worker) to the queue.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Connection, Table, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from carecollect.db import Database
from carecollect.kit.ids import uuid7
from carecollect.kit.jobs.models import Job
from carecollect.kit.jobs.sessions import relaxed_commit
from carecollect.kit.models import utcnow

DEFAULT_LEASE = timedelta(minutes=5)
_SAFE_ARG_TYPES = (str, int, bool, type(None))


class JobError(Exception):
    """Base of the errors a handler raises on purpose; `code` is a fixed, PHI-free word."""

    retryable = True

    def __init__(self, code: str, message: str | None = None) -> None:
        super().__init__(message or code)
        self.code = code


class RetryableError(JobError):
    """Transient: network trouble, a provider 5xx or 429. Retried with backoff."""

    retryable = True


class TerminalError(JobError):
    """Permanent: validation, a provider 4xx, a compliance block, a missing BAA."""

    retryable = False


class Snooze(Exception):  # noqa: N818 - a control-flow signal, not an error
    """Run the job again later without using up an attempt (rate limits, re-timing)."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"snooze {seconds:.3f}s")
        self.seconds = max(0.0, seconds)


@dataclass(frozen=True, slots=True)
class ClaimedJob:
    id: uuid.UUID
    queue: str
    kind: str
    args: dict[str, Any]
    attempt: int
    max_attempts: int
    organization_id: uuid.UUID | None


def backoff_seconds(attempt: int, rng: random.Random | None = None) -> float:
    """`attempt^4 + jitter` seconds; the jitter (up to 10 s per attempt) spreads retries of
    a batch that failed together so they do not hit a recovering provider at once."""
    r = rng or random
    return float(attempt**4) + r.uniform(0, 10.0 * attempt)


def _check_args(args: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in args.items():
        if isinstance(value, uuid.UUID):
            value = str(value)
        if not isinstance(value, _SAFE_ARG_TYPES):
            raise ValueError("job args are ids and small scalars only (str, int, bool, uuid)")
        if isinstance(value, str) and len(value) > 200:
            raise ValueError("job arg strings are limited to 200 characters")
        out[key] = value
    return out


def _insert(dialect: str) -> Any:
    table = cast(Table, Job.__table__)
    return postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)


def enqueue(
    session: Session | Connection,
    kind: str,
    args: dict[str, Any] | None = None,
    *,
    queue: str = "default",
    organization_id: uuid.UUID | None = None,
    priority: int = 0,
    scheduled_at: datetime | None = None,
    max_attempts: int = 20,
    unique_key: str | None = None,
) -> uuid.UUID | None:
    """Insert a job in the caller's transaction; return its id, or None when a job with
    the same `unique_key` already exists (idempotent enqueue)."""
    rows = enqueue_many(
        session,
        [
            {
                "kind": kind,
                "args": args or {},
                "queue": queue,
                "organization_id": organization_id,
                "priority": priority,
                "scheduled_at": scheduled_at,
                "max_attempts": max_attempts,
                "unique_key": unique_key,
            }
        ],
    )
    return rows[0] if rows else None


def enqueue_many(session: Session | Connection, jobs: Sequence[dict[str, Any]]) -> list[uuid.UUID]:
    """Bulk form of `enqueue` (one multi-row INSERT); returns the ids actually inserted."""
    if not jobs:
        return []
    now = utcnow()
    values = [
        {
            "id": uuid7(),
            "organization_id": spec.get("organization_id"),
            "queue": spec.get("queue", "default"),
            "kind": spec["kind"],
            "args": _check_args(spec.get("args") or {}),
            "state": "available",
            "priority": spec.get("priority", 0),
            "attempt": 0,
            "max_attempts": spec.get("max_attempts", 20),
            "scheduled_at": spec.get("scheduled_at") or now,
            "errors": [],
            "unique_key": spec.get("unique_key"),
            "created_at": now,
        }
        for spec in jobs
    ]
    bind = session.get_bind() if isinstance(session, Session) else session
    stmt = _insert(bind.dialect.name)
    if any(v["unique_key"] for v in values):
        stmt = stmt.on_conflict_do_nothing(index_elements=["unique_key"])
    # executemany of one cached statement (SQLAlchemy batches it into multi-row INSERTs
    # with RETURNING): compiling a fresh N-row VALUES statement costs milliseconds per row.
    result = session.execute(stmt.returning(Job.__table__.c.id), values)
    return [row[0] for row in result]


def claim(
    db: Database,
    worker_id: str,
    *,
    queues: Iterable[str] = ("default",),
    limit: int = 10,
    now: datetime | None = None,
    lease: timedelta = DEFAULT_LEASE,
) -> list[ClaimedJob]:
    """Lease up to `limit` due jobs of `queues` to `worker_id` and return them."""
    now = now or utcnow()
    queues = list(queues)
    picked = (
        select(Job.id)
        .where(Job.state == "available", Job.queue.in_(queues), Job.scheduled_at <= now)
        .order_by(Job.priority, Job.scheduled_at, Job.id)
        .limit(limit)
    )
    values = {
        "state": "running",
        "attempt": Job.attempt + 1,
        "leased_until": now + lease,
        "locked_by": worker_id,
        "attempted_at": now,
    }
    returning = (
        Job.id, Job.queue, Job.kind, Job.args, Job.attempt, Job.max_attempts, Job.organization_id
    )
    if db.is_postgres:
        cte = picked.with_for_update(skip_locked=True).cte("picked")
        stmt = update(Job).where(Job.id == cte.c.id).values(values).returning(*returning)
        with db.engine.begin() as conn:
            relaxed_commit(conn)
            rows = conn.execute(stmt).all()
    else:
        stmt = (
            update(Job)
            .where(Job.id.in_(picked.scalar_subquery()))
            .values(values)
            .returning(*returning)
        )
        with immediate_connection(db) as conn:
            rows = conn.execute(stmt).all()
    jobs = [ClaimedJob(*row) for row in rows]
    jobs.sort(key=lambda j: j.id)
    return jobs


class immediate_connection:  # noqa: N801 - used as a context manager like `engine.begin()`
    """A Core connection in a transaction that holds SQLite's write lock from its first
    statement (`BEGIN IMMEDIATE`); a plain transaction on PostgreSQL."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._conn: Connection | None = None
        self._tx: Any = None

    def __enter__(self) -> Connection:
        conn = self._db.engine.connect()
        conn.info["sqlite_begin"] = "BEGIN IMMEDIATE"
        try:
            self._tx = conn.begin()
        except BaseException:
            conn.info.pop("sqlite_begin", None)
            conn.close()
            raise
        self._conn = conn
        return conn

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        conn = self._conn
        if conn is None:
            return
        try:
            if exc_type is None:
                self._tx.commit()
            else:
                self._tx.rollback()
        finally:
            conn.info.pop("sqlite_begin", None)
            conn.close()


def complete(db: Database, worker_id: str, job_ids: Sequence[uuid.UUID],
             *, now: datetime | None = None) -> int:
    """Mark jobs completed, only while this worker still holds them (a rescued job that
    another worker re-claimed is not touched)."""
    if not job_ids:
        return 0
    now = now or utcnow()
    with db.engine.begin() as conn:
        relaxed_commit(conn)
        result = conn.execute(
            update(Job)
            .where(Job.id.in_(list(job_ids)), Job.state == "running", Job.locked_by == worker_id)
            .values(state="completed", finished_at=now, leased_until=None)
        )
    return int(result.rowcount or 0)


def _error_entry(job: ClaimedJob, exc: BaseException, now: datetime) -> dict[str, Any]:
    code = exc.code if isinstance(exc, JobError) else None
    return {"attempt": job.attempt, "at": now.isoformat(), "error": type(exc).__name__,
            "code": code}


def fail(
    db: Database,
    worker_id: str,
    job: ClaimedJob,
    exc: BaseException,
    *,
    now: datetime | None = None,
    rng: random.Random | None = None,
) -> str:
    """Record a failed run; retry with backoff or discard. Returns the new state."""
    now = now or utcnow()
    terminal = isinstance(exc, JobError) and not exc.retryable
    if terminal or job.attempt >= job.max_attempts:
        state, when = "discarded", now
    else:
        state, when = "available", now + timedelta(seconds=backoff_seconds(job.attempt, rng))
    entry = _error_entry(job, exc, now)
    with db.engine.begin() as conn:
        current = conn.execute(
            select(Job.errors).where(Job.id == job.id, Job.locked_by == worker_id,
                                     Job.state == "running")
        ).scalar_one_or_none()
        if current is None:
            return "lost"
        errors = [*list(current)[-9:], entry]
        conn.execute(
            update(Job)
            .where(Job.id == job.id, Job.locked_by == worker_id, Job.state == "running")
            .values(
                state=state,
                scheduled_at=when,
                errors=errors,
                leased_until=None,
                locked_by=None,
                finished_at=now if state == "discarded" else None,
            )
        )
    return state


def snooze(db: Database, worker_id: str, job: ClaimedJob, seconds: float,
           *, now: datetime | None = None) -> None:
    """Put a job back for later without consuming an attempt."""
    now = now or utcnow()
    with db.engine.begin() as conn:
        conn.execute(
            update(Job)
            .where(Job.id == job.id, Job.locked_by == worker_id, Job.state == "running")
            .values(
                state="available",
                attempt=Job.attempt - 1,
                scheduled_at=now + timedelta(seconds=seconds),
                leased_until=None,
                locked_by=None,
            )
        )


def rescue_expired(db: Database, *, now: datetime | None = None) -> int:
    """Return running jobs whose lease expired (their worker died) to the queue, or
    discard them when their attempts are used up. Handlers must tolerate a second run:
    the delivery job does, because it checks the attempt's state first."""
    now = now or utcnow()
    with db.engine.begin() as conn:
        discarded = conn.execute(
            update(Job)
            .where(Job.state == "running", Job.leased_until < now,
                   Job.attempt >= Job.max_attempts)
            .values(state="discarded", finished_at=now, leased_until=None, locked_by=None)
        ).rowcount
        requeued = conn.execute(
            update(Job)
            .where(Job.state == "running", Job.leased_until < now)
            .values(state="available", scheduled_at=now, leased_until=None, locked_by=None)
        ).rowcount
    return int(discarded or 0) + int(requeued or 0)


def counts(db: Database) -> dict[str, int]:
    """Jobs per state (for `carecollect worker --status`, metrics and tests)."""
    with db.engine.connect() as conn:
        rows = conn.execute(select(Job.state, func.count()).group_by(Job.state)).all()
    return {state: int(n) for state, n in rows}
