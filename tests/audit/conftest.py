"""Fixtures of the audit tests: an organization id and a data directory holding an audit
signing key and a checkpoint directory (the migrated database comes from the suite's
`db` / `database_url` fixtures)."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from carecollect.audit.keys import create_signing_key


@pytest.fixture
def org_id() -> uuid.UUID:
    return uuid.UUID("0190f0e0-0000-7000-8000-000000000001")


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    path = tmp_path / "data"
    (path / "keys").mkdir(parents=True)
    create_signing_key(path / "keys" / "audit-signing.key")
    return path
