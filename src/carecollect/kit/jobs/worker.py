"""The worker: claim a batch, run each job's handler, record the outcome; tick the
scheduler and the lease rescuer between batches.

`carecollect worker` runs `Worker.run()` in the foreground; the embedded (SQLite) web
server calls `start_in_process_worker()` to run the same loop in a daemon thread.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from carecollect.db import Database
from carecollect.kit.crypto.keys import KeyManager
from carecollect.kit.jobs import queue as q
from carecollect.kit.jobs import scheduler
from carecollect.kit.jobs.registry import (
    BatchHandler,
    JobContext,
    TaskRegistry,
    load_task_modules,
)
from carecollect.kit.models import utcnow

log = logging.getLogger("carecollect.jobs")


@dataclass
class WorkerStats:
    completed: int = 0
    failed: int = 0
    discarded: int = 0
    snoozed: int = 0
    rescued: int = 0
    scheduled: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)


def default_worker_id() -> str:
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{threading.get_ident() % 100000}"


class Worker:
    def __init__(
        self,
        db: Database,
        keys: KeyManager | None,
        *,
        registry: TaskRegistry | None = None,
        queues: Iterable[str] | None = None,
        batch_size: int = 20,
        lease: timedelta = q.DEFAULT_LEASE,
        poll_interval: float = 0.5,
        worker_id: str | None = None,
        resources: dict[str, Any] | None = None,
        clock: Callable[[], datetime] = utcnow,
        run_scheduler: bool = True,
        housekeeping_every: float = 10.0,
    ) -> None:
        self.registry = registry or load_task_modules()
        self.db = db
        self.queues = list(queues) if queues else self.registry.queues()
        self.batch_size = batch_size
        self.lease = lease
        self.poll_interval = poll_interval
        self.worker_id = worker_id or default_worker_id()
        self.clock = clock
        self.run_scheduler = run_scheduler
        self.housekeeping_every = housekeeping_every
        self._last_housekeeping = 0.0
        self.stats = WorkerStats()
        self.context = JobContext(db=db, keys=keys, worker_id=self.worker_id, clock=clock,
                                  resources=resources or {})

    # -- one step ---------------------------------------------------------------------
    def housekeeping(self) -> None:
        """Rescue expired leases and enqueue due periodic jobs."""
        now = self.clock()
        self.stats.rescued += q.rescue_expired(self.db, now=now)
        if self.run_scheduler:
            self.stats.scheduled += scheduler.tick(self.db, self.registry, now)

    def run_once(self) -> int:
        """Claim and run one batch; returns the number of jobs run. Jobs whose kind has a
        batch handler are given to it together; the others run one by one."""
        jobs = q.claim(self.db, self.worker_id, queues=self.queues, limit=self.batch_size,
                       now=self.clock(), lease=self.lease)
        done: list[Any] = []
        batches: dict[str, tuple[BatchHandler, list[q.ClaimedJob]]] = {}
        for job in jobs:
            spec = self.registry.tasks.get(job.kind)
            if spec is not None and spec.batch_handler is not None:
                batches.setdefault(job.kind, (spec.batch_handler, []))[1].append(job)
                continue
            try:
                if spec is None:
                    raise q.TerminalError("unknown_job_kind")
                spec.handler(self.context, job)
            except Exception as exc:
                self._settle(job, exc, done)
            else:
                self._settle(job, None, done)
        for handler, group in batches.values():
            try:
                outcomes = handler(self.context, group)
            except Exception as exc:
                outcomes = {job.id: exc for job in group}
            for job in group:
                self._settle(job, outcomes.get(job.id), done)
        if done:
            self.stats.completed += q.complete(self.db, self.worker_id, done, now=self.clock())
        return len(jobs)

    def _settle(self, job: q.ClaimedJob, exc: BaseException | None, done: list[Any]) -> None:
        """Record one job's outcome: done, snoozed, or failed (retry or discard)."""
        if exc is None:
            done.append(job.id)
            self.stats.by_kind[job.kind] = self.stats.by_kind.get(job.kind, 0) + 1
        elif isinstance(exc, q.Snooze):
            q.snooze(self.db, self.worker_id, job, exc.seconds, now=self.clock())
            self.stats.snoozed += 1
        else:
            state = q.fail(self.db, self.worker_id, job, exc, now=self.clock())
            code = exc.code if isinstance(exc, q.JobError) else None
            # Class name and code only: exception text may quote PHI.
            log.warning("job failed kind=%s id=%s error=%s code=%s state=%s", job.kind,
                        job.id, type(exc).__name__, code, state)
            if state == "discarded":
                self.stats.discarded += 1
            else:
                self.stats.failed += 1

    # -- the loop ---------------------------------------------------------------------
    def run(self, stop: threading.Event | None = None, *, until_idle: bool = False) -> WorkerStats:
        """Run until `stop` is set (or, with `until_idle`, until no job is due)."""
        stop = stop or threading.Event()
        while not stop.is_set():
            if time.monotonic() - self._last_housekeeping >= self.housekeeping_every:
                self._last_housekeeping = time.monotonic()
                try:
                    self.housekeeping()
                except Exception as exc:
                    log.warning("housekeeping failed error=%s", type(exc).__name__)
            try:
                ran = self.run_once()
            except Exception as exc:
                log.warning("claim failed error=%s", type(exc).__name__)
                ran = 0
                stop.wait(self.poll_interval)
            if ran == 0:
                if until_idle:
                    break
                stop.wait(self.poll_interval)
        return self.stats

    def drain(self, *, max_rounds: int = 1_000_000) -> WorkerStats:
        """Run due jobs until none is left (tests, `carecollect worker --once`)."""
        self.housekeeping()
        for _ in range(max_rounds):
            if self.run_once() == 0:
                break
        return self.stats


class InProcessWorker:
    """A worker loop in a daemon thread, for the embedded single-process setup."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._run, name="carecollect-worker", daemon=True)

    def _run(self) -> None:
        self.worker.run(self.stop_event)

    def start(self) -> InProcessWorker:
        self.thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self.stop_event.set()
        self.thread.join(timeout)


def start_in_process_worker(
    db: Database, keys: KeyManager | None, *, resources: dict[str, Any] | None = None,
    **options: Any,
) -> InProcessWorker:
    """Start the worker (and scheduler) in a daemon thread of the calling process; call
    `.stop()` on shutdown. Without `resources`, the outreach channels are built from the
    environment (`carecollect.channel.config.build_channels`)."""
    if resources is None:
        from carecollect.channel.config import build_resources

        resources = build_resources()
    options.setdefault("registry", load_task_modules(install_periodic=True))
    return InProcessWorker(Worker(db, keys, resources=resources, **options)).start()
