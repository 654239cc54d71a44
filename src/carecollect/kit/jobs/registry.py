"""Handlers and periodic jobs, registered by the domains in their `tasks.py` modules.

A domain writes::

    from carecollect.kit.jobs import JobContext, ClaimedJob, task

    @task("outreach.deliver", queue="outreach")
    def deliver(ctx: JobContext, job: ClaimedJob) -> None: ...

and lists its module in `TASK_MODULES` below so every worker imports it.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from carecollect.kit.models import utcnow

if TYPE_CHECKING:
    from carecollect.db import Database
    from carecollect.kit.crypto.keys import KeyManager
    from carecollect.kit.jobs.queue import ClaimedJob

# Modules whose import registers handlers (kept as strings: the kit imports no domain).
TASK_MODULES: list[str] = [
    "carecollect.outreach.tasks",
    "carecollect.outreach.planner_tasks",
    "carecollect.payment_plan.tasks",
    "carecollect.payment.tasks",
    "carecollect.audit.tasks",
    "carecollect.insight.tasks",
    "carecollect.integration.tasks",
    "carecollect.ingest.import_run_tasks",
]


@dataclass
class JobContext:
    """What a handler gets besides its job: the database, the key manager, a clock and
    named resources (channel providers, rate limiters) set up by whoever runs the worker."""

    db: Database
    keys: KeyManager | None
    worker_id: str
    clock: Callable[[], datetime] = utcnow
    resources: dict[str, Any] = field(default_factory=dict)


Handler = Callable[[JobContext, "ClaimedJob"], None]
# A batch handler runs every claimed job of its kind in one call and returns each job's
# outcome: None (done), `Snooze`, or the exception that failed it (retried or discarded
# like a single handler's). An exception it raises itself fails every job it was given.
BatchHandler = Callable[[JobContext, list["ClaimedJob"]], dict[Any, BaseException | None]]


@dataclass(frozen=True)
class TaskSpec:
    kind: str
    handler: Handler
    queue: str = "default"
    max_attempts: int = 20
    batch_handler: BatchHandler | None = None


@dataclass(frozen=True)
class PeriodicSpec:
    """Enqueue `kind` once per `every` (aligned to the epoch plus `offset`)."""

    name: str
    kind: str
    every: timedelta
    queue: str = "default"
    offset: timedelta = timedelta(0)
    args: dict[str, Any] = field(default_factory=dict)


class TaskRegistry:
    def __init__(self) -> None:
        self.tasks: dict[str, TaskSpec] = {}
        self.periodic: dict[str, PeriodicSpec] = {}

    def register(self, kind: str, handler: Handler, *, queue: str = "default",
                 max_attempts: int = 20, batch_handler: BatchHandler | None = None) -> None:
        """Register `handler` for `kind`; with `batch_handler`, the worker hands it all
        jobs of `kind` it claimed together (and `handler` stays the one-job form)."""
        self.tasks[kind] = TaskSpec(kind, handler, queue, max_attempts, batch_handler)

    def add_periodic(self, spec: PeriodicSpec) -> None:
        self.periodic[spec.name] = spec

    def task(self, kind: str, *, queue: str = "default",
             max_attempts: int = 20) -> Callable[[Handler], Handler]:
        def decorate(fn: Handler) -> Handler:
            self.register(kind, fn, queue=queue, max_attempts=max_attempts)
            return fn

        return decorate

    def queues(self) -> list[str]:
        return sorted({spec.queue for spec in self.tasks.values()} | {"default"})


registry = TaskRegistry()
task = registry.task


def load_task_modules(modules: list[str] | None = None, *,
                      install_periodic: bool = False) -> TaskRegistry:
    """Import every domain's task module (idempotent) and return the default registry.

    With `install_periodic` (the `carecollect worker` command and the embedded server's
    worker), each module's `install_periodic()` also puts its periodic jobs (nightly plan,
    payment sweep) on the default registry; tests leave them off.
    """
    for name in modules or TASK_MODULES:
        module = importlib.import_module(name)
        installer = getattr(module, "install_periodic", None)
        if install_periodic and callable(installer):
            installer()
    return registry
