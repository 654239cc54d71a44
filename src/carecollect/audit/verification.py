"""Verifying the whole log, and inclusion proofs an outside auditor can check offline."""

from __future__ import annotations

import base64
import itertools
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine

from carecollect.audit.integrator import EVENT_COLUMNS
from carecollect.audit.tree_store import read_positions, read_range
from carecollect.errors import BadInput, NotFound
from carecollect.kit.audit.canonical import canonical_bytes
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
    VerifyReport,
    verify_log,
)

PROOF_FORMAT = "carecollect-audit-inclusion-proof/v1"
_FETCH = 10_000


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
    return sorted(p for p in directory.iterdir() if p.name.startswith("checkpoint-")
                  and p.name.endswith(".txt"))


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
            "SELECT tree_size, root_hash, chain_hash, note FROM audit_checkpoint "
            "ORDER BY tree_size"
        )
    ]


def _unlogged_events(conn: Connection, report: VerifyReport) -> None:
    """Events below the integrated frontier that are not in the log were inserted
    behind the integrator's back (on PostgreSQL the frontier rule guarantees no
    legitimate event can be committed there later)."""
    last = conn.exec_driver_sql(
        "SELECT max(event_ordinal), count(*) FROM audit_log_entry"
    ).first()
    if last is None or last[0] is None:
        return
    events = conn.exec_driver_sql(
        f"SELECT count(*) FROM audit_event WHERE ordinal <= {int(last[0])}"  # noqa: S608
    ).scalar()
    if int(events or 0) <= int(last[1]):
        return
    row = conn.exec_driver_sql(
        "SELECT e.ordinal, (SELECT min(l.seq) FROM audit_log_entry l "  # noqa: S608 (an int)
        "WHERE l.event_ordinal > e.ordinal) FROM audit_event e "
        f"WHERE e.ordinal <= {int(last[0])} AND NOT EXISTS (SELECT 1 FROM audit_log_entry l "
        "WHERE l.event_ordinal = e.ordinal) ORDER BY e.ordinal LIMIT 1"
    ).first()
    if row is not None:
        report.problems.append(Problem(
            None if row[1] is None else int(row[1]), "forged-event",
            f"event {int(row[0])} was inserted among sequenced events but is not in the log",
        ))


def _check_consistency(conn: Connection, report: VerifyReport) -> None:
    sizes = sorted({c.tree_size for c in report.valid_checkpoints})
    roots = {c.tree_size: c.root_hash for c in report.valid_checkpoints}
    for old, new in itertools.pairwise(sizes):
        try:
            proof = hashes_for(consistency_ranges(old, new), lambda ps: read_positions(conn, ps))
            verify_consistency(old, new, roots[old], roots[new], proof)
        except ProofError as exc:
            report.problems.append(Problem(
                old, "consistency", f"checkpoints {old} and {new} are not consistent: {exc}"
            ))
            return


def verify_database(
    engine: Engine, *, verifier: Verifier, checkpoint_dir: Path | None, deep: bool = False
) -> VerifyReport:
    """Verify every entry, checkpoint (database and directory) and the consistency of
    consecutive checkpoints; with `deep`, also compare every stored tree hash. Read-only.
    """
    # Files first: the integrator writes a file only after its batch commits, so every file
    # read now signs a tree the database snapshot taken below already holds.
    files = _file_sources(checkpoint_dir)
    # One snapshot for the whole check, or a concurrent integration would show entries
    # newer than the checkpoints read (SQLite's WAL read transaction is one already).
    options = {"isolation_level": "REPEATABLE READ"} if engine.dialect.name == "postgresql" else {}
    with engine.connect().execution_options(**options) as conn, conn.begin():
        sources = _database_sources(conn) + files
        stored = (lambda first, end: read_range(conn, first, end)) if deep else None
        report = verify_log(_entry_batches(conn), sources, verifier, stored)
        _unlogged_events(conn, report)
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
        if not (isinstance(event_text, str) and isinstance(note, str)
                and isinstance(key_text, str) and isinstance(index, int)
                and isinstance(size, int) and event_text.isascii()) or any(
                    len(h) != 32 for h in proof):
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
