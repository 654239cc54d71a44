"""Bulk loading of people with every PHI field encrypted and indexed.

Encryption is the unavoidable cost of storing PHI, so the bulk path spends its effort
there: sealing runs in worker processes (both cores), the main process only writes
prepared rows with `executemany`, and rows stream through in batches so memory stays flat
whatever the input size. Ingest and the benchmark (`bench/phi_store.py`) use it.
"""

from __future__ import annotations

import json
import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from itertools import islice
from typing import Any

from sqlalchemy import Connection, insert

from carecollect.kit.contact import phone_time_zones, warm_lookups, zip_time_zone
from carecollect.kit.crypto.keys import OrganizationKeys
from carecollect.kit.ids import uuid7
from carecollect.kit.models import utcnow
from carecollect.patient.models import ContactPoint, Guarantor


@dataclass(frozen=True, slots=True)
class PersonRecord:
    """One person as an import source gives it (already validated)."""

    first_name: str
    last_name: str
    date_of_birth: str | None  # ISO date
    phone: str | None = None  # E.164
    line_type: str | None = None
    email: str | None = None
    line1: str | None = None
    city: str | None = None
    state: str | None = None
    zip_code: str | None = None


@dataclass(slots=True)
class SealedBatch:
    """Prepared rows of one batch, ready for `executemany`."""

    guarantors: list[dict[str, Any]] = field(default_factory=list)
    contact_points: list[dict[str, Any]] = field(default_factory=list)


def seal_people(
    keys: OrganizationKeys, people: Sequence[PersonRecord], *, now: datetime | None = None
) -> SealedBatch:
    """Encrypt and index a batch of people (pure CPU work; no database)."""
    from carecollect.kit.crypto.types import Sealed

    now = now or utcnow()
    cipher, blind = keys.cipher(), keys.blind()
    org = keys.organization_id
    g_ids = [uuid7() for _ in people]
    g_table, c_table = Guarantor.__tablename__, ContactPoint.__tablename__
    firsts = cipher.seal_many(g_table, "first_name", g_ids, [p.first_name for p in people])
    lasts = cipher.seal_many(g_table, "last_name", g_ids, [p.last_name for p in people])
    dobs = cipher.seal_many(g_table, "date_of_birth", g_ids, [p.date_of_birth for p in people])
    batch = SealedBatch()
    points = batch.contact_points
    for index, person in enumerate(people):
        gid = g_ids[index]
        zone = zip_time_zone(person.zip_code) if person.zip_code else None
        batch.guarantors.append(
            {
                "id": gid,
                "organization_id": org,
                "first_name": Sealed(firsts[index] or b""),
                "last_name": Sealed(lasts[index] or b""),
                "date_of_birth": Sealed(dob) if (dob := dobs[index]) else None,
                "name_dob_bidx": (
                    blind.name_dob(person.last_name, person.date_of_birth)
                    if person.date_of_birth
                    else None
                ),
                "state": person.state,
                "mailing_tz": zone,
                "other_known_tz": [],
                "city_is_nyc": False,
                "preferred_language": "en",
                "source_key": None,
                "created_at": now,
                "updated_at": now,
            }
        )
        base: dict[str, Any] = {
            "organization_id": org,
            "guarantor_id": gid,
            "value_bidx": None,
            "postal_code": None,
            "line_type": None,
            "area_code_tzs": [],
            "address_tz": None,
            "owner": "debtor",
            "employer_provided": False,
            "verified": False,
            "is_primary": True,
            "source": "import",
            "active": True,
            "created_at": now,
            "updated_at": now,
        }
        if person.phone:
            pid = uuid7()
            points.append(
                base
                | {
                    "id": pid,
                    "kind": "phone",
                    "value": cipher.seal(c_table, "value", pid, person.phone),
                    "value_bidx": blind.value("phone", person.phone),
                    "line_type": person.line_type,
                    "area_code_tzs": list(phone_time_zones(person.phone)),
                }
            )
        if person.email:
            eid = uuid7()
            points.append(
                base
                | {
                    "id": eid,
                    "kind": "email",
                    "value": cipher.seal(c_table, "value", eid, person.email),
                    "value_bidx": blind.value("email", person.email),
                }
            )
        if person.line1 and person.zip_code:
            aid = uuid7()
            address = json.dumps(
                {"line1": person.line1, "city": person.city, "state": person.state,
                 "zip": person.zip_code},
                sort_keys=True,
            )
            points.append(
                base
                | {
                    "id": aid,
                    "kind": "postal",
                    "value": cipher.seal(c_table, "value", aid, address),
                    "postal_code": cipher.seal(c_table, "postal_code", aid, person.zip_code),
                    "address_tz": zone,
                }
            )
    return batch


def write_batch(connection: Connection, batch: SealedBatch) -> None:
    """Insert one prepared batch (the caller owns the transaction)."""
    if batch.guarantors:
        connection.execute(insert(Guarantor), batch.guarantors)
    if batch.contact_points:
        connection.execute(insert(ContactPoint), batch.contact_points)


# Parallel sealing ------------------------------------------------------------------------

_worker_keys: OrganizationKeys | None = None


def _init_worker(keys: OrganizationKeys) -> None:
    global _worker_keys
    _worker_keys = keys


def _seal_in_worker(people: Sequence[PersonRecord]) -> SealedBatch:
    assert _worker_keys is not None  # noqa: S101 - set by the pool initializer
    return seal_people(_worker_keys, people)


def _bounded_map(pool: Any, func: Callable[[Any], Any], items: Iterable[Any],
                 in_flight: int) -> Iterator[Any]:
    """`pool.imap` with back-pressure: `Pool.imap` reads its whole input eagerly, which
    would hold a large import in memory; this keeps at most `in_flight` tasks queued."""
    pending: deque[Any] = deque()
    for item in items:
        pending.append(pool.apply_async(func, (item,)))
        if len(pending) >= in_flight:
            yield pending.popleft().get()
    while pending:
        yield pending.popleft().get()


def _chunks(records: Iterable[PersonRecord], size: int) -> Iterator[list[PersonRecord]]:
    iterator = iter(records)
    while chunk := list(islice(iterator, size)):
        yield chunk


def sealed_batches(
    keys: OrganizationKeys,
    records: Iterable[PersonRecord],
    *,
    batch_size: int = 2000,
    workers: int | None = None,
) -> Iterator[SealedBatch]:
    """Seal `records` in batches, in `workers` processes (default: every core), in order.

    At most two batches per worker are in flight, so memory stays flat.
    """
    workers = workers if workers is not None else (os.cpu_count() or 1)
    if workers <= 1:
        for chunk in _chunks(records, batch_size):
            yield seal_people(keys, chunk)
        return
    warm_lookups()
    context = multiprocessing.get_context("fork")
    with context.Pool(workers, initializer=_init_worker, initargs=(keys,)) as pool:
        yield from _bounded_map(pool, _seal_in_worker, _chunks(records, batch_size),
                                2 * workers)


def bulk_load_people(
    connection: Connection,
    keys: OrganizationKeys,
    records: Iterable[PersonRecord],
    *,
    batch_size: int = 2000,
    workers: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Seal in parallel and write every batch; returns the number of people written."""
    written = 0
    for batch in sealed_batches(keys, records, batch_size=batch_size, workers=workers):
        write_batch(connection, batch)
        written += len(batch.guarantors)
        if progress is not None:
            progress(written)
    return written



# Direct-write workers (SQLite) ------------------------------------------------------------
# Moving prepared rows back to one writer costs more than writing them: every value is
# pickled twice and then run through SQLAlchemy's per-value processing. On SQLite the
# workers can write their own batches instead: the database serializes writers
# (BEGIN IMMEDIATE with a busy timeout), so while one worker writes the other seals, and
# no row crosses a process boundary. Values go through the columns' own SQLAlchemy bind
# processors, compiled once, so the stored form is exactly what the ORM writes.

_direct: dict[str, Any] = {}


def _converters(dialect: Any) -> dict[str, tuple[str, Callable[[dict[str, Any]], tuple[Any, ...]]]]:
    out: dict[str, tuple[str, Callable[[dict[str, Any]], tuple[Any, ...]]]] = {}
    for model in (Guarantor, ContactPoint):
        table = model.__table__
        columns = [c.name for c in table.columns]
        processors = [c.type._cached_bind_processor(dialect) for c in table.columns]
        pairs = list(zip(columns, processors, strict=True))

        def convert(
            row: dict[str, Any], pairs: list[tuple[str, Any]] = pairs
        ) -> tuple[Any, ...]:
            return tuple(p(row[c]) if p is not None else row[c] for c, p in pairs)

        names = ", ".join(columns)
        marks = ", ".join("?" for _ in columns)
        name = model.__tablename__
        sql = f"INSERT INTO {name} ({names}) VALUES ({marks})"  # noqa: S608
        out[name] = (sql, convert)
    return out


def _init_direct_worker(keys: OrganizationKeys, path: str) -> None:
    import sqlite3

    from sqlalchemy.dialects.sqlite import pysqlite

    connection = sqlite3.connect(path, isolation_level=None, timeout=120)
    connection.execute("PRAGMA foreign_keys=ON")
    connection.execute("PRAGMA busy_timeout=120000")
    _direct.update(keys=keys, connection=connection,
                   converters=_converters(pysqlite.SQLiteDialect_pysqlite()))


def _seal_and_write(people: Sequence[PersonRecord]) -> int:
    keys: OrganizationKeys = _direct["keys"]
    connection = _direct["connection"]
    converters = _direct["converters"]
    batch = seal_people(keys, people)
    g_sql, g_convert = converters[Guarantor.__tablename__]
    c_sql, c_convert = converters[ContactPoint.__tablename__]
    guarantors = [g_convert(row) for row in batch.guarantors]
    points = [c_convert(row) for row in batch.contact_points]
    connection.execute("BEGIN IMMEDIATE")
    try:
        connection.executemany(g_sql, guarantors)
        connection.executemany(c_sql, points)
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")
    return len(guarantors)


def parallel_load_sqlite(
    database_path: str,
    keys: OrganizationKeys,
    records: Iterable[PersonRecord],
    *,
    batch_size: int = 2000,
    workers: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Seal and write `records` into the SQLite file at `database_path` from `workers`
    processes, one committed transaction per batch; returns the number written.

    Each batch is atomic; a crash loses only the batches in flight, and the caller records
    the run (counts, never values) in the audit trail."""
    workers = workers if workers is not None else (os.cpu_count() or 1)
    warm_lookups()
    written = 0
    context = multiprocessing.get_context("fork")
    with context.Pool(
        max(1, workers), initializer=_init_direct_worker, initargs=(keys, database_path)
    ) as pool:
        for count in _bounded_map(pool, _seal_and_write, _chunks(records, batch_size),
                                  2 * max(1, workers)):
            written += count
            if progress is not None:
                progress(written)
    return written
