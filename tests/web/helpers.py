"""Database snapshots for "a denied request changed nothing and enqueued nothing"."""

from __future__ import annotations

import hashlib
from typing import Any

from sqlalchemy import inspect, text

from carecollect.db import Database

# Columns that sign-in bookkeeping legitimately touches on every authenticated request
# (session last-seen, API key last-used); everything else must stay byte-identical.
_TOUCHED = {("staff_session", "last_seen_at"), ("api_key", "last_used_at")}


def snapshot(db: Database) -> dict[str, Any]:
    result: dict[str, Any] = {}
    tables = sorted(inspect(db.engine).get_table_names())
    with db.engine.connect() as conn:
        for table in tables:
            columns = [
                c["name"]
                for c in inspect(db.engine).get_columns(table)
                if (table, c["name"]) not in _TOUCHED
            ]
            quoted = ", ".join(f'"{c}"' for c in columns)
            rows = conn.execute(text(f'SELECT {quoted} FROM "{table}"')).all()  # noqa: S608
            digest = hashlib.sha256(repr(sorted(map(repr, rows))).encode()).hexdigest()
            result[table] = (len(rows), digest)
    return result


def job_count(db: Database) -> int:
    """Jobs enqueued (0 while the work queue does not exist yet)."""
    if "job" not in inspect(db.engine).get_table_names():
        return 0
    with db.engine.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM job")).scalar_one())
