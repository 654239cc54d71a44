"""Every query of the audit domain.

Repositories take the session and never commit (CONVENTIONS.md rule 1). Tenant-facing
queries (access log, export) always filter by organization: the audit tables are not
covered by row-level security because the integrator is cross-tenant.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import Connection, Row, and_, func, select
from sqlalchemy.orm import Session

from carecollect.audit.models import AuditCheckpoint, AuditEvent, AuditLogEntry

event_table = AuditEvent.__table__
entry_table = AuditLogEntry.__table__
checkpoint_table = AuditCheckpoint.__table__

_INSERT_EVENT = {
    "qmark": "INSERT INTO audit_event (recorded_at, organization_id, patient_id, body) "
    "VALUES (?, ?, ?, ?)",
    "format": "INSERT INTO audit_event (recorded_at, organization_id, patient_id, body) "
    "VALUES (%s, %s, %s, %s)",
}
_INSERT_EVENT["pyformat"] = _INSERT_EVENT["format"]


class AuditRepository:
    """Reads and appends of the audit tables (append only: no update, no delete)."""

    def insert_target(self, connection: Connection) -> tuple[Any, str]:
        """The driver connection under `connection` and the event INSERT in its
        paramstyle: what `insert_event` needs (the service keeps them per transaction)."""
        driver = connection.connection.driver_connection
        return driver, _INSERT_EVENT[connection.dialect.paramstyle]

    def insert_event(
        self, driver: Any, sql: str, values: tuple[str, str | None, str | None, str]
    ) -> None:
        """Append one event through the driver connection of the caller's transaction.

        Straight to the driver: every audited request pays for this insert, so it skips
        statement compilation and result handling (bench/audit.py measures the
        audited/unaudited write ratio). sqlite3 and psycopg connections both execute
        directly (a cursor is made and dropped by the driver)."""
        driver.execute(sql, values)

    def insert_events(
        self, driver: Any, sql: str, rows: Sequence[tuple[str, str | None, str | None, str]]
    ) -> None:
        """`insert_event` for many rows: one executemany (pipelined on PostgreSQL)."""
        if not rows:
            return
        cursor = driver.cursor()
        try:
            cursor.executemany(sql, rows)
        finally:
            cursor.close()

    def access_log(
        self,
        session: Session,
        *,
        organization_id: str,
        patient_id: str,
        limit: int,
    ) -> Sequence[Row[Any]]:
        stmt = (
            select(
                event_table.c.recorded_at,
                event_table.c.patient_id,
                event_table.c.body,
                entry_table.c.seq,
            )
            .select_from(
                event_table.outerjoin(
                    entry_table, entry_table.c.event_ordinal == event_table.c.ordinal
                )
            )
            .where(
                event_table.c.patient_id == patient_id,
                event_table.c.organization_id == organization_id,
            )
            .order_by(event_table.c.ordinal.desc())
            .limit(limit)
        )
        return list(session.execute(stmt))

    def export_rows(
        self,
        session: Session,
        *,
        organization_id: str | None,
        since: str | None,
        until: str | None,
        batch_size: int = 5000,
    ) -> Iterator[Row[Any]]:
        """Sequenced events in log order, optionally scoped and bounded in time."""
        last = -1
        while True:
            conditions = [entry_table.c.seq > last]
            if organization_id is not None:
                conditions.append(event_table.c.organization_id == organization_id)
            if since is not None:
                conditions.append(event_table.c.recorded_at >= since)
            if until is not None:
                conditions.append(event_table.c.recorded_at < until)
            stmt = (
                select(entry_table.c.seq, event_table)
                .select_from(
                    entry_table.join(
                        event_table, event_table.c.ordinal == entry_table.c.event_ordinal
                    )
                )
                .where(and_(*conditions))
                .order_by(entry_table.c.seq)
                .limit(batch_size)
            )
            rows = session.execute(stmt).all()
            if not rows:
                return
            yield from rows
            last = rows[-1].seq

    def tree_size(self, session: Session) -> int:
        value = session.execute(select(func.max(entry_table.c.seq))).scalar()
        return 0 if value is None else int(value) + 1

    def checkpoints(self, session: Session) -> Sequence[Row[Any]]:
        stmt = select(checkpoint_table).order_by(checkpoint_table.c.tree_size)
        return session.execute(stmt).all()

    def latest_checkpoint(self, session: Session) -> Row[Any] | None:
        return session.execute(
            select(checkpoint_table).order_by(checkpoint_table.c.tree_size.desc()).limit(1)
        ).first()

    def sequenced_event(self, session: Session, seq: int) -> Row[Any] | None:
        stmt = (
            select(entry_table.c.seq, entry_table.c.chain_hash, event_table)
            .select_from(
                entry_table.join(event_table, event_table.c.ordinal == entry_table.c.event_ordinal)
            )
            .where(entry_table.c.seq == seq)
        )
        return session.execute(stmt).first()


audit_repository = AuditRepository()
