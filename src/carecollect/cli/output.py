"""The CLI's own output helpers: the only place that writes to stdout/stderr.

Library code never prints (ruff T20); commands go through these so that nothing but
deliberate, PHI-free output reaches a terminal.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.console import Console

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


def emit(text: str) -> None:
    """Write one line to stdout."""
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def emit_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, sort_keys=True, default=str) + "\n")
    sys.stdout.flush()


def fail(message: str) -> None:
    """Write one clear error line to stderr (the caller chooses the exit code)."""
    sys.stderr.write(f"error: {message}\n")
    sys.stderr.flush()
