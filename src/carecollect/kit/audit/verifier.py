"""The streaming verifier of the audit log.

Given the log entries in sequence order (with each event's canonical bytes), the stored
tree hashes in position order, and every signed checkpoint known (from the database and
from the checkpoint directory), it recomputes every leaf hash, the chain, every stored
tree hash and the root at every checkpoint size, checks every checkpoint signature, and
reports problems located by sequence number. Memory is O(log n) plus the checkpoints.

Detection: an edited event changes its leaf; a deleted entry leaves a gap in the
sequence; a deleted event leaves an entry without its event; swapped events change both
leaves (the sequence number is part of the canonical bytes); an appended forgery is not
covered by any signed checkpoint; a truncated or rolled-back log is shorter than a signed
checkpoint (including one kept in the checkpoint directory).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from carecollect.kit.audit.chain import CHAIN_START, chain_hash
from carecollect.kit.audit.checkpoint import Checkpoint, CheckpointError, Verifier, open_checkpoint
from carecollect.kit.audit.merkle import CompactRange, leaf_hash, stored_hash_count


@dataclass(frozen=True, slots=True)
class Problem:
    seq: int | None
    kind: str
    message: str

    def as_dict(self) -> dict[str, object]:
        return {"seq": self.seq, "kind": self.kind, "message": self.message}


@dataclass(frozen=True, slots=True)
class CheckpointSource:
    """A signed checkpoint as found somewhere: a database row or a file."""

    label: str  # "database checkpoint 120" or "file checkpoint-...txt"
    note: str
    claimed_size: int | None = None  # the database row's own columns, if any
    claimed_root: bytes | None = None
    claimed_chain: bytes | None = None


@dataclass(slots=True)
class VerifyReport:
    tree_size: int = 0
    entries_checked: int = 0
    checkpoints_checked: int = 0
    problems: list[Problem] = field(default_factory=list)
    valid_checkpoints: list[Checkpoint] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def first_bad_seq(self) -> int | None:
        seqs = [p.seq for p in self.problems if p.seq is not None]
        return min(seqs) if seqs else None

    def sorted_problems(self) -> list[Problem]:
        big = 1 << 62
        return sorted(self.problems, key=lambda p: big if p.seq is None else p.seq)

    def as_dict(self) -> dict[str, object]:
        return {
            "ok": self.ok,
            "tree_size": self.tree_size,
            "entries_checked": self.entries_checked,
            "checkpoints_checked": self.checkpoints_checked,
            "first_bad_seq": self.first_bad_seq,
            "problems": [p.as_dict() for p in self.sorted_problems()],
        }


# One log entry as read: (seq, canonical bytes or None if its event is missing, stored
# chain hash).
Entry = tuple[int, bytes | None, bytes]


def _open_all(
    sources: Iterable[CheckpointSource], verifier: Verifier, report: VerifyReport
) -> dict[int, list[tuple[CheckpointSource, Checkpoint]]]:
    by_size: dict[int, list[tuple[CheckpointSource, Checkpoint]]] = {}
    for source in sources:
        report.checkpoints_checked += 1
        try:
            checkpoint = open_checkpoint(source.note, verifier)
        except CheckpointError as exc:
            report.problems.append(Problem(None, "checkpoint", f"{source.label}: {exc}"))
            continue
        if (source.claimed_size is not None and source.claimed_size != checkpoint.tree_size) or (
            source.claimed_root is not None and source.claimed_root != checkpoint.root_hash
        ):
            report.problems.append(
                Problem(None, "checkpoint", f"{source.label}: columns differ from its signed note")
            )
            continue
        by_size.setdefault(checkpoint.tree_size, []).append((source, checkpoint))
    return by_size


def verify_log(
    entries: Iterable[Entry],
    stored_hashes: Iterable[tuple[int, bytes]] | None,
    checkpoints: Iterable[CheckpointSource],
    verifier: Verifier,
) -> VerifyReport:
    """Recompute the log from its entries and compare with everything stored and signed.

    Stops reading entries at the first entry-level problem (later entries would only
    repeat it); checkpoint problems are all reported. `stored_hashes` is optional: the
    stored chain hash already locates an edited entry, and stored tree hashes only serve
    proofs (which are checked against signed roots before they are handed out).
    """
    report = VerifyReport()
    by_size = _open_all(checkpoints, verifier, report)
    # Roots and chains of the recomputed log at every signed size.
    tree = CompactRange()
    chain = CHAIN_START
    deep = stored_hashes is not None
    hashes: Iterator[tuple[int, bytes]] = iter(stored_hashes or ())
    pending: tuple[int, bytes] | None = next(hashes, None)
    expected = 0
    stopped = False

    def check_signed(size: int) -> None:
        root = tree.root()
        for source, checkpoint in by_size.get(size, ()):
            if checkpoint.root_hash != root:
                report.problems.append(Problem(
                    size - 1, "checkpoint-root",
                    f"{source.label}: signed root of {size} entries differs from the "
                    "recomputed root",
                ))
            elif source.claimed_chain is not None and source.claimed_chain != chain:
                report.problems.append(Problem(
                    size - 1, "checkpoint-chain",
                    f"{source.label}: chain hash differs from the recomputed chain",
                ))
            else:
                report.valid_checkpoints.append(checkpoint)

    for seq, canonical, stored_chain in entries:
        if seq != expected:
            missing = expected if seq > expected else seq
            report.problems.append(Problem(
                missing, "sequence",
                f"sequence number {expected} is missing (entry deleted)" if seq > expected
                else f"sequence number {seq} appears out of order or twice",
            ))
            stopped = True
            break
        if canonical is None:
            report.problems.append(
                Problem(seq, "event-missing", f"the event of sequence number {seq} is missing")
            )
            stopped = True
            break
        leaf = leaf_hash(canonical)
        created = tree.append(leaf)
        bad: Problem | None = None
        position = stored_hash_count(seq) if deep else 0
        for level, value in enumerate(created if deep else ()):
            while pending is not None and pending[0] < position:
                bad = bad or Problem(seq, "tree", f"unexpected stored tree hash at {pending[0]}")
                pending = next(hashes, None)
            if pending is None or pending[0] != position:
                bad = bad or Problem(
                    seq, "tree", f"stored tree hash at position {position} is missing")
            elif pending[1] != value:
                bad = bad or (
                    Problem(seq, "leaf",
                            f"leaf hash of sequence number {seq} does not match its event "
                            "(event edited, replaced or reordered)")
                    if level == 0 else
                    Problem(seq, "tree",
                            f"stored tree hash at position {position} (level {level}) is wrong")
                )
                pending = next(hashes, None)
            else:
                pending = next(hashes, None)
            position += 1
        chain = chain_hash(chain, leaf)
        if bad is None and stored_chain != chain:
            bad = Problem(
                seq, "chain" if deep else "entry",
                f"sequence number {seq} does not match its stored chain hash (event edited, "
                "replaced or reordered, or the chain hash altered)",
            )
        if bad is not None:
            report.problems.append(bad)
            stopped = True
            break
        expected = seq + 1
        report.entries_checked = expected
        if expected in by_size:
            check_signed(expected)
    report.tree_size = expected
    if stopped:
        return report
    if pending is not None:
        report.problems.append(Problem(
            expected, "tree", f"stored tree hashes continue past the log (position {pending[0]})"
        ))
    if 0 in by_size:
        check_signed(0)
    longest = max(by_size, default=0)
    truncated = longest > expected
    if truncated:
        labels = ", ".join(src.label for src, _ in by_size[longest])
        report.problems.append(Problem(
            expected, "truncated",
            f"the log ends at {expected} entries but {labels} signs {longest}: entries from "
            f"sequence number {expected} were removed (truncated or rolled back)",
        ))
    covered = max((c.tree_size for c in report.valid_checkpoints), default=0)
    # After a truncation the uncovered tail is a consequence, not a second finding.
    if expected > covered and not truncated:
        report.problems.append(Problem(
            covered, "unsigned",
            f"entries from sequence number {covered} to {expected - 1} are not covered by "
            "any valid signed checkpoint (inserted outside the integrator?)",
        ))
    return report
