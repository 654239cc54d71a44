"""Data keys in the database: creation, the TTL cache, KEK re-wrapping, shredding."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from sqlalchemy import select, update

from carecollect.db import Database
from carecollect.kit.crypto.errors import KeyUnavailable
from carecollect.kit.crypto.keyring import (
    create_local_keyring,
    load_local_keyring,
    rotate_local_keyring,
)
from carecollect.kit.crypto.keys import KeyManager, wrap_associated_data
from carecollect.kit.crypto.models import DataKey
from carecollect.kit.crypto.rotation import shred_organization

from .conftest import FakeClock, add_organization

ROW = uuid.UUID("01890a5d-ac96-7000-8000-000000000001")


def _keys(db: Database) -> list[DataKey]:
    with db.system_session() as session:
        return list(session.scalars(select(DataKey).order_by(DataKey.purpose)))


def test_creation(crypto_db: Database, manager: KeyManager, org_id: uuid.UUID) -> None:
    rows = _keys(crypto_db)
    assert [(k.purpose, k.state) for k in rows] == [
        ("blind_index", "active"),
        ("encryption", "active"),
    ]
    for key in rows:
        assert key.organization_id == org_id
        assert key.kek_id == manager.provider.current_kek_id()
        assert len(key.wrapped_key) == 61
        assert 1 <= key.id < 2**32
        assert key.retired_at is None
        assert key.rotation_cursor is None
        assert key.created_at.tzinfo is not None
    with crypto_db.system_session() as session:  # idempotent
        manager.create_organization_keys(session, org_id)
    assert [k.id for k in _keys(crypto_db)] == [k.id for k in rows]


def test_snapshot_seals_and_opens(
    crypto_db: Database, manager: KeyManager, org_id: uuid.UUID
) -> None:
    with crypto_db.tenant_session(org_id) as session:
        keys = manager.for_organization(session, org_id)
    encryption_id = next(k.id for k in _keys(crypto_db) if k.purpose == "encryption")
    assert keys.encryption_key_id == encryption_id
    assert keys.key_ids == frozenset({encryption_id})
    assert keys.blind_index_bits == 18
    cipher = keys.cipher()
    assert cipher is keys.cipher()
    sealed = cipher.seal("patient", "last_name", ROW, "Testperson")
    assert sealed is not None
    assert sealed.key_id == encryption_id
    assert cipher.open(sealed, "patient", "last_name", ROW) == "Testperson"
    assert 0 <= keys.blind().phone("212-555-0123") < 2**18
    assert repr(keys) == (
        f"<OrganizationKeys {org_id} active={encryption_id} keys=[{encryption_id}]>"
    )


def test_blind_width_override(crypto_db: Database, manager: KeyManager, org_id: uuid.UUID) -> None:
    with crypto_db.tenant_session(org_id) as session:
        planned = manager.for_organization(session, org_id)
        recorded = manager.for_organization(session, org_id, blind_index_bits=12)
    assert recorded.blind().bits == 12
    assert planned.blind().bits == 18
    assert recorded.encryption_key_id == planned.encryption_key_id


def test_ttl_cache(
    crypto_db: Database, manager: KeyManager, org_id: uuid.UUID, clock: FakeClock
) -> None:
    with crypto_db.tenant_session(org_id) as session:
        first = manager.for_organization(session, org_id)
        clock.now += 299.9
        assert manager.for_organization(session, org_id) is first
        clock.now += 0.2  # past the 300 s TTL: unwrapped again
        second = manager.for_organization(session, org_id)
        assert second is not first
        assert manager.for_organization(session, org_id) is second
        manager.invalidate(org_id)
        assert manager.for_organization(session, org_id) is not second


def test_zero_ttl_never_caches(
    crypto_db: Database, provider: object, org_id: uuid.UUID, manager: KeyManager
) -> None:
    uncached = KeyManager(manager.provider, ttl_seconds=0)
    with crypto_db.tenant_session(org_id) as session:
        assert uncached.for_organization(session, org_id) is not uncached.for_organization(
            session, org_id
        )


def test_keys_of_a_rolled_back_transaction_are_not_cached(
    crypto_db: Database, manager: KeyManager
) -> None:
    org = add_organization(crypto_db, "rolled-back")
    session = crypto_db.new_session()
    try:
        manager.create_organization_keys(session, org)
        manager.for_organization(session, org).cipher().seal("patient", "x", ROW, "v")
    finally:
        session.rollback()
        session.close()
    with crypto_db.system_session() as session, pytest.raises(KeyUnavailable):
        manager.for_organization(session, org)


def test_no_keys_fails_closed(crypto_db: Database, manager: KeyManager) -> None:
    org = add_organization(crypto_db, "keyless")
    with crypto_db.tenant_session(org) as session, pytest.raises(KeyUnavailable) as caught:
        manager.for_organization(session, org)
    assert caught.value.message == (
        f"organization {org} has no active data keys (never created, or crypto-shredded)"
    )


def test_wrapped_key_moved_to_another_organization_fails(
    crypto_db: Database, manager: KeyManager, org_id: uuid.UUID
) -> None:
    other = add_organization(crypto_db, "other")
    with crypto_db.system_session() as session:
        manager.create_organization_keys(session, other)
    mine = {k.purpose: k for k in _keys(crypto_db) if k.organization_id == org_id}
    with crypto_db.system_session() as session:
        session.execute(
            update(DataKey)
            .where(DataKey.organization_id == other, DataKey.purpose == "encryption")
            .values(wrapped_key=mine["encryption"].wrapped_key)
        )
    with crypto_db.system_session() as session, pytest.raises(KeyUnavailable) as caught:
        manager.for_organization(session, other)
    assert "wrong key, or the wrapped key was altered or moved" in caught.value.message


def test_wrong_kek_fails_closed(
    crypto_db: Database, org_id: uuid.UUID, tmp_path: Path
) -> None:
    stranger = tmp_path / "stranger" / "keyring.json"
    create_local_keyring(stranger)
    manager = KeyManager(load_local_keyring(stranger))
    with crypto_db.system_session() as session, pytest.raises(KeyUnavailable) as caught:
        manager.for_organization(session, org_id)
    assert caught.value.message.startswith("key-encryption key local-")
    assert caught.value.message.endswith("is not available from the local key provider")


def test_kek_rotation_rewraps_data_keys_only(
    crypto_db: Database, manager: KeyManager, org_id: uuid.UUID, keyring_path: Path
) -> None:
    other = add_organization(crypto_db, "other")
    with crypto_db.system_session() as session:
        manager.create_organization_keys(session, other)
        sealed = manager.for_organization(session, org_id).cipher().seal(
            "patient", "last_name", ROW, "Testperson"
        )
    before = {k.id: k for k in _keys(crypto_db)}
    new_kek = rotate_local_keyring(keyring_path)
    rotated = KeyManager(load_local_keyring(keyring_path))
    with crypto_db.system_session() as session:
        assert rotated.rewrap_all(session) == 4
    after = {k.id: k for k in _keys(crypto_db)}
    assert set(after) == set(before)
    for key_id, key in after.items():
        assert key.kek_id == new_kek
        assert key.wrapped_key != before[key_id].wrapped_key
        assert key.state == before[key_id].state
    with crypto_db.system_session() as session:
        assert rotated.rewrap_all(session) == 0
        assert rotated.kek_ids_in_use(session) == {new_kek}
        cipher = rotated.for_organization(session, org_id).cipher()
    assert cipher.open(sealed, "patient", "last_name", ROW) == "Testperson"


def test_wrap_associated_data_layout() -> None:
    org = uuid.UUID(int=1)
    assert wrap_associated_data(org, 0x01020304, "encryption") == (
        b"carecollect/data_key/v1\x00" + org.bytes + b"\x01\x02\x03\x04encryption"
    )


def test_shredding(
    crypto_db: Database, manager: KeyManager, org_id: uuid.UUID, clock: FakeClock
) -> None:
    other = add_organization(crypto_db, "other")
    with crypto_db.system_session() as session:
        manager.create_organization_keys(session, other)
    with crypto_db.tenant_session(org_id) as session:
        sealed = manager.for_organization(session, org_id).cipher().seal(
            "patient", "last_name", ROW, "Testperson"
        )
    with crypto_db.tenant_session(org_id) as session:
        assert shred_organization(session, org_id, key_manager=manager) == 2
    assert {k.organization_id for k in _keys(crypto_db)} == {other}
    with crypto_db.tenant_session(org_id) as session, pytest.raises(KeyUnavailable):
        manager.for_organization(session, org_id)
    # A process that still caches the keys loses them within one TTL.
    elsewhere = KeyManager(manager.provider, clock=clock, ttl_seconds=300)
    with crypto_db.system_session() as session:
        manager.create_organization_keys(session, org_id)
    with crypto_db.system_session() as session:
        cached = elsewhere.for_organization(session, org_id)
    with crypto_db.system_session() as session:
        assert shred_organization(session, org_id) == 2
    with crypto_db.system_session() as session:
        assert elsewhere.for_organization(session, org_id) is cached
    clock.now += 301
    with crypto_db.system_session() as session, pytest.raises(KeyUnavailable):
        elsewhere.for_organization(session, org_id)
    # And the value sealed before shredding can no longer be opened by anyone.
    with crypto_db.system_session() as session:
        manager.create_organization_keys(session, org_id)
        fresh = manager.for_organization(session, org_id).cipher()
    with pytest.raises(KeyUnavailable):
        fresh.open(sealed, "patient", "last_name", ROW)


def test_kek_rewrap_works_without_the_domain_models(
    crypto_db: Database, org_id: uuid.UUID, keyring_path: Path
) -> None:
    # `carecollect keys rotate --kek` imports only the kit; an ORM flush would need the
    # organization model to sort tables, so the kit must write data_key through Core.
    new_kek = rotate_local_keyring(keyring_path)
    script = (
        "import sys\n"
        "from carecollect.db import Database\n"
        "from carecollect.kit.crypto.keyring import load_local_keyring\n"
        "from carecollect.kit.crypto.keys import KeyManager\n"
        "assert 'carecollect.tenant.models' not in sys.modules\n"
        "db = Database(sys.argv[1])\n"
        "manager = KeyManager(load_local_keyring(sys.argv[2]))\n"
        "with db.system_session() as session:\n"
        "    sys.stdout.write(str(manager.rewrap_all(session)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(crypto_db.engine.url), str(keyring_path)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert (result.returncode, result.stdout, result.stderr) == (0, "2", "")
    assert {k.kek_id for k in _keys(crypto_db)} == {new_kek}


def test_source_key_is_wide_keyed_and_distinct_per_system() -> None:
    from uuid import uuid4

    from carecollect.kit.crypto.keys import OrganizationKeys

    def keys(root: bytes) -> OrganizationKeys:
        return OrganizationKeys(uuid4(), encryption_keys={1: b"k" * 32}, encryption_key_id=1,
                                blind_root=root, blind_index_bits=18)

    a = keys(b"a" * 32)
    value = a.source_key("synthea", "patient-1")
    assert 0 <= value < 2**63
    assert value == a.source_key("synthea", "patient-1")
    assert value != a.source_key("csv", "patient-1")
    assert value != a.source_key("synthea", "patient-2")
    assert value != keys(b"b" * 32).source_key("synthea", "patient-1")
    assert value.bit_length() > 40  # not truncated like a blind index
