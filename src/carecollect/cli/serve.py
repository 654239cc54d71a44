"""`carecollect serve`: the web app (staff app, REST API, health and metrics) with uvicorn,
and the in-process audit integrator of the embedded default."""

from __future__ import annotations

import threading
from typing import Annotated

import typer

from carecollect.cli.common import Context, DataDirOption, open_context
from carecollect.cli.output import emit


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)


def _integrate_forever(ctx: Context, stop: threading.Event, interval: float) -> None:
    """Sequence and sign pending audit events every `interval` seconds (embedded mode:
    the worker issue will own this job; until then the server runs it in a thread)."""
    import structlog

    from carecollect.audit.integrator import integrate
    from carecollect.audit.keys import load_signer

    settings = ctx.settings
    signer = load_signer(settings.resolved_audit_signing_key_path)
    while not stop.wait(interval):
        try:
            integrate(
                ctx.db.engine,
                signer=signer,
                checkpoint_dir=settings.resolved_checkpoint_dir,
            )
        except Exception as exc:
            # The next round retries; the log line carries the error type only.
            structlog.get_logger("carecollect.serve").warning(
                "audit.integrate_failed", error_type=type(exc).__name__
            )


def serve(
    data_dir: DataDirOption = None,
    host: Annotated[str | None, typer.Option(help="Address to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on.")] = None,
    integrate_every: Annotated[
        float, typer.Option(help="Seconds between audit integration rounds (0 = off).")
    ] = 5.0,
    run_worker: Annotated[
        bool | None,
        typer.Option(
            "--worker/--no-worker",
            help="Run the job worker in-process (default: on with the embedded SQLite).",
        ),
    ] = None,
) -> None:
    """Serve the staff app (/app), the REST API (/api/v1), /healthz and /metrics."""
    import uvicorn

    from carecollect.app import create_app

    ctx = open_context(data_dir)
    settings = ctx.settings
    if host is not None:
        settings.host = host
    if port is not None:
        settings.port = port
    ctx.db.check_connection()
    app = create_app(settings, db=ctx.db, keys=ctx.keys)
    stop = threading.Event()
    worker = None
    in_process = None
    if run_worker is None:
        run_worker = settings.is_sqlite
    if run_worker:
        from carecollect.kit.jobs.worker import start_in_process_worker
        from carecollect.worker_resources import build_worker_resources

        in_process = start_in_process_worker(
            ctx.db, ctx.keys, resources=build_worker_resources(settings, ctx.db, ctx.keys)
        )
    if integrate_every > 0:
        worker = threading.Thread(
            target=_integrate_forever, args=(ctx, stop, integrate_every), daemon=True
        )
        worker.start()
    scheme = "https" if settings.tls_enabled else "http"
    emit(f"serving on {scheme}://{settings.host}:{settings.port}/app/ (Ctrl-C to stop)")
    try:
        uvicorn.run(
            app,
            host=settings.host,
            port=settings.port,
            log_level="warning",
            access_log=False,  # URLs carry ids only, but access logs are not needed
            proxy_headers=True,
            server_header=False,
        )
    finally:
        stop.set()
        if in_process is not None:
            in_process.stop()
        ctx.close()
