"""Structured JSON logging that cannot carry PHI.

Log events go through `drop_phi`: only allow-listed keys (and keys ending in `_id`,
`_ids`, `_count`, `_ms`, `_seconds`) keep their values; every other key's value is
replaced by ``[redacted]``. String values that survive are scrubbed of anything shaped
like an e-mail address, a phone number, a date or a long digit run, and the event
message is scrubbed the same way. The policy is "log ids, never values".
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

SAFE_KEYS = frozenset(
    {
        "event",
        "level",
        "timestamp",
        "logger",
        "action",
        "outcome",
        "command",
        "status",
        "method",
        "path_template",
        "route",
        "channel",
        "kind",
        "rule",
        "rules",
        "decision",
        "count",
        "attempt",
        "queue",
        "state",
        "error_type",
        "backend",
        "version",
        "revision",
        "key_id",
        "batch",
        "duration",
        "exc_type",
    }
)
SAFE_SUFFIXES = ("_id", "_ids", "_count", "_ms", "_seconds", "_key_id")
REDACTED = "[redacted]"

_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_SCRUBBERS = [
    re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+"),  # e-mail
    re.compile(r"\+?\d[\d\s().-]{7,}\d"),  # phone-like and long digit runs
    re.compile(r"\b\d{4}-\d{2}-\d{2}\b"),  # ISO dates
    re.compile(r"\b\d{1,2}/\d{1,2}/\d{2,4}\b"),  # US dates
]


def scrub(text: str) -> str:
    for pattern in _SCRUBBERS:
        text = pattern.sub(REDACTED, text)
    return text


def _safe_key(key: str) -> bool:
    return key in SAFE_KEYS or key.endswith(SAFE_SUFFIXES)


def drop_phi(
    _logger: Any, _name: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: keep ids and counts, redact everything else."""
    for key in list(event_dict):
        value = event_dict[key]
        if not _safe_key(key):
            event_dict[key] = REDACTED
        elif isinstance(value, str) and not _UUID.fullmatch(value):
            # Ids are UUIDs; their digit groups would otherwise look like phone numbers.
            event_dict[key] = scrub(value)
    return event_dict


_configured = False


class _CurrentStderr:
    """Writes to whatever `sys.stderr` is at the moment of writing (test runners and
    daemons swap it; a logger must not keep writing to a stream that was closed)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def configure_logging(level: str = "INFO", *, stream: Any = None, force: bool = False) -> None:
    """JSON lines to stderr (or `stream`) for structlog and the standard library's loggers."""
    global _configured
    if _configured and not force:
        return
    stream = stream or _CurrentStderr()
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[*shared, drop_phi, structlog.processors.JSONRenderer(sort_keys=True)],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        logger_factory=structlog.PrintLoggerFactory(file=stream),
        cache_logger_on_first_use=not force,
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                drop_phi,
                structlog.processors.JSONRenderer(sort_keys=True),
            ],
            foreign_pre_chain=shared,
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    _configured = True


def get_logger(name: str) -> Any:
    return structlog.get_logger(name)


def reset_logging() -> None:
    """Forget the configuration (tests that configured a private stream call this)."""
    global _configured
    structlog.reset_defaults()
    logging.getLogger().handlers[:] = []
    _configured = False
