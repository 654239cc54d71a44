"""Suite-wide fixtures: a freshly migrated database per test, on SQLite or PostgreSQL.

The backend comes from CARECOLLECT_TEST_BACKEND (`sqlite`, the default, or `postgresql`).
PostgreSQL is reached through CARECOLLECT_TEST_PG_URL (default: the local server as
`postgres`); every test gets its own throwaway database cloned from a template migrated
once per worker with Alembic, and dropped afterwards. Under CI=true an unreachable
PostgreSQL is a failure, never a skip.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from carecollect.db import Database
from carecollect.migrations.runner import upgrade

BACKEND = os.environ.get("CARECOLLECT_TEST_BACKEND", "sqlite")
PG_ADMIN_URL = os.environ.get(
    "CARECOLLECT_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


def _pg_admin():  # type: ignore[no-untyped-def]
    return create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT", pool_pre_ping=True)


def pg_url(dbname: str) -> str:
    base, _, _ = PG_ADMIN_URL.rpartition("/")
    return f"{base}/{dbname}"


@pytest.fixture(scope="session")
def backend() -> str:
    return BACKEND


@pytest.fixture(scope="session")
def _template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A migrated template: a SQLite file path or a PostgreSQL database name."""
    if BACKEND == "sqlite":
        path = tmp_path_factory.mktemp("template") / "template.db"
        db = Database(f"sqlite:///{path}")
        upgrade(db.engine)
        db.dispose()
        yield str(path)
        return
    if BACKEND != "postgresql":
        raise RuntimeError(f"unknown CARECOLLECT_TEST_BACKEND {BACKEND!r}")
    admin = _pg_admin()
    try:
        with admin.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:
        if os.environ.get("CI") == "true":
            raise RuntimeError(f"PostgreSQL unreachable under CI: {exc}") from exc
        pytest.skip(f"PostgreSQL unreachable: {exc}")
    name = f"cc_tmpl_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    db = Database(pg_url(name))
    upgrade(db.engine)
    db.dispose()
    yield name
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def database_url(_template: str, tmp_path: Path) -> Iterator[str]:
    """URL of a fresh, migrated, empty database for this test only."""
    if BACKEND == "sqlite":
        path = tmp_path / "carecollect.db"
        shutil.copyfile(_template, path)
        yield f"sqlite:///{path}"
        return
    name = f"cc_test_{uuid.uuid4().hex[:12]}"
    admin = _pg_admin()
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{_template}"'))
    yield pg_url(name)
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database(database_url)
    yield database
    database.dispose()
