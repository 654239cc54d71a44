"""`carecollect worker`: run the job worker and scheduler in the foreground."""

from __future__ import annotations

import signal
import threading
from typing import Annotated

import typer

from carecollect.cli.common import DataDirOption, open_context


def worker(
    data_dir: DataDirOption = None,
    once: Annotated[bool, typer.Option("--once", help="Run due jobs, then exit.")] = False,
    batch: Annotated[int, typer.Option("--batch", min=1, max=500)] = 20,
    queue: Annotated[list[str] | None, typer.Option("--queue", help="Queues to serve.")] = None,
) -> None:
    """Run the job worker and the scheduler (several may run against PostgreSQL)."""
    from carecollect.kit.jobs.registry import load_task_modules
    from carecollect.kit.jobs.worker import Worker
    from carecollect.worker_resources import build_worker_resources

    ctx = open_context(data_dir)
    try:
        w = Worker(ctx.db, ctx.keys, registry=load_task_modules(install_periodic=True),
                   resources=build_worker_resources(ctx.settings, ctx.db, ctx.keys),
                   batch_size=batch,
                   queues=queue or None)
        if once:
            stats = w.drain()
        else:
            stop = threading.Event()
            for sig in (signal.SIGINT, signal.SIGTERM):
                signal.signal(sig, lambda *_: stop.set())
            stats = w.run(stop)
        typer.echo(f"completed {stats.completed} failed {stats.failed} "
                   f"discarded {stats.discarded} rescued {stats.rescued}")
    finally:
        ctx.close()


def register(app: typer.Typer) -> None:
    app.command("worker")(worker)
