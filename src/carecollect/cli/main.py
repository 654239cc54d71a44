"""Entry point of the `carecollect` command.

Each command group lives in its own module and is registered here. Every command accepts
`--data-dir` (or CARECOLLECT_DATA_DIR). Exit codes: 0 success, 1 failure, 2 bad input; an
error is one line on stderr that never contains PHI.
"""

from __future__ import annotations

import os
import sys

import typer

from carecollect.cli.output import fail
from carecollect.errors import AppError

app = typer.Typer(
    name="carecollect",
    help="First-party patient collections with HIPAA, TCPA and FDCPA/Reg F guardrails.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _register() -> None:
    # Command groups register themselves here, one import each.
    from carecollect.cli import core

    core.register(app)
    from carecollect.cli.audit import audit_app

    app.add_typer(audit_app)
    from carecollect.cli import compliance

    app.add_typer(compliance.app, name="compliance")
    from carecollect.cli import serve

    serve.register(app)
    from carecollect.cli import ingest

    app.add_typer(ingest.app, name="import")
    from carecollect.cli import worker

    worker.register(app)
    from carecollect.cli import outreach

    app.add_typer(outreach.app, name="outreach")
    from carecollect.portal import cli as portal_cli

    app.add_typer(portal_cli.app, name="portal")


def main() -> None:
    _register()
    try:
        app(standalone_mode=True)
    except AppError as exc:
        fail(exc.message)
        sys.exit(exc.exit_code)
    except Exception as exc:
        # An unexpected error's text may quote data; show only its type unless debugging.
        if os.environ.get("CARECOLLECT_DEBUG") == "1":
            raise
        fail(f"unexpected {type(exc).__name__}; rerun with CARECOLLECT_DEBUG=1 for details")
        sys.exit(1)


if __name__ == "__main__":
    main()
