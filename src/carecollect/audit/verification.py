"""Verifying the whole log, and inclusion proofs an outside auditor can check offline."""

from __future__ import annotations

import base64
import itertools
import json
import multiprocessing
import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine

from carecollect.audit.integrator import EVENT_COLUMNS
from carecollect.audit.tree_store import read_positions, read_range
from carecollect.errors import BadInput, NotFound
from carecollect.kit.audit.canonical import canonical_bytes
from carecollect.kit.audit.chain import CHAIN_START
from carecollect.kit.audit.checkpoint import (
    CheckpointError,
    Verifier,
    open_checkpoint,
)
from carecollect.kit.audit.merkle import (
    ProofError,
    consistency_ranges,
    hashes_for,
    inclusion_ranges,
    leaf_hash,
    verify_consistency,
    verify_inclusion,
)
from carecollect.kit.audit.verifier import (
    CheckpointSource,
    Problem,
    SegmentResult,
    SegmentRow,
    VerifyReport,
    combine_segments,
    verify_log,
    verify_segment,
)

PROOF_FORMAT = "carecollect-audit-inclusion-proof/v1"
_FETCH = 10_000
# Rows per fetchmany() of the segment verifier (the DB-API cursor's arraysize).
_SEGMENT_FETCH = 20_000
# Below this many entries one process verifies the whole log (starting a worker costs more
# than it saves); above it the log is split across AUTO_WORKERS processes (one per core,
# at least two, at most eight).
PARALLEL_MIN_ENTRIES = 100_000
AUTO_WORKERS = max(2, min(8, os.cpu_count() or 2))
# A large log is cut into up to this many segments per worker, each of at least
# MIN_SEGMENT entries (see segment_bounds).
SEGMENTS_PER_WORKER = 4
MIN_SEGMENT = 50_000
_MMAP_BYTES = 1 << 30

# The version-1 canonical bytes (kit.audit.canonical.canonical_bytes) built by the database
# while it reads the row, so Python only hashes: NULL exactly when the event is missing
# (its columns are NOT NULL). PostgreSQL text cannot hold the leaf's 0x00 prefix, so the
# verifier adds it.
_CANONICAL_TEXT = (
    """'{"event":' || e.body || ',"organization_id":' || """
    """COALESCE('"' || e.organization_id || '"', 'null') || ',"patient_id":' || """
    """COALESCE('"' || e.patient_id || '"', 'null') || ',"recorded_at":"' || """
    """e.recorded_at || '","seq":' || CAST(l.seq AS TEXT) || ',"v":1}'"""
)


# SQLite: the same bytes with one printf() call (also named format() since SQLite 3.38) instead of
# nine concatenations (each || copies the whole string so far; printf() writes once: about
# 0.6 us less per row, a fifth of the fetch). `'{"event":' || e.body` is NULL exactly when
# the event is missing (NULL || anything is NULL). %s renders text as || does, %d the
# integer sequence number (a rowid, always an integer) as CAST(... AS TEXT) does.
_CANONICAL_SQLITE = (
    """CAST('{"event":' || e.body || printf(',"organization_id":%s,"patient_id":%s,"""
    """"recorded_at":"%s","seq":%d,"v":1}', COALESCE('"' || e.organization_id || '"', """
    """'null'), COALESCE('"' || e.patient_id || '"', 'null'), e.recorded_at, l.seq) AS BLOB)"""
)


def _segment_sql(dialect: str, begin: int, end: int) -> str:
    canonical = (
        f"convert_to({_CANONICAL_TEXT}, 'UTF8')" if dialect == "postgresql" else _CANONICAL_SQLITE
    )
    # The first segment has no lower bound, so a forged negative sequence number shows up.
    lower = f"l.seq >= {int(begin)} AND " if begin > 0 else ""
    return (
        f"SELECT l.seq, l.chain_hash, {canonical} FROM audit_log_entry l "  # noqa: S608 (ints)
        "LEFT JOIN audit_event e ON e.ordinal = l.event_ordinal "
        f"WHERE {lower}l.seq < {int(end)} ORDER BY l.seq"
    )


def _read_segment(
    driver: Any, dialect: str, begin: int, end: int, sizes: list[int]
) -> SegmentResult:
    """Verify entries [begin, end) through a DB-API connection (already in the snapshot
    to read): the stored chain before `begin`, then the rows in large fetches (a
    server-side cursor on PostgreSQL, so memory stays at one fetch)."""
    start: bytes | None = CHAIN_START
    cursor = driver.cursor()
    try:
        if begin > 0:
            cursor.execute(
                f"SELECT chain_hash FROM audit_log_entry WHERE seq = {int(begin) - 1}"  # noqa: S608
            )
            row = cursor.fetchone()
            start = None if row is None else bytes(row[0])
    finally:
        cursor.close()
    if dialect == "postgresql":
        cursor = driver.cursor(name=f"audit_verify_{begin}")
        cursor.itersize = _SEGMENT_FETCH
    else:
        cursor = driver.cursor()
    cursor.arraysize = _SEGMENT_FETCH
    try:
        cursor.execute(_segment_sql(dialect, begin, end))

        def batches() -> Iterator[Sequence[SegmentRow]]:
            while rows := cursor.fetchmany(_SEGMENT_FETCH):
                yield rows

        return verify_segment(batches(), begin, end, start, sizes)
    finally:
        cursor.close()


def _segment_worker(
    url: str, snapshot: str | None, begin: int, end: int, sizes: list[int]
) -> SegmentResult:
    """Run in a worker process: its own connection straight through the driver (no
    engine, pool or logging in the child), in the main process's snapshot on PostgreSQL.
    On SQLite the log is append-only below the main process's size, so the rows below
    `end` read now are the rows the main process sees."""
    if snapshot is None:
        driver: Any = sqlite3.connect(url, isolation_level=None)
        try:
            # Memory-mapped reads spare a page copy per row (about a fifth of the fetch).
            driver.execute(f"PRAGMA mmap_size={_MMAP_BYTES}")
            driver.execute("BEGIN")
            return _read_segment(driver, "sqlite", begin, end, sizes)
        finally:
            driver.close()
    import psycopg

    with psycopg.connect(url, connect_timeout=10) as pg:
        pg.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        pg.execute(f"SET TRANSACTION SNAPSHOT '{snapshot}'")
        result = _read_segment(pg, "postgresql", begin, end, sizes)
        pg.rollback()
        return result


def _worker_target(engine: Engine) -> str | None:
    """What a worker process connects to (a SQLite file path or a libpq URL), or None
    when the database cannot be opened from another process (in-memory SQLite)."""
    url = engine.url
    if engine.dialect.name == "sqlite":
        path = url.database or ""
        if (
            not path
            or path == ":memory:"
            or path.startswith("file:")
            or "mode=memory" in str(url.query)
        ):
            return None
        return os.path.abspath(path)
    if engine.dialect.name == "postgresql" and engine.dialect.driver == "psycopg":
        return url.set(drivername="postgresql").render_as_string(hide_password=False)
    return None


def _process_context() -> Any:
    # fork is cheapest and needs nothing importable, but is only safe from a process with
    # a single thread (a web server's other threads may hold locks the child would need).
    if threading.active_count() == 1 and "fork" in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("spawn")


def _checkpoint_sizes(sources: list[CheckpointSource], verifier: Verifier) -> list[int]:
    sizes = set()
    for source in sources:
        try:
            sizes.add(open_checkpoint(source.note, verifier).tree_size)
        except CheckpointError:
            continue
    return sorted(sizes)


def segment_bounds(size: int, workers: int) -> list[int]:
    """Where [0, size) is cut: `workers` segments, or for a large log up to
    SEGMENTS_PER_WORKER per worker of at least MIN_SEGMENT entries each, handed out to the
    workers as they free up, so a worker slowed down by other load on the machine does
    not hold up the end (and segments after a bad one need not run)."""
    if size <= 0:
        return [0]
    count = max(1, min(workers, size))
    if workers > 1:
        count = max(count, min(workers * SEGMENTS_PER_WORKER, size // MIN_SEGMENT))
    return [size * k // count for k in range(count + 1)]


def _verify_segments(
    engine: Engine,
    conn: Connection,
    sources: list[CheckpointSource],
    verifier: Verifier,
    workers: int | None,
) -> VerifyReport:
    """Split [0, size) into consecutive segments, verify them in worker processes at the
    same time (or here, for one worker), and combine their results. The main process
    looks for events missing from the log (`_unlogged_events`) while the workers run."""
    last = conn.exec_driver_sql("SELECT max(seq) FROM audit_log_entry").scalar()
    size = 0 if last is None else int(last) + 1
    target = _worker_target(engine)
    if workers is None:
        workers = AUTO_WORKERS if size >= PARALLEL_MIN_ENTRIES else 1
    if target is None or size < 2:
        workers = 1
    workers = max(1, min(workers, size))
    sizes = _checkpoint_sizes(sources, verifier)
    dialect = engine.dialect.name
    driver = conn.connection.driver_connection
    unlogged: list[Problem] = []
    if size == 0:
        report = combine_segments([], sources, verifier)
    elif workers == 1 or target is None:
        report = combine_segments(
            [_read_segment(driver, dialect, 0, size, sizes)], sources, verifier
        )
        unlogged = _unlogged_events(conn)
    else:
        snapshot = (
            str(conn.exec_driver_sql("SELECT pg_export_snapshot()").scalar())
            if dialect == "postgresql"
            else None
        )
        bounds = segment_bounds(size, workers)
        pool = ProcessPoolExecutor(max_workers=workers, mp_context=_process_context())
        try:
            futures: list[Future[SegmentResult]] = [
                pool.submit(_segment_worker, target, snapshot, begin, end, sizes)
                for begin, end in itertools.pairwise(bounds)
            ]
            unlogged = _unlogged_events(conn)
            results: list[SegmentResult] = []
            for future in futures:
                results.append(future.result())
                if results[-1].problem is not None:
                    break  # combine_segments stops at the first bad segment
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        report = combine_segments(results, sources, verifier)
    report.problems.extend(unlogged)
    return report


def _entry_batches(conn: Connection) -> Iterator[Sequence[Any]]:
    result = conn.execution_options(stream_results=True, yield_per=_FETCH).exec_driver_sql(
        f"SELECT l.seq, l.chain_hash, {EVENT_COLUMNS} FROM audit_log_entry l "  # noqa: S608
        "LEFT JOIN audit_event e ON e.ordinal = l.event_ordinal ORDER BY l.seq"
    )
    while True:
        rows = result.fetchmany(_FETCH)
        if not rows:
            return
        yield rows


def checkpoint_files(directory: Path) -> list[Path]:
    if not directory.is_dir():
        return []
    return sorted(
        p
        for p in directory.iterdir()
        if p.name.startswith("checkpoint-") and p.name.endswith(".txt")
    )


def _file_sources(directory: Path | None) -> list[CheckpointSource]:
    sources = []
    for path in checkpoint_files(directory) if directory is not None else []:
        try:
            note = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            note = ""
        sources.append(CheckpointSource(label=f"file {path.name}", note=note))
    return sources


def _database_sources(conn: Connection) -> list[CheckpointSource]:
    return [
        CheckpointSource(
            label=f"database checkpoint of size {int(r[0])}",
            note=str(r[3]),
            claimed_size=int(r[0]),
            claimed_root=bytes(r[1]),
            claimed_chain=bytes(r[2]),
        )
        for r in conn.exec_driver_sql(
            "SELECT tree_size, root_hash, chain_hash, note FROM audit_checkpoint ORDER BY tree_size"
        )
    ]


def _unlogged_events(conn: Connection) -> list[Problem]:
    """Events below the integrated frontier that are not in the log were inserted
    behind the integrator's back (on PostgreSQL the frontier rule guarantees no
    legitimate event can be committed there later)."""
    last = conn.exec_driver_sql("SELECT max(event_ordinal), count(*) FROM audit_log_entry").first()
    if last is None or last[0] is None:
        return []
    # All events minus those above the frontier (few: not yet integrated): SQLite counts a
    # whole table from its smallest index, far cheaper than a rowid range of the table.
    events = int(conn.exec_driver_sql("SELECT count(*) FROM audit_event").scalar() or 0)
    events -= int(
        conn.exec_driver_sql(
            f"SELECT count(*) FROM audit_event WHERE ordinal > {int(last[0])}"  # noqa: S608
        ).scalar()
        or 0
    )
    if events <= int(last[1]):
        return []
    row = conn.exec_driver_sql(
        "SELECT e.ordinal, (SELECT min(l.seq) FROM audit_log_entry l "  # noqa: S608 (an int)
        "WHERE l.event_ordinal > e.ordinal) FROM audit_event e "
        f"WHERE e.ordinal <= {int(last[0])} AND NOT EXISTS (SELECT 1 FROM audit_log_entry l "
        "WHERE l.event_ordinal = e.ordinal) ORDER BY e.ordinal LIMIT 1"
    ).first()
    if row is None:
        return []
    return [
        Problem(
            None if row[1] is None else int(row[1]),
            "forged-event",
            f"event {int(row[0])} was inserted among sequenced events but is not in the log",
        )
    ]


def _check_consistency(conn: Connection, report: VerifyReport) -> None:
    sizes = sorted({c.tree_size for c in report.valid_checkpoints})
    roots = {c.tree_size: c.root_hash for c in report.valid_checkpoints}
    for old, new in itertools.pairwise(sizes):
        try:
            proof = hashes_for(consistency_ranges(old, new), lambda ps: read_positions(conn, ps))
            verify_consistency(old, new, roots[old], roots[new], proof)
        except ProofError as exc:
            report.problems.append(
                Problem(
                    old, "consistency", f"checkpoints {old} and {new} are not consistent: {exc}"
                )
            )
            return


def verify_database(
    engine: Engine,
    *,
    verifier: Verifier,
    checkpoint_dir: Path | None,
    deep: bool = False,
    workers: int | None = None,
) -> VerifyReport:
    """Verify every entry, checkpoint (database and directory) and the consistency of
    consecutive checkpoints; with `deep`, also compare every stored tree hash. Read-only.

    `workers` is how many processes share the entries (None: AUTO_WORKERS for a log of
    at least PARALLEL_MIN_ENTRIES entries, else one); `deep` always uses one.
    """
    # Files first: the integrator writes a file only after its batch commits, so every file
    # read now signs a tree the database snapshot taken below already holds.
    files = _file_sources(checkpoint_dir)
    # One snapshot for the whole check, or a concurrent integration would show entries
    # newer than the checkpoints read (SQLite's WAL read transaction is one already).
    options = {"isolation_level": "REPEATABLE READ"} if engine.dialect.name == "postgresql" else {}
    with engine.connect().execution_options(**options) as conn, conn.begin():
        sources = _database_sources(conn) + files
        if deep:
            report = verify_log(
                _entry_batches(conn),
                sources,
                verifier,
                lambda first, end: read_range(conn, first, end),
            )
            report.problems.extend(_unlogged_events(conn))
        else:
            report = _verify_segments(engine, conn, sources, verifier, workers)
        if report.ok:
            _check_consistency(conn, report)
    return report


# Inclusion proofs -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CheckedProof:
    seq: int
    tree_size: int
    origin: str
    event: dict[str, Any]


def prove(engine: Engine, seq: int, *, verifier: Verifier) -> dict[str, Any]:
    """An inclusion proof of entry `seq` against the latest signed checkpoint."""
    with engine.connect() as conn, conn.begin():
        row = conn.exec_driver_sql(
            "SELECT tree_size, note FROM audit_checkpoint ORDER BY tree_size DESC LIMIT 1"
        ).first()
        if row is None or seq < 0 or seq >= int(row[0]):
            raise NotFound(f"sequence number {seq} is not covered by a signed checkpoint")
        size, note = int(row[0]), str(row[1])
        event = conn.exec_driver_sql(
            f"SELECT l.seq, l.chain_hash, {EVENT_COLUMNS} FROM audit_log_entry l "  # noqa: S608
            f"JOIN audit_event e ON e.ordinal = l.event_ordinal WHERE l.seq = {int(seq)}"
        ).first()
        if event is None:
            raise NotFound(f"sequence number {seq} has no event (run `audit verify`)")
        canonical = canonical_bytes(event[2], event[3], event[4], event[5], seq)
        proof = hashes_for(inclusion_ranges(seq, size), lambda ps: read_positions(conn, ps))
    checkpoint = open_checkpoint(note, verifier)
    leaf = leaf_hash(canonical)
    # Never hand out a proof that does not check: it would point at a damaged log.
    verify_inclusion(seq, size, leaf, proof, checkpoint.root_hash)
    return {
        "format": PROOF_FORMAT,
        "event": canonical.decode("ascii"),
        "index": seq,
        "tree_size": size,
        "leaf_hash": leaf.hex(),
        "proof": [h.hex() for h in proof],
        "checkpoint": note,
        "public_key": verifier.encode(),
    }


def check_proof(document: Any, *, expected_key: Verifier | None = None) -> CheckedProof:
    """Check an inclusion proof with nothing but its own content (and optionally a public
    key the auditor already trusts). Raises BadInput for a malformed document and
    ProofError/CheckpointError when it does not verify."""
    if not isinstance(document, dict) or document.get("format") != PROOF_FORMAT:
        raise BadInput(f"not an audit inclusion proof (format must be {PROOF_FORMAT})")
    try:
        event_text = document["event"]
        index = document["index"]
        size = document["tree_size"]
        proof = [bytes.fromhex(h) for h in document["proof"]]
        note = document["checkpoint"]
        key_text = document["public_key"]
        if not (
            isinstance(event_text, str)
            and isinstance(note, str)
            and isinstance(key_text, str)
            and isinstance(index, int)
            and isinstance(size, int)
            and event_text.isascii()
        ) or any(len(h) != 32 for h in proof):
            raise TypeError
        event = json.loads(event_text)
        if not isinstance(event, dict):
            raise TypeError
    except (KeyError, TypeError, ValueError):
        raise BadInput("inclusion proof is missing fields or has malformed values") from None
    verifier = Verifier.parse(key_text)
    if expected_key is not None and expected_key != verifier:
        raise CheckpointError("the proof's public key is not the trusted public key")
    checkpoint = open_checkpoint(note, verifier)
    if checkpoint.tree_size != size:
        raise ProofError("the proof's tree size is not the checkpoint's tree size")
    if event.get("seq") != index or event.get("v") != 1:
        raise ProofError("the event's sequence number is not the proof's index")
    leaf = leaf_hash(event_text.encode("ascii"))
    if document.get("leaf_hash") not in (None, leaf.hex()):
        raise ProofError("the proof's leaf hash is not the hash of its event")
    verify_inclusion(index, size, leaf, proof, checkpoint.root_hash)
    return CheckedProof(index, size, checkpoint.origin, event)


def encode_root(root: bytes) -> str:
    return base64.b64encode(root).decode()
