"""Floors: the least CPU any implementation could spend on this machine, measured with the
bare primitives and no framework, so a benchmark can say how far its target is from what
the hardware allows.

* `crypto_floor`: AES-256-GCM seals (fresh 96-bit nonce each), HMAC-SHA256 blind indexes
  from a pre-keyed state and random 128-bit ids, in one tight loop.
* `write_floor`: the rows a real run stored, read back before the clock starts and written
  again with the stdlib `sqlite3` driver's `executemany` into a freshly migrated copy of
  the schema (every index, foreign keys on), one transaction per batch. SQLite has one
  writer at a time, so `1 / write floor` bounds any SQLite loader from above whatever the
  number of cores.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import sqlite3
import time
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM


def crypto_floor(*, seals: int, hmacs: int, ids: int, count: int) -> float:
    """CPU-seconds per unit for `seals` AES-GCM seals, `hmacs` HMACs and `ids` random ids."""
    aead = AESGCM(os.urandom(32))
    keyed = hmac.new(os.urandom(32), digestmod=hashlib.sha256)
    value, pair = b"Johnathan Q", b"castillo|1980-01-01"
    start = time.process_time()
    for _ in range(count):
        row_ids = [os.urandom(16) for _ in range(ids)]
        for _ in range(seals):
            aead.encrypt(os.urandom(12), value, row_ids[0])
        for _ in range(hmacs):
            state = keyed.copy()
            state.update(pair)
            state.digest()
    return (time.process_time() - start) / count


def write_floor(source: Path, target: Path, tables: list[str], *, batch_rows: int,
                units: int) -> float:
    """CPU-seconds per unit to write again, with bare `sqlite3`, every row of `tables`
    (in that order, parents first) of the database `source` into `target`, a migrated
    empty database with the same schema; `units` is what the rows stand for (patients,
    input rows) so the figure compares with the benchmark's."""
    with sqlite3.connect(str(source)) as reader:
        data = []
        for table in tables:
            columns = [row[1] for row in reader.execute(f"PRAGMA table_info({table})")]
            rows = reader.execute(f"SELECT {', '.join(columns)} FROM {table}").fetchall()  # noqa: S608
            sql = (f"INSERT INTO {table} ({', '.join(columns)}) "  # noqa: S608
                   f"VALUES ({', '.join('?' for _ in columns)})")
            data.append((sql, rows))
    writer = sqlite3.connect(str(target), isolation_level=None)
    writer.execute("PRAGMA foreign_keys=ON")
    start = time.process_time()
    for sql, rows in data:
        for index in range(0, len(rows), batch_rows):
            writer.execute("BEGIN IMMEDIATE")
            writer.executemany(sql, rows[index:index + batch_rows])
            writer.execute("COMMIT")
    elapsed = time.process_time() - start
    writer.close()
    return elapsed / units


def ceiling(crypto: float, write: float, cores: int) -> float:
    """The highest rate the floors allow: sealing spread over `cores`, one SQLite writer."""
    return min(1 / write, cores / (crypto + write))
