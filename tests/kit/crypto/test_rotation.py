"""Data-key rotation: batches, resumption after a crash, concurrent writers, retirement."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import event, insert, select, text, update

from carecollect.db import Database
from carecollect.errors import ConfigurationError
from carecollect.kit.crypto.errors import KeyUnavailable
from carecollect.kit.crypto.keys import KeyManager
from carecollect.kit.crypto.models import DataKey
from carecollect.kit.crypto.rotation import (
    SETTLE_MARGIN_SECONDS,
    encrypted_tables,
    rotate_organization_key,
)
from carecollect.kit.crypto.types import Sealed

from .conftest import RECORDS, add_organization, record_table

TABLES = encrypted_tables(RECORDS)
STAMP = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)


class CrashError(Exception):
    pass


def _populate(
    db: Database, manager: KeyManager, org: uuid.UUID, count: int, *, base: int = 1000
) -> dict[str, str]:
    """Insert `count` records with ids base+i (so in label order); return label ->
    plaintext of every sealed value."""
    expected: dict[str, str] = {}
    with db.tenant_session(org) as session:
        cipher = manager.for_organization(session, org).cipher()
        rows = []
        for i in range(count):
            row_id = uuid.UUID(int=base + i)
            secret = f"secret {i} of {org.hex[:6]}"
            note = f"note {i}" if i % 3 else None  # some NULLs
            expected[f"{i}/secret"] = secret
            if note is not None:
                expected[f"{i}/note"] = note
            rows.append(
                {
                    "id": row_id,
                    "organization_id": org,
                    "label": str(i),
                    "secret": cipher.seal("crypto_test_record", "secret", row_id, secret),
                    "note": cipher.seal("crypto_test_record", "note", row_id, note),
                    "updated_at": STAMP,
                }
            )
        session.execute(insert(record_table), rows)
    return expected


def _read(db: Database, manager: KeyManager, org: uuid.UUID) -> tuple[dict[str, str], set[int]]:
    """Decrypt every value of the organization; return it and the key ids in use."""
    values: dict[str, str] = {}
    key_ids: set[int] = set()
    manager.invalidate(org)
    with db.tenant_session(org) as session:
        cipher = manager.for_organization(session, org).cipher()
        rows = session.execute(
            select(record_table).where(record_table.c.organization_id == org)
        ).all()
        for row in rows:
            assert row.updated_at == STAMP  # re-encryption is not an edit
            for column in ("secret", "note"):
                sealed: Sealed | None = getattr(row, column)
                if sealed is None:
                    continue
                key_ids.add(sealed.key_id)
                opened = cipher.open(sealed, "crypto_test_record", column, row.id)
                assert opened is not None
                values[f"{row.label}/{column}"] = opened
    return values, key_ids


def _encryption_keys(db: Database, org: uuid.UUID) -> list[DataKey]:
    with db.system_session() as session:
        return list(
            session.scalars(
                select(DataKey)
                .where(DataKey.organization_id == org, DataKey.purpose == "encryption")
                .order_by(DataKey.created_at, DataKey.id)
            )
        )


@pytest.fixture
def quick(manager: KeyManager) -> KeyManager:
    """The same keys without a cache: rotation does not need to wait out a TTL."""
    return KeyManager(manager.provider, ttl_seconds=0)


def test_rotation_reencrypts_everything_and_retires_the_old_key(
    crypto_db: Database, quick: KeyManager, org_id: uuid.UUID
) -> None:
    other = add_organization(crypto_db, "other")
    with crypto_db.system_session() as session:
        quick.create_organization_keys(session, other)
    expected = _populate(crypto_db, quick, org_id, 25)
    other_expected = _populate(crypto_db, quick, other, 4, base=5000)
    with crypto_db.system_session() as session:
        other_before = session.execute(select(record_table.c.secret).where(
            record_table.c.organization_id == other
        )).scalars().all()
    (old,) = _encryption_keys(crypto_db, org_id)
    seen: list[int] = []

    report = rotate_organization_key(
        crypto_db, org_id, keys=quick, batch_size=10, progress=seen.append, tables=TABLES
    )

    old_after, new = _encryption_keys(crypto_db, org_id)
    assert old_after.id == old.id
    assert (old_after.state, old_after.rotation_cursor) == ("retired", None)
    assert old_after.retired_at is not None
    assert (new.state, new.id) == ("active", report.new_key_id)
    assert report.old_key_ids == (old.id,)
    assert report.resumed is False
    assert report.retired is True
    assert report.rows_reencrypted == 25
    assert report.values_reencrypted == report.reencrypted == len(expected) == 41
    assert report.batches == 3
    assert seen == [16, 33, 41]  # rows 0-9 hold 16 values, 10-19 hold 17, 20-24 hold 8
    values, key_ids = _read(crypto_db, quick, org_id)
    assert values == expected
    assert key_ids == {new.id}
    # Other organizations are untouched, byte for byte.
    with crypto_db.system_session() as session:
        assert session.execute(select(record_table.c.secret).where(
            record_table.c.organization_id == other
        )).scalars().all() == other_before
    assert _read(crypto_db, quick, other)[0] == other_expected


def test_interrupted_rotation_resumes(
    crypto_db: Database, quick: KeyManager, org_id: uuid.UUID
) -> None:
    expected = _populate(crypto_db, quick, org_id, 25)
    (old,) = _encryption_keys(crypto_db, org_id)

    def crash_after_first_batch(done: int) -> None:
        raise CrashError

    with pytest.raises(CrashError):
        rotate_organization_key(
            crypto_db,
            org_id,
            keys=quick,
            batch_size=10,
            progress=crash_after_first_batch,
            tables=TABLES,
        )
    old_now, new = _encryption_keys(crypto_db, org_id)
    assert (old_now.state, new.state) == ("decrypt_only", "active")
    assert old_now.rotation_cursor is not None
    table, _, last_id = old_now.rotation_cursor.partition(":")
    assert table == "crypto_test_record"
    with crypto_db.system_session() as session:
        done_ids = session.execute(
            select(record_table.c.id).order_by(record_table.c.id).limit(10)
        ).scalars().all()
    assert uuid.UUID(last_id) == done_ids[-1]
    # Mid-rotation everything still opens: old values with the decrypt-only key.
    values, key_ids = _read(crypto_db, quick, org_id)
    assert values == expected
    assert key_ids == {old.id, new.id}

    report = rotate_organization_key(crypto_db, org_id, keys=quick, batch_size=10, tables=TABLES)

    assert report.resumed is True
    assert report.new_key_id == new.id
    assert report.rows_reencrypted == 15  # only what the first run had not committed
    assert report.batches == 2
    old_final, new_final = _encryption_keys(crypto_db, org_id)
    assert (old_final.state, new_final.state) == ("retired", "active")
    values, key_ids = _read(crypto_db, quick, org_id)
    assert values == expected
    assert key_ids == {new.id}


def test_values_written_by_a_stale_process_are_swept(
    crypto_db: Database, quick: KeyManager, org_id: uuid.UUID
) -> None:
    expected = _populate(crypto_db, quick, org_id, 12)
    with crypto_db.tenant_session(org_id) as session:
        stale = quick.for_organization(session, org_id).cipher()  # loaded before rotation
    (old,) = _encryption_keys(crypto_db, org_id)

    def stale_writer(done: int) -> None:
        # A process whose cache still says the old key is active inserts a row that sorts
        # before the cursor and rewrites a row already rotated.
        if done > 10:
            return
        with crypto_db.tenant_session(org_id) as session:
            first = session.execute(
                select(record_table.c.id, record_table.c.label).order_by(record_table.c.id)
            ).first()
            assert first is not None
            session.execute(
                update(record_table)
                .where(record_table.c.id == first.id)
                .values(
                    secret=stale.seal("crypto_test_record", "secret", first.id, "changed"),
                    updated_at=STAMP,
                )
            )
            session.execute(
                insert(record_table).values(
                    id=uuid.UUID(int=1),
                    organization_id=org_id,
                    label="late",
                    secret=stale.seal("crypto_test_record", "secret", uuid.UUID(int=1), "late"),
                    updated_at=STAMP,
                )
            )
            expected[f"{first.label}/secret"] = "changed"
            expected["late/secret"] = "late"

    report = rotate_organization_key(
        crypto_db, org_id, keys=quick, batch_size=5, progress=stale_writer, tables=TABLES
    )
    values, key_ids = _read(crypto_db, quick, org_id)
    assert values == expected
    assert key_ids == {report.new_key_id}
    assert [k.state for k in _encryption_keys(crypto_db, org_id)] == ["retired", "active"]
    assert old.id in report.old_key_ids


def test_a_value_edited_meanwhile_is_not_overwritten(
    crypto_db: Database, quick: KeyManager, org_id: uuid.UUID
) -> None:
    expected = _populate(crypto_db, quick, org_id, 3)
    target = uuid.UUID(int=1001)
    fired: list[bool] = []

    def user_edits_first(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        # Runs just before rotation's UPDATE, as if a user's transaction had committed
        # between rotation's read and its write (READ COMMITTED on PostgreSQL).
        if fired or not statement.startswith("UPDATE crypto_test_record"):
            return
        fired.append(True)
        with crypto_db.new_session(org_id) as session:
            cipher = quick.for_organization(session, org_id).cipher()
        edited = cipher.seal("crypto_test_record", "secret", target, "edited by a user")
        assert edited is not None
        key: object
        if conn.dialect.name == "sqlite":
            sql, key = "UPDATE crypto_test_record SET secret = ? WHERE id = ?", target.hex
        else:
            sql, key = "UPDATE crypto_test_record SET secret = %s WHERE id = %s", target
        cursor.connection.execute(sql, (edited.ciphertext, key))

    event.listen(crypto_db.engine, "before_cursor_execute", user_edits_first)
    try:
        rotate_organization_key(crypto_db, org_id, keys=quick, tables=TABLES)
    finally:
        event.remove(crypto_db.engine, "before_cursor_execute", user_edits_first)
    assert fired == [True]
    expected["1/secret"] = "edited by a user"
    values, key_ids = _read(crypto_db, quick, org_id)
    assert values == expected
    assert len(key_ids) == 1


def test_rotation_waits_out_the_key_cache(
    crypto_db: Database, manager: KeyManager, org_id: uuid.UUID
) -> None:
    _populate(crypto_db, manager, org_id, 3)
    slept: list[float] = []
    rotate_organization_key(
        crypto_db, org_id, keys=manager, tables=TABLES, sleep=slept.append
    )
    assert len(slept) == 1
    assert manager.ttl_seconds + SETTLE_MARGIN_SECONDS - 5 < slept[0]
    assert slept[0] <= manager.ttl_seconds + SETTLE_MARGIN_SECONDS


def test_rotating_twice(crypto_db: Database, quick: KeyManager, org_id: uuid.UUID) -> None:
    expected = _populate(crypto_db, quick, org_id, 4)
    first = rotate_organization_key(crypto_db, org_id, keys=quick, tables=TABLES)
    second = rotate_organization_key(crypto_db, org_id, keys=quick, tables=TABLES)
    assert second.old_key_ids == (first.new_key_id,)
    assert [k.state for k in _encryption_keys(crypto_db, org_id)] == [
        "retired",
        "retired",
        "active",
    ]
    values, key_ids = _read(crypto_db, quick, org_id)
    assert values == expected
    assert key_ids == {second.new_key_id}


def test_retired_keys_no_longer_decrypt(
    crypto_db: Database, quick: KeyManager, org_id: uuid.UUID
) -> None:
    row_id = uuid.uuid4()
    with crypto_db.tenant_session(org_id) as session:
        sealed = quick.for_organization(session, org_id).cipher().seal(
            "elsewhere", "value", row_id, "kept outside the rotated tables"
        )
    rotate_organization_key(crypto_db, org_id, keys=quick, tables=TABLES)
    with crypto_db.tenant_session(org_id) as session:
        cipher = quick.for_organization(session, org_id).cipher()
    with pytest.raises(KeyUnavailable):
        cipher.open(sealed, "elsewhere", "value", row_id)


def test_unknown_tenant_tables_block_rotation(
    crypto_db: Database, quick: KeyManager, org_id: uuid.UUID
) -> None:
    with crypto_db.engine.begin() as conn:
        conn.execute(
            text("CREATE TABLE harmless (id INTEGER PRIMARY KEY, organization_id INTEGER)")
        )
        binary = "BYTEA" if conn.dialect.name == "postgresql" else "BLOB"
        conn.execute(
            text(
                "CREATE TABLE stray (id INTEGER PRIMARY KEY, organization_id INTEGER, "
                f"value {binary})"
            )
        )
    with pytest.raises(ConfigurationError) as caught:
        rotate_organization_key(crypto_db, org_id, keys=quick, tables=TABLES)
    assert caught.value.message == (
        "cannot rotate keys: tenant tables unknown to this process: stray "
        "(import carecollect.all_models)"
    )
    assert [k.state for k in _encryption_keys(crypto_db, org_id)] == ["active"]


def test_rotation_needs_an_active_key(crypto_db: Database, quick: KeyManager) -> None:
    org = add_organization(crypto_db, "keyless")
    with pytest.raises(KeyUnavailable) as caught:
        rotate_organization_key(crypto_db, org, keys=quick, tables=TABLES)
    assert caught.value.message == (
        f"organization {org} has no active encryption key to rotate"
    )


def test_batch_size_is_validated(crypto_db: Database, quick: KeyManager, org_id: uuid.UUID) -> None:
    with pytest.raises(ValueError, match="batch_size must be positive"):
        rotate_organization_key(crypto_db, org_id, keys=quick, batch_size=0, tables=TABLES)


def test_encrypted_tables_are_found_by_introspection() -> None:
    (found,) = TABLES
    assert found.table is record_table
    assert found.columns == ("secret", "note")
    assert found.preserved == ("updated_at",)
    import carecollect.all_models  # noqa: F401  every model in Base.metadata

    names = {t.table.name: t.columns for t in encrypted_tables()}
    assert "data_key" not in names
    assert "organization" not in names
    assert {"first_name", "last_name"} <= set(names["patient"])
