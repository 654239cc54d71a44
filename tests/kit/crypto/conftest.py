"""Fixtures of the crypto kit tests: a keyring in tmp_path and a throwaway database.

On SQLite (the default) the database holds only what these tests need: `organization`
and `data_key` from the real models. Under CARECOLLECT_TEST_BACKEND=postgresql it is the
suite's freshly migrated PostgreSQL database (row-level security and the application
role included). Either way it gains `crypto_test_record`, a tiny tenant table with two
encrypted columns defined in its own MetaData so it never leaks into `Base.metadata` (and
so into the migrations or other suites).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Column, MetaData, String, Table, Uuid

from carecollect.db import Database
from carecollect.kit.crypto.keyring import (
    AesGcmKeyProvider,
    create_local_keyring,
    load_local_keyring,
)
from carecollect.kit.crypto.keys import KeyManager
from carecollect.kit.crypto.models import DataKey
from carecollect.kit.crypto.types import SealedType
from carecollect.kit.models import Base, UTCDateTime, utcnow
from carecollect.tenant.models import Organization

RECORDS = MetaData()
record_table = Table(
    "crypto_test_record",
    RECORDS,
    Column("id", Uuid(), primary_key=True),
    Column("organization_id", Uuid(), nullable=False, index=True),
    Column("label", String(20), nullable=False),
    Column("secret", SealedType(), nullable=True),
    Column("note", SealedType(), nullable=True),
    Column("updated_at", UTCDateTime(), default=utcnow, onupdate=utcnow),
)


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def keyring_path(tmp_path: Path) -> Path:
    path = tmp_path / "keys" / "keyring.json"
    create_local_keyring(path)
    return path


@pytest.fixture
def provider(keyring_path: Path) -> AesGcmKeyProvider:
    return load_local_keyring(keyring_path)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def manager(provider: AesGcmKeyProvider, clock: FakeClock) -> KeyManager:
    return KeyManager(provider, ttl_seconds=300, planned_rows=1_000_000, clock=clock)


@pytest.fixture
def crypto_db(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Database]:
    if os.environ.get("CARECOLLECT_TEST_BACKEND", "sqlite") == "postgresql":
        import carecollect.all_models  # noqa: F401  the migrated schema's tables

        database = Database(request.getfixturevalue("database_url"))
    else:
        database = Database(f"sqlite:///{tmp_path / 'crypto.db'}")
        Base.metadata.create_all(
            database.engine,
            tables=[Organization.__table__, DataKey.__table__],  # type: ignore[list-item]
        )
    RECORDS.create_all(database.engine)
    yield database
    database.dispose()


def add_organization(db: Database, slug: str = "lakeside") -> uuid.UUID:
    with db.system_session() as session:
        org = Organization(
            slug=slug,
            legal_name="Lakeside Dental Group",
            billing_display_name="Lakeside Billing",
            provider_license_state="MA",
        )
        session.add(org)
        session.flush()
        return org.id


@pytest.fixture
def org_id(crypto_db: Database, manager: KeyManager) -> uuid.UUID:
    organization_id = add_organization(crypto_db)
    with crypto_db.system_session() as session:
        manager.create_organization_keys(session, organization_id)
    return organization_id
