"""Job queue, scheduler and worker (ARCHITECTURE.md §6).

Public API: `enqueue`, `enqueue_many`, `task`, `JobContext`, `ClaimedJob`, the error
types (`RetryableError`, `TerminalError`, `Snooze`), `Worker` and
`start_in_process_worker`. Import the worker lazily: it pulls in the key manager.
"""

from carecollect.kit.jobs.queue import (
    ClaimedJob,
    JobError,
    RetryableError,
    Snooze,
    TerminalError,
    backoff_seconds,
    enqueue,
    enqueue_many,
)
from carecollect.kit.jobs.registry import JobContext, PeriodicSpec, registry, task

__all__ = [
    "ClaimedJob",
    "JobContext",
    "JobError",
    "PeriodicSpec",
    "RetryableError",
    "Snooze",
    "TerminalError",
    "backoff_seconds",
    "enqueue",
    "enqueue_many",
    "registry",
    "task",
]
