"""Benchmark: bulk insert of patients with all PHI encrypted and indexed, on SQLite.

Prints, from one run:
  * encrypted insert: patients/s and peak memory (main process and sealing workers);
  * the ratio to the same insert with plaintext columns (same rows, same path, no crypto);
  * the ratio to the encryption and blind-index computations alone (no database) for the
    same patients, on the same number of worker processes.

A patient here is a guarantor row (first name, last name, date of birth sealed; compound
name + DOB blind index) with a phone, an e-mail and a postal address contact point (each
value sealed, phone and e-mail blind-indexed, ZIP sealed): 7 AES-256-GCM seals and
3 HMACs per patient, 4 rows.

Usage: python bench/phi_store.py [--patients N] [--workers W] [--batch B]
Targets (issue 2): >= 40,000 patients/s; <= 1.5x the crypto alone; < 500 MB peak.
"""

from __future__ import annotations

import argparse
import base64
import os
import random
import resource
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from floors import ceiling, crypto_floor, write_floor
from sqlalchemy import Column, LargeBinary, MetaData, String, Table, Text, Uuid, insert

from carecollect.audit import Actor
from carecollect.db import Database
from carecollect.kit.crypto.keyring import load_env_provider
from carecollect.kit.crypto.keys import KeyManager, OrganizationKeys
from carecollect.migrations.runner import upgrade
from carecollect.patient.bulk import (
    PersonRecord,
    bulk_load_people,
    parallel_load_sqlite,
    sealed_batches,
)
from carecollect.tenant.service import create_organization

FIRST = ["Avery", "Jordan", "Maya", "Luis", "Sofia", "Noah", "Amara", "Ethan", "Priya", "Mateo"]
LAST = ["Alvarez", "Brennan", "Castillo", "Dawson", "Eriksen", "Fontaine", "Gallagher", "Hoang"]
PLACES = [("Boston", "MA", "02118", "617"), ("Miami", "FL", "33130", "305"),
          ("Tulsa", "OK", "74103", "918"), ("Seattle", "WA", "98101", "206"),
          ("Phoenix", "AZ", "85004", "602"), ("Honolulu", "HI", "96813", "808")]


def people(count: int, seed: int = 1) -> Iterator[PersonRecord]:
    """Synthetic people, generated lazily (streamed: the input is never held in memory)."""
    rng = random.Random(seed)
    for index in range(count):
        city, state, zip5, area = PLACES[index % len(PLACES)]
        yield PersonRecord(
            first_name=rng.choice(FIRST),
            last_name=f"{rng.choice(LAST)}{index}",
            date_of_birth=f"{1940 + index % 60}-{1 + index % 12:02d}-{1 + index % 28:02d}",
            phone=f"+1{area}555{index % 10_000:04d}",
            line_type="wireless",
            email=f"person{index}@example.com",
            line1=f"{index % 9000 + 10} Maple St",
            city=city,
            state=state,
            zip_code=zip5,
        )


def setup(path: Path) -> tuple[Database, OrganizationKeys]:
    db = Database(f"sqlite:///{path}")
    upgrade(db.engine)
    manager = KeyManager(load_env_provider(base64.b64encode(os.urandom(32)).decode()),
                         planned_rows=1_000_000)
    with db.system_session() as session:
        org = create_organization(session, keys=manager, actor=Actor.system("bench"),
                                  slug="bench", legal_name="Bench Dental",
                                  billing_display_name="Bench Billing",
                                  provider_license_state="MA")
        org_id, bits = org.id, org.blind_index_bits
    with db.system_session() as session:
        keys = manager.for_organization(session, org_id, blind_index_bits=bits)
    return db, keys


def crypto_only(keys: OrganizationKeys, count: int, workers: int, batch: int) -> float:
    start = time.perf_counter()
    for _ in sealed_batches(keys, people(count), batch_size=batch, workers=workers):
        pass
    return time.perf_counter() - start


def encrypted_insert(db: Database, keys: OrganizationKeys, count: int, workers: int,
                     batch: int) -> float:
    start = time.perf_counter()
    with db.engine.begin() as connection:
        written = bulk_load_people(connection, keys, people(count), batch_size=batch,
                                   workers=workers)
    elapsed = time.perf_counter() - start
    assert written == count  # noqa: S101
    return elapsed


def direct_insert(path: Path, keys: OrganizationKeys, count: int, workers: int,
                  batch: int) -> float:
    """Workers seal and write their own batches (SQLite serializes the writers)."""
    start = time.perf_counter()
    written = parallel_load_sqlite(str(path), keys, people(count), batch_size=batch,
                                   workers=workers)
    elapsed = time.perf_counter() - start
    assert written == count  # noqa: S101
    return elapsed


def plaintext_insert(path: Path, count: int, batch: int) -> float:
    """The same four rows per patient into plaintext-column tables, same Core path."""
    db = Database(f"sqlite:///{path}")
    meta = MetaData()
    people_table = Table("person_plain", meta, Column("id", Uuid(), primary_key=True),
                         Column("organization_id", Uuid()), Column("first_name", Text()),
                         Column("last_name", Text()), Column("date_of_birth", Text()),
                         Column("state", String(2)))
    points = Table("contact_plain", meta, Column("id", Uuid(), primary_key=True),
                   Column("guarantor_id", Uuid()), Column("kind", String(8)),
                   Column("value", Text()), Column("postal_code", Text()),
                   Column("blob", LargeBinary(), nullable=True))
    meta.create_all(db.engine)
    from carecollect.kit.ids import uuid7

    org = uuid7()
    start = time.perf_counter()
    with db.engine.begin() as connection:
        rows: list[dict[str, object]] = []
        contacts: list[dict[str, object]] = []
        for person in people(count):
            gid = uuid7()
            rows.append({"id": gid, "organization_id": org, "first_name": person.first_name,
                         "last_name": person.last_name, "date_of_birth": person.date_of_birth,
                         "state": person.state})
            for kind, value, postal in (("phone", person.phone, None),
                                        ("email", person.email, None),
                                        ("postal", person.line1, person.zip_code)):
                contacts.append({"id": uuid7(), "guarantor_id": gid, "kind": kind,
                                 "value": value, "postal_code": postal, "blob": None})
            if len(rows) >= batch:
                connection.execute(insert(people_table), rows)
                connection.execute(insert(points), contacts)
                rows, contacts = [], []
        if rows:
            connection.execute(insert(people_table), rows)
            connection.execute(insert(points), contacts)
    elapsed = time.perf_counter() - start
    db.dispose()
    return elapsed


def peak_mb() -> tuple[float, float]:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return own, children


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=1_000_000)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--batch", type=int, default=2000)
    args = parser.parse_args()
    n = args.patients
    with tempfile.TemporaryDirectory() as tmp:
        db, keys = setup(Path(tmp) / "enc.db")
        t_crypto = crypto_only(keys, n, args.workers, args.batch)
        t_enc = encrypted_insert(db, keys, n, args.workers, args.batch)
        db.dispose()
        db2, keys2 = setup(Path(tmp) / "direct.db")
        db2.dispose()
        t_direct = direct_insert(Path(tmp) / "direct.db", keys2, n, args.workers, args.batch)
        t_plain = plaintext_insert(Path(tmp) / "plain.db", n, args.batch)
        own, children = peak_mb()
        # Floors (bench/floors.py): per patient 7 seals, 3 HMACs, 4 ids; the rows the
        # direct-write run stored, written again with bare sqlite3 into an empty copy.
        f_crypto = crypto_floor(seals=7, hmacs=3, ids=4, count=min(n, 100_000))
        empty = Database(f"sqlite:///{Path(tmp) / 'floor.db'}")
        upgrade(empty.engine)
        empty.dispose()
        f_write = write_floor(Path(tmp) / "direct.db", Path(tmp) / "floor.db",
                              ["organization", "guarantor", "contact_point"],
                              batch_rows=4 * args.batch, units=n)
    print(f"patients: {n:,}  workers: {args.workers}  batch: {args.batch}")
    print(f"encrypted insert : {n / t_enc:>10,.0f} patients/s  ({t_enc:.2f} s)")
    print(f"encrypted, direct-write workers: {n / t_direct:>10,.0f} patients/s  "
          f"({t_direct:.2f} s)")
    print(f"plaintext insert : {n / t_plain:>10,.0f} patients/s  ({t_plain:.2f} s)")
    print(f"crypto alone     : {n / t_crypto:>10,.0f} patients/s  ({t_crypto:.2f} s)")
    print(f"ratio encrypted/plaintext insert : {t_enc / t_plain:.2f}")
    print(f"ratio encrypted insert/crypto alone : {t_enc / t_crypto:.2f}  (target <= 1.5)")
    print(f"ratio direct-write insert/crypto alone : {t_direct / t_crypto:.2f}  (target <= 1.5)")
    print(f"ratio direct-write/plaintext insert : {t_direct / t_plain:.2f}")
    print(f"peak memory: main {own:.0f} MB, largest worker {children:.0f} MB  (target < 500)")
    top = ceiling(f_crypto, f_write, args.workers)
    print(f"floor, bare primitives: crypto {f_crypto * 1e6:.1f} us + sqlite3 write "
          f"{f_write * 1e6:.1f} us of CPU per patient -> at most {top:,.0f} patients/s "
          f"on {args.workers} cores (one SQLite writer: at most {1 / f_write:,.0f}/s)")
    print(f"ratio direct-write/floor ceiling : {(n / t_direct) / top:.2f} of the ceiling")
    return 0


if __name__ == "__main__":
    sys.exit(main())
