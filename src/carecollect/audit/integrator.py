"""The integrator: turns recorded events into the signed, tamper-evident log.

For each batch of not-yet-sequenced events, in recording order, it assigns the next
gap-free sequence numbers, computes each leaf hash over the event's canonical bytes
(RFC 6962: SHA-256(0x00 || bytes)), the chain hash, and every Merkle tree hash the leaf
completes; then it signs a checkpoint of the new tree and commits all of it in one
transaction. After the commit, the checkpoint is also written as a file into the
checkpoint directory, outside the database (ARCHITECTURE.md section 5).

Only one integrator runs at a time: on PostgreSQL it holds `pg_try_advisory_lock` for the
whole run (a second integrator returns at once); on SQLite every batch is a
`BEGIN IMMEDIATE` transaction that re-reads the log head, so two integrators serialize.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, text

from carecollect.audit.service import RECORDING_LOCK_KEY
from carecollect.audit.tree_store import pack, read_positions
from carecollect.errors import AppError
from carecollect.kit.audit.canonical import canonical_bytes
from carecollect.kit.audit.chain import CHAIN_START, chain_hash
from carecollect.kit.audit.checkpoint import Checkpoint, Signer
from carecollect.kit.audit.merkle import (
    CompactRange,
    leaf_hash,
    positions_for_range,
)

INTEGRATOR_LOCK_KEY = 0x6361_7265_6175_6402  # "careaud\x02"
DEFAULT_BATCH_SIZE = 20_000

# The columns that enter an event's canonical bytes, in canonical_bytes() order.
EVENT_COLUMNS = "e.body, e.organization_id, e.patient_id, e.recorded_at"


@dataclass(frozen=True, slots=True)
class IntegrationResult:
    integrated: int
    tree_size: int
    root_hash: bytes | None
    skipped: bool = False  # another integrator holds the lock


@dataclass(slots=True)
class _Head:
    size: int
    chain: bytes
    last_ordinal: int
    tree: CompactRange


def checkpoint_file_name(tree_size: int) -> str:
    return f"checkpoint-{tree_size:015d}.txt"


def write_checkpoint_file(directory: Path, tree_size: int, note: str) -> Path:
    """Write a signed checkpoint atomically (temporary file, fsync, rename)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / checkpoint_file_name(tree_size)
    if path.exists():
        if path.read_text(encoding="utf-8") == note:
            return path
        # Never overwrite a signed checkpoint: it is the evidence against a rollback.
        raise AuditIntegrityError(
            f"checkpoint file {path.name} already exists with a different tree; not overwriting"
        )
    temporary = directory / f".{path.name}.{os.getpid()}.tmp"
    with open(temporary, "w", encoding="utf-8") as handle:
        handle.write(note)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
    return path


def _read_head(conn: Connection) -> _Head:
    row = conn.exec_driver_sql(
        "SELECT seq, chain_hash, event_ordinal FROM audit_log_entry "
        "ORDER BY seq DESC LIMIT 1"
    ).first()
    if row is None:
        return _Head(0, CHAIN_START, 0, CompactRange())
    size = int(row[0]) + 1
    positions = positions_for_range(0, size)
    stored = read_positions(conn, positions)
    return _Head(size, bytes(row[1]), int(row[2]), CompactRange.from_stored(size, stored))


@contextmanager
def _immediate(engine: Engine) -> Iterator[Connection]:
    """A write transaction; on SQLite taken with BEGIN IMMEDIATE (the write lock first)."""
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            conn.info["sqlite_begin"] = "BEGIN IMMEDIATE"
        try:
            with conn.begin():
                yield conn
        finally:
            conn.info.pop("sqlite_begin", None)


def _safe_frontier(lock_conn: Connection) -> int | None:
    """PostgreSQL: the highest ordinal below which every event is committed.

    Identity values are taken before commit, so a transaction holding ordinal 5 may commit
    after ordinal 6 is visible. Recording transactions hold RECORDING_LOCK_KEY shared; by
    taking it exclusively for an instant we wait out every in-flight recorder, and any
    later recorder draws a larger ordinal than the maximum read here.
    """
    lock_conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": RECORDING_LOCK_KEY})
    try:
        value = lock_conn.execute(text("SELECT max(ordinal) FROM audit_event")).scalar()
    finally:
        lock_conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": RECORDING_LOCK_KEY})
    return 0 if value is None else int(value)


def _integrate_batch(
    conn: Connection, head: _Head, frontier: int | None, batch_size: int
) -> Sequence[Any]:
    limit = "" if frontier is None else f" AND e.ordinal <= {int(frontier)}"
    rows = conn.exec_driver_sql(
        f"SELECT e.ordinal, {EVENT_COLUMNS} FROM audit_event e "  # noqa: S608
        f"WHERE e.ordinal > {int(head.last_ordinal)}{limit} "
        f"ORDER BY e.ordinal LIMIT {int(batch_size)}"
    ).all()
    if not rows:
        return rows
    seq, chain = head.size, head.chain
    leaves = [
        leaf_hash(canonical_bytes(body, organization_id, patient_id, recorded_at, seq + i))
        for i, (_, body, organization_id, patient_id, recorded_at) in enumerate(rows)
    ]
    entries: list[tuple[int, int, bytes]] = []
    for i, leaf in enumerate(leaves):
        chain = chain_hash(chain, leaf)
        entries.append((seq + i, rows[i][0], chain))
    hashes: list[tuple[int, bytes]] = []
    head.tree.extend(leaves, hashes)
    seq += len(rows)
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    param = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    # executemany on the driver cursor: the integrator's hot path (CONVENTIONS.md: batch
    # work uses Core or SQL, not per-row ORM objects).
    cursor.executemany(
        "INSERT INTO audit_log_entry (seq, event_ordinal, chain_hash) "  # noqa: S608 (placeholders)
        f"VALUES ({param}, {param}, {param})",
        entries,
    )
    cursor.executemany(
        f"INSERT INTO audit_tree_hash (position, hashes) VALUES ({param}, {param})",  # noqa: S608
        pack(hashes),
    )
    cursor.close()
    head.size, head.chain, head.last_ordinal = seq, chain, int(rows[-1][0])
    return rows


def _sign_checkpoint(conn: Connection, head: _Head, signer: Signer) -> tuple[int, str]:
    root = head.tree.root()
    note = Checkpoint(signer.name, head.size, root).sign(signer)
    conn.execute(
        text(
            "INSERT INTO audit_checkpoint (tree_size, root_hash, chain_hash, note, created_at) "
            "VALUES (:size, :root, :chain, :note, :created)"
        ),
        {
            "size": head.size,
            "root": root,
            "chain": head.chain,
            "note": note,
            "created": _db_timestamp(conn),
        },
    )
    return head.size, note


def _db_timestamp(conn: Connection) -> Any:
    now = datetime.now(UTC)
    if conn.dialect.name == "sqlite":
        return now.replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")
    return now


def integrate(
    engine: Engine,
    *,
    signer: Signer,
    checkpoint_dir: Path,
    batch_size: int = DEFAULT_BATCH_SIZE,
    max_batches: int | None = None,
) -> IntegrationResult:
    """Sequence, hash and checkpoint every pending event; return what was done.

    Each batch commits its entries, tree hashes and a signed checkpoint together, so every
    committed entry is always covered by a checkpoint. Checkpoint files are written after
    the commit (a file must never sign a tree the database does not hold); files missing
    after a crash are rewritten by the next run.
    """
    is_postgres = engine.dialect.name == "postgresql"
    _refuse_if_rolled_back(engine, checkpoint_dir)
    lock_conn: Connection | None = None
    if is_postgres:
        lock_conn = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        got = lock_conn.execute(
            text("SELECT pg_try_advisory_lock(:k)"), {"k": INTEGRATOR_LOCK_KEY}
        ).scalar()
        if not got:
            lock_conn.close()
            return IntegrationResult(0, -1, None, skipped=True)
    try:
        frontier = _safe_frontier(lock_conn) if lock_conn is not None else None
        total = 0
        batches = 0
        notes: list[tuple[int, str]] = []
        head: _Head | None = None
        while max_batches is None or batches < max_batches:
            with _immediate(engine) as conn:
                # Re-read the head inside the write transaction: on SQLite another
                # integrator may have committed since our last batch.
                head = _read_head(conn)
                rows = _integrate_batch(conn, head, frontier, batch_size)
                latest = conn.exec_driver_sql(
                    "SELECT max(tree_size) FROM audit_checkpoint"
                ).scalar()
                if head.size > 0 and (latest is None or int(latest) < head.size):
                    notes.append(_sign_checkpoint(conn, head, signer))
            batches += 1
            total += len(rows)
            if len(rows) < batch_size:
                break
        for size, note in notes:
            write_checkpoint_file(checkpoint_dir, size, note)
        _restore_missing_files(engine, checkpoint_dir)
        size = head.size if head is not None else 0
        root = head.tree.root() if head is not None and head.size else None
        return IntegrationResult(total, size, root)
    finally:
        if lock_conn is not None:
            lock_conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": INTEGRATOR_LOCK_KEY})
            lock_conn.close()


class AuditIntegrityError(AppError):
    """The log contradicts its own checkpoints; integrating would bury the evidence."""

    exit_code = 1


def largest_file_checkpoint(checkpoint_dir: Path) -> int:
    sizes = [
        int(p.name[len("checkpoint-"):-len(".txt")])
        for p in checkpoint_dir.glob("checkpoint-*.txt")
        if p.name[len("checkpoint-"):-len(".txt")].isdigit()
    ] if checkpoint_dir.is_dir() else []
    return max(sizes, default=0)


def _refuse_if_rolled_back(engine: Engine, checkpoint_dir: Path) -> None:
    # Fail closed: after a restore of an older database, appending would sign new trees
    # of the same sizes as the directory's checkpoints and overwrite that evidence.
    signed = largest_file_checkpoint(checkpoint_dir)
    if signed == 0:
        return
    with engine.connect() as conn:
        value = conn.exec_driver_sql("SELECT max(seq) FROM audit_log_entry").scalar()
    size = 0 if value is None else int(value) + 1
    if size < signed:
        raise AuditIntegrityError(
            f"the audit log holds {size} entries but the checkpoint directory signs {signed}: "
            "the database is behind its checkpoints (rolled back or truncated); run "
            "`carecollect audit verify` and restore the database before integrating"
        )


def _restore_missing_files(engine: Engine, checkpoint_dir: Path) -> None:
    """Write the latest checkpoint file if a crash after commit left it unwritten."""
    with engine.connect() as conn:
        row = conn.exec_driver_sql(
            "SELECT tree_size, note FROM audit_checkpoint ORDER BY tree_size DESC LIMIT 1"
        ).first()
    if row is not None and not (checkpoint_dir / checkpoint_file_name(int(row[0]))).exists():
        write_checkpoint_file(checkpoint_dir, int(row[0]), str(row[1]))
