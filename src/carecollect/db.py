"""Engines, session factories and the transaction boundary.

Two kinds of session exist:

* `tenant_session(org_id)`: everything a request or a job does for one organization. On
  PostgreSQL it switches to the application role (which does not own the tables, so
  row-level security applies) and sets `carecollect.organization_id` for the transaction.
  On both databases every ORM query of a tenant table is additionally filtered by
  organization (SQLAlchemy's `with_loader_criteria`), so a forgotten filter still cannot
  read another tenant's rows.
* `system_session()`: migrations, `init`, organization creation and cross-tenant
  machinery (the job claimer, the audit integrator). It runs as the connecting role.

The boundary owns the transaction: the context managers commit on success and roll back
on any error; repositories and services never commit.
"""

from __future__ import annotations

import re
import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import ORMExecuteState, Session, sessionmaker, with_loader_criteria

from carecollect.config import Settings
from carecollect.errors import DatabaseUnavailable
from carecollect.kit.models import TenantMixin

_ROLE_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
TENANT_SETTING = "carecollect.organization_id"


def _sqlite_on_connect(dbapi_connection: sqlite3.Connection, _record: Any) -> None:
    # The embedded default: WAL for concurrent readers, enforced foreign keys, and a busy
    # timeout so the in-process worker and web requests wait instead of failing.
    dbapi_connection.isolation_level = None  # let SQLAlchemy's BEGIN events drive it
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _sqlite_on_begin(conn: Any) -> None:
    mode = conn.info.get("sqlite_begin", "BEGIN")
    conn.exec_driver_sql(mode)


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine for SQLite (embedded) or PostgreSQL (psycopg 3).

    `hide_parameters` keeps bound values (search terms, ciphertexts) out of every
    database error message and log line.
    """
    kwargs.setdefault("hide_parameters", True)
    if url.startswith("sqlite"):
        engine = create_engine(url, **kwargs)
        event.listen(engine, "connect", _sqlite_on_connect)
        event.listen(engine, "begin", _sqlite_on_begin)
        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    kwargs.setdefault("pool_pre_ping", True)
    kwargs.setdefault("connect_args", {"connect_timeout": 10})
    return create_engine(url, **kwargs)


class Database:
    """One engine and its session factories."""

    def __init__(self, url: str, *, app_role: str = "carecollect_app", **kwargs: Any) -> None:
        if not _ROLE_RE.match(app_role):
            raise ValueError("database_app_role must be a plain lower-case identifier")
        self.url = url
        self.app_role = app_role
        self.engine = make_engine(url, **kwargs)
        self._factory = sessionmaker(self.engine, expire_on_commit=False)

    @classmethod
    def from_settings(cls, settings: Settings) -> Database:
        return cls(settings.resolved_database_url, app_role=settings.database_app_role)

    @property
    def is_postgres(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    def check_connection(self) -> None:
        """Fail with one clear line when the database cannot be reached."""
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except OperationalError as exc:
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig else "unreachable"
            raise DatabaseUnavailable(
                f"database {self.engine.url.render_as_string(hide_password=True)} "
                f"is unreachable: {reason}"
            ) from None

    def new_session(self, organization_id: uuid.UUID | None = None) -> Session:
        session = self._factory()
        session.info["organization_id"] = organization_id
        session.info["app_role"] = self.app_role if organization_id is not None else None
        return session

    @contextmanager
    def tenant_session(self, organization_id: uuid.UUID) -> Iterator[Session]:
        """A transaction scoped to one organization; commits on success."""
        session = self.new_session(organization_id)
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    @contextmanager
    def system_session(self) -> Iterator[Session]:
        """A transaction outside any tenant (migrations, init, machinery)."""
        session = self.new_session(None)
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def dispose(self) -> None:
        self.engine.dispose()


@event.listens_for(Session, "after_begin")
def _set_tenant(session: Session, _transaction: Any, connection: Any) -> None:
    org_id = session.info.get("organization_id")
    if org_id is None or connection.dialect.name != "postgresql":
        return
    role = session.info.get("app_role")
    if role:
        connection.exec_driver_sql(f'SET LOCAL ROLE "{role}"')
    connection.execute(
        text("SELECT set_config(:name, :value, true)"),
        {"name": TENANT_SETTING, "value": str(org_id)},
    )


@event.listens_for(Session, "do_orm_execute")
def _scope_to_tenant(state: ORMExecuteState) -> None:
    org_id = state.session.info.get("organization_id")
    if org_id is None:
        return
    if state.is_select or state.is_update or state.is_delete:
        state.statement = state.statement.options(
            with_loader_criteria(
                TenantMixin,
                lambda cls: cls.organization_id == org_id,
                include_aliases=True,
            )
        )
