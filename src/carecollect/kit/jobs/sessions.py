"""A tenant session whose transaction holds SQLite's write lock from the start.

On PostgreSQL a row lock (`SELECT ... FOR UPDATE` on the debtor's contact-state row) is
what serializes two senders; SQLite has no row locks, so the delivery transaction begins
with `BEGIN IMMEDIATE` and holds the database write lock instead (ARCHITECTURE.md §6
step 2). `db.py` honours `connection.info["sqlite_begin"]` for exactly this.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, text
from sqlalchemy.orm import Session

from carecollect.db import Database


@contextmanager
def write_locked_session(db: Database, organization_id: uuid.UUID) -> Iterator[Session]:
    """Like `db.tenant_session(org)`, but `BEGIN IMMEDIATE` on SQLite; commits on success."""
    if db.is_postgres:
        with db.tenant_session(organization_id) as session:
            yield session
        return
    conn = db.engine.connect()
    conn.info["sqlite_begin"] = "BEGIN IMMEDIATE"
    session = Session(bind=conn, expire_on_commit=False)
    session.info["organization_id"] = organization_id
    session.info["app_role"] = None
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
        conn.info.pop("sqlite_begin", None)
        conn.close()


def relaxed_commit(session: Session | Connection) -> None:
    """Let this PostgreSQL transaction commit without waiting for its WAL flush.

    Only for writes whose loss in a crash is harmless by design: job bookkeeping (a lost
    claim or completion only re-runs an idempotent handler) and recording `sent` after the
    provider call (a lost `sent` leaves the attempt `sending`, which is reconciled, never
    re-sent). The durable step, `sending`, always commits synchronously, and its flush
    also makes every earlier relaxed commit durable (the WAL is sequential).
    """
    bind = session.get_bind() if isinstance(session, Session) else session
    if bind.dialect.name == "postgresql":
        session.execute(text("SET LOCAL synchronous_commit TO OFF"))
