"""The encrypted PHI store: canaries never reach storage in plaintext; ciphertexts are
bound to their row and column; blind-index search finds people and filters collisions."""

from __future__ import annotations

import glob
import json
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import select, text, update
from sqlalchemy.exc import StatementError

from carecollect.db import Database
from carecollect.kit.crypto.errors import DecryptionError, KeyUnavailable
from carecollect.kit.crypto.keys import OrganizationKeys
from carecollect.kit.crypto.types import Sealed
from carecollect.patient.models import ContactPoint, Guarantor
from carecollect.patient.service import patient_service
from tests.factories import (
    TEST_ACTOR,
    add_address,
    add_email,
    add_phone,
    audit_events,
    create_guarantor,
    create_tenant,
    key_manager,
)

CANARIES = {
    "first_name": "Zyxcanaryfirst",
    "last_name": "Qwvcanarylast",
    "email": "canary.mailbox.7391@example.org",
    "phone": "+16175550177",
    "street": "4417 Canaryway Boulevard",
    "city": "Canarytownville",
}


def _store_canaries(db: Database) -> None:
    tenant = create_tenant(db)
    with db.tenant_session(tenant.id) as s:
        g = create_guarantor(
            s,
            tenant,
            first_name=CANARIES["first_name"],
            last_name=CANARIES["last_name"],
            date_of_birth=date(1911, 11, 11),
        )
        add_phone(s, tenant, g.id, CANARIES["phone"])
        add_email(s, tenant, g.id, CANARIES["email"])
        add_address(
            s,
            tenant,
            g.id,
            line1=CANARIES["street"],
            city=CANARIES["city"],
            state="MA",
            zip_code="02118",
        )


def test_no_canary_in_the_sqlite_file_or_wal(db: Database, backend: str, tmp_path: Path) -> None:
    if backend != "sqlite":
        pytest.skip("file scan is for SQLite")
    _store_canaries(db)
    db_path = Path(db.engine.url.database or "")
    blobs = b"".join(Path(p).read_bytes() for p in glob.glob(f"{db_path}*"))
    assert len(blobs) > 0
    for value in [*CANARIES.values(), "1911-11-11", "5550177"]:
        assert value.encode() not in blobs, value
        assert value.lower().encode() not in blobs.lower(), value


def test_no_canary_in_any_postgres_column(db: Database, backend: str) -> None:
    if backend != "postgresql":
        pytest.skip("column scan is for PostgreSQL")
    _store_canaries(db)
    with db.engine.connect() as conn:
        tables = [
            r[0]
            for r in conn.execute(
                text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
            )
        ]
        dump = [
            repr(tuple(row))
            for table in tables
            for row in conn.execute(text(f'SELECT * FROM "{table}"'))  # noqa: S608
        ]
    haystack = "\n".join(dump).lower()
    for value in [*CANARIES.values(), "1911-11-11", "5550177"]:
        assert value.lower() not in haystack, value


def _first_guarantor(db: Database, org_id: object) -> Guarantor:
    with db.tenant_session(org_id) as s:  # type: ignore[arg-type]
        return s.scalars(select(Guarantor)).one()


def test_ciphertext_copied_to_another_row_or_column_fails_to_decrypt(db: Database) -> None:
    tenant = create_tenant(db)
    with db.tenant_session(tenant.id) as s:
        a = create_guarantor(s, tenant, last_name="Ashdown")
        b = create_guarantor(s, tenant, last_name="Birchwood")
        a_id, b_id = a.id, b.id
        # Copy a's last name into b's row, and a's first name into a's last name.
        s.execute(update(Guarantor).where(Guarantor.id == b_id).values(last_name=a.last_name))
        s.execute(update(Guarantor).where(Guarantor.id == a_id).values(last_name=a.first_name))
    cipher = tenant.keys.cipher()
    with db.tenant_session(tenant.id) as s:
        moved = s.get(Guarantor, b_id)
        swapped = s.get(Guarantor, a_id)
        assert moved is not None
        assert swapped is not None
        with pytest.raises(DecryptionError, match=r"guarantor\.last_name") as row_error:
            cipher.open_row(moved, "last_name")
        with pytest.raises(DecryptionError, match=r"guarantor\.last_name"):
            cipher.open_row(swapped, "last_name")
        assert "Ashdown" not in str(row_error.value)
        # The untouched fields still decrypt.
        assert cipher.open_row(swapped, "first_name") == "Robin"


def test_wrong_or_missing_key_fails_closed(db: Database) -> None:
    tenant = create_tenant(db)
    with db.tenant_session(tenant.id) as s:
        create_guarantor(s, tenant)
    other = create_tenant(db)
    row = _first_guarantor(db, tenant.id)
    # Another organization's keys do not open this organization's data.
    with pytest.raises(DecryptionError):
        other.keys.cipher().open_row(row, "last_name")
    # A key manager whose KEK never wrapped these keys cannot load them at all.
    with db.system_session() as s, pytest.raises(KeyUnavailable):
        key_manager().for_organization(s, tenant.id)
    # A tampered ciphertext is refused.
    forged = Sealed(row.last_name.ciphertext[:-1] + bytes([row.last_name.ciphertext[-1] ^ 1]))
    with pytest.raises(DecryptionError):
        tenant.keys.cipher().open(forged, "guarantor", "last_name", row.id)


def test_sealed_values_never_print_plaintext(db: Database) -> None:
    tenant = create_tenant(db)
    with db.tenant_session(tenant.id) as s:
        g = create_guarantor(s, tenant, last_name="Printproof")
        assert "Printproof" not in repr(g.last_name)
        assert str(g.last_name) == "<sealed>"
        with pytest.raises(StatementError, match="never plaintext"):
            s.execute(update(Guarantor).where(Guarantor.id == g.id).values(last_name="Oops"))


def _search(db: Database, keys: OrganizationKeys, **criteria: object) -> list[object]:
    with db.tenant_session(keys.organization_id) as s:
        return list(patient_service.find_guarantors(s, keys=keys, actor=TEST_ACTOR, **criteria))  # type: ignore[arg-type]


def test_blind_index_lookups_find_by_phone_email_and_name_dob(db: Database) -> None:
    tenant = create_tenant(db)
    with db.tenant_session(tenant.id) as s:
        g1 = create_guarantor(s, tenant, last_name="O'Hara", date_of_birth=date(1975, 2, 3))
        g2 = create_guarantor(s, tenant, last_name="Ohara", date_of_birth=date(1990, 1, 1))
        add_phone(s, tenant, g1.id, "(617) 555-0123")
        add_email(s, tenant, g2.id, "Someone.Else@Example.COM")
        ids = (g1.id, g2.id)
    assert _search(db, tenant.keys, phone="+1 617 555 0123") == [ids[0]]
    assert _search(db, tenant.keys, email="someone.else@example.com") == [ids[1]]
    # Names fold case and punctuation: "O'Hara" and "OHARA" are the same last name.
    assert _search(db, tenant.keys, last_name="OHARA", date_of_birth=date(1975, 2, 3)) == [ids[0]]
    assert _search(db, tenant.keys, last_name="Ohara", date_of_birth=date(1990, 1, 1)) == [ids[1]]
    assert _search(db, tenant.keys, phone="+16175550199") == []


def test_blind_index_false_positives_are_filtered_after_decryption(db: Database) -> None:
    tenant = create_tenant(db)
    with db.tenant_session(tenant.id) as s:
        g1 = create_guarantor(s, tenant)
        g2 = create_guarantor(s, tenant)
        p1 = add_phone(s, tenant, g1.id, "+16175550101")
        p2 = add_phone(s, tenant, g2.id, "+16175550102")
        # Force a collision: give the second phone the first one's index value, as a
        # truncated HMAC can do by design.
        s.execute(
            update(ContactPoint).where(ContactPoint.id == p2.id).values(value_bidx=p1.value_bidx)
        )
        g1_id = g1.id
    assert _search(db, tenant.keys, phone="+16175550101") == [g1_id]


def test_search_is_audited_with_ids_never_terms(db: Database) -> None:
    tenant = create_tenant(db)
    with db.tenant_session(tenant.id) as s:
        g = create_guarantor(s, tenant)
        add_phone(s, tenant, g.id, "+16175550155")
    _search(db, tenant.keys, phone="+16175550155")
    events = audit_events(db, "patient.search")
    assert len(events) == 1
    assert events[0]["details"]["result_ids"] == [str(g.id)]
    assert "5550155" not in json.dumps(events[0])


def test_read_of_a_guarantor_is_audited_once(db: Database) -> None:
    tenant = create_tenant(db)
    with db.tenant_session(tenant.id) as s:
        g = create_guarantor(s, tenant, first_name="Readme")
    with db.tenant_session(tenant.id) as s:
        view = patient_service.read_guarantor(
            s, keys=tenant.keys, actor=TEST_ACTOR, guarantor_id=g.id
        )
    assert view.first_name == "Readme"
    reads = audit_events(db, "patient.read")
    assert len(reads) == 1
    assert reads[0]["actor_type"] == "staff"
    assert reads[0]["subject_id"] == str(g.id)
    assert reads[0]["patient_id"] == str(g.id)
