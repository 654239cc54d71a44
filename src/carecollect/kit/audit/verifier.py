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

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from carecollect.kit.audit.chain import CHAIN_START
from carecollect.kit.audit.checkpoint import Checkpoint, CheckpointError, Verifier, open_checkpoint
from carecollect.kit.audit.merkle import (
    CompactRange,
    ProofError,
    SubtreeStack,
    root_from_subtrees,
    stored_hash_count,
)


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


# One log entry as read: (seq, stored chain hash, event body or None if the event is
# missing, organization id, patient id, recorded at) - the canonical_bytes() inputs.
Entry = tuple[int, bytes, str | None, str | None, str | None, str]


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


_ENTRY_KINDS = frozenset({"sequence", "event-missing", "entry", "tree"})

# One log entry as the segment verifier reads it: (seq, stored chain hash, the event's
# canonical bytes or None if the event is missing), the canonical bytes built by the
# database query itself (see carecollect.audit.verification).
SegmentRow = tuple[int, bytes, bytes | None]
Subtrees = list[tuple[int, int, bytes]]


@dataclass(slots=True)
class SegmentResult:
    """What one verifier of entries [begin, end) found; combined by `combine_segments`.

    `checked` entries from `begin` on hold (leaf and chain recomputed and equal to the
    stored chain); `problem` is the first that does not, if any. `subtrees` cover
    [begin, begin + checked) and `at_sizes[s]` holds, for each requested checkpoint size
    s in that range, the subtrees of [begin, s) and the chain hash after s entries.
    """

    begin: int
    end: int
    start_chain: bytes
    checked: int = 0
    final_chain: bytes = b""
    problem: Problem | None = None
    subtrees: Subtrees = field(default_factory=list)
    at_sizes: dict[int, tuple[Subtrees, bytes]] = field(default_factory=dict)


def _sequence_problem(expected: int, found: int | None) -> Problem:
    if found is None or found > expected:
        return Problem(expected, "sequence",
                       f"sequence number {expected} is missing (entry deleted)")
    return Problem(expected, "sequence", f"sequence number {found} appears out of order or twice")


def verify_segment(
    batches: Iterable[Sequence[SegmentRow]],
    begin: int,
    end: int,
    start_chain: bytes | None,
    sizes: Iterable[int],
) -> SegmentResult:
    """Verify entries [begin, end) given the stored chain hash before `begin` (None when
    that entry is missing). Pure: hashing only, the rows come from the caller. Stops at
    the first bad entry; the entries before it still count as checked."""
    result = SegmentResult(begin, end, start_chain or b"")
    if start_chain is None:
        result.problem = _sequence_problem(begin - 1, None)
        return result
    pending = sorted(s for s in sizes if begin < s <= end)
    tree = SubtreeStack(begin)
    chain = start_chain
    expected = begin
    sha = hashlib.sha256

    def grow(leaves: list[bytes], chains: list[bytes]) -> None:
        # Extend the tree, stopping at every checkpoint size inside these leaves.
        done = 0
        first = tree.end
        while pending and pending[0] <= first + len(leaves):
            size = pending.pop(0)
            tree.extend(leaves[done:size - first])
            done = size - first
            result.at_sizes[size] = (tree.subtrees(), chains[done - 1])
        tree.extend(leaves[done:])

    problem: Problem | None = None
    for rows in batches:
        count = len(rows)
        if not count:
            continue
        # Sequence numbers are unique and ordered, so first and last settle contiguity.
        if rows[0][0] != expected or rows[-1][0] != expected + count - 1:
            i = next(i for i, row in enumerate(rows) if row[0] != expected + i)
            problem = _sequence_problem(expected + i, rows[i][0])
            rows = rows[:i]
        missing = next((i for i, row in enumerate(rows) if row[2] is None), None)
        if missing is not None:
            problem = Problem(expected + missing, "event-missing",
                              f"the event of sequence number {expected + missing} is missing")
            rows = rows[:missing]
        leaves = [sha(b"\x00" + row[2]).digest() for row in rows]  # type: ignore[operator]
        chains: list[bytes] = []
        append = chains.append
        for leaf in leaves:
            chain = sha(chain + leaf).digest()
            append(chain)
        stored = [row[1] for row in rows]
        if chains != stored:
            i = _first_difference(chains, stored)
            problem = Problem(
                expected + i, "entry",
                f"sequence number {expected + i} does not match its stored chain hash (event "
                "edited, replaced or reordered, or the chain hash altered)",
            )
            leaves, chains = leaves[:i], chains[:i]
        if leaves:
            grow(leaves, chains)
            expected += len(leaves)
            chain = chains[-1]
        if problem is not None:
            break
    if problem is None and expected < end:
        problem = _sequence_problem(expected, None)
    result.checked = expected - begin
    result.final_chain = chain
    result.problem = problem
    result.subtrees = tree.subtrees()
    return result


def combine_segments(
    segments: Sequence[SegmentResult],
    checkpoints: Iterable[CheckpointSource],
    verifier: Verifier,
) -> VerifyReport:
    """The report of the whole log from its segments' results (consecutive, in order,
    together covering [0, tree size)): boundaries, every checkpoint's signature, its root
    recomputed from the segments' subtrees and its chain hash, truncation and coverage."""
    report = VerifyReport()
    by_size = _open_all(checkpoints, verifier, report)
    known: dict[tuple[int, int], bytes] = {}
    verified = 0
    chain = CHAIN_START
    if 0 in by_size:
        _check_signed(report, by_size, 0, root_from_subtrees(0, known), CHAIN_START)
    for segment in segments:
        if segment.begin != verified or (segment.start_chain != chain
                                         and segment.problem is None):
            report.problems.append(Problem(
                verified, "entry",
                f"the segment verified from sequence number {segment.begin} does not start "
                "where the previous one ended",
            ))
            break
        for size in sorted(segment.at_sizes):
            tiles, chain_at_size = segment.at_sizes[size]
            with_tiles = dict(known)
            with_tiles.update(((level, index), h) for level, index, h in tiles)
            try:
                root = root_from_subtrees(size, with_tiles)
            except ProofError as exc:  # only if the segments do not tile the log
                report.problems.append(Problem(size - 1, "tree", str(exc)))
                break
            _check_signed(report, by_size, size, root, chain_at_size)
        known.update(((level, index), h) for level, index, h in segment.subtrees)
        verified = segment.begin + segment.checked
        chain = segment.final_chain
        if segment.problem is not None:
            report.problems.append(segment.problem)
            break
    report.tree_size = report.entries_checked = verified
    _finish(report, by_size, verified)
    return report


def _check_signed(
    report: VerifyReport,
    by_size: dict[int, list[tuple[CheckpointSource, Checkpoint]]],
    size: int,
    root: bytes,
    chain_at_size: bytes,
) -> None:
    for source, checkpoint in by_size.get(size, ()):
        if checkpoint.root_hash != root:
            report.problems.append(Problem(
                max(size - 1, 0), "checkpoint-root",
                f"{source.label}: signed root of {size} entries differs from the "
                "recomputed root",
            ))
        elif source.claimed_chain is not None and source.claimed_chain != chain_at_size:
            report.problems.append(Problem(
                max(size - 1, 0), "checkpoint-chain",
                f"{source.label}: chain hash differs from the recomputed chain",
            ))
        else:
            report.valid_checkpoints.append(checkpoint)


def _finish(
    report: VerifyReport,
    by_size: dict[int, list[tuple[CheckpointSource, Checkpoint]]],
    expected: int,
) -> None:
    """Truncation (a signed size beyond the log) and coverage (entries no valid checkpoint
    signs), unless an entry-level problem was already found."""
    if any(p.kind in _ENTRY_KINDS for p in report.problems):
        return
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


def _first_difference(left: list[bytes], right: list[bytes]) -> int:
    return next(i for i, (a, b) in enumerate(zip(left, right, strict=False)) if a != b)


def verify_log(
    batches: Iterable[Sequence[Entry]],
    checkpoints: Iterable[CheckpointSource],
    verifier: Verifier,
    stored_hashes: Callable[[int, int], list[tuple[int, bytes]]] | None = None,
) -> VerifyReport:
    """Recompute the log from its entries and compare with everything stored and signed.

    `batches` yields the entries in sequence order, in lists. Stops at the first
    entry-level problem (later entries would only repeat it); checkpoint problems are all
    reported. `stored_hashes(first, end)`, when given, returns the stored tree hashes at
    positions [first, end) in order, to be compared too (deep verification): the stored
    chain hash already locates an edited entry, and stored tree hashes only serve proofs,
    which are checked against signed roots before they are handed out.
    """
    report = VerifyReport()
    by_size = _open_all(checkpoints, verifier, report)
    sizes = sorted(by_size)
    tree = CompactRange()
    chain = CHAIN_START
    expected = 0
    sha = hashlib.sha256

    def check_signed(size: int, chain_at_size: bytes) -> None:
        _check_signed(report, by_size, size, tree.root(), chain_at_size)

    if 0 in by_size:
        check_signed(0, CHAIN_START)
    for rows in batches:
        count = len(rows)
        if not count:
            continue
        # Sequence numbers must run on without a gap.
        if rows[0][0] != expected or rows[-1][0] != expected + count - 1 or any(
            row[0] != expected + i for i, row in enumerate(rows)
        ):
            i = next(i for i, row in enumerate(rows) if row[0] != expected + i)
            seq = rows[i][0]
            report.problems.append(Problem(
                expected + i, "sequence",
                f"sequence number {expected + i} is missing (entry deleted)"
                if seq > expected + i
                else f"sequence number {seq} appears out of order or twice",
            ))
            break
        missing = next((row[0] for row in rows if row[2] is None), None)
        if missing is not None:
            report.problems.append(Problem(
                missing, "event-missing", f"the event of sequence number {missing} is missing"
            ))
            break
        # canonical_bytes() inlined: this loop is the verifier's hot path.
        leaves = [
            sha((
                f'\x00{{"event":{body},"organization_id":'
                f'{"null" if org is None else chr(34) + org + chr(34)},"patient_id":'
                f'{"null" if pid is None else chr(34) + pid + chr(34)},'
                f'"recorded_at":"{recorded}","seq":{seq},"v":1}}'
            ).encode()).digest()
            for seq, _, body, org, pid, recorded in rows
        ]
        chains = []
        for leaf in leaves:
            chain = sha(chain + leaf).digest()
            chains.append(chain)
        stored = [row[1] for row in rows]
        if chains != stored:
            i = _first_difference(chains, stored)
            report.problems.append(Problem(
                expected + i, "entry",
                f"sequence number {expected + i} does not match its stored chain hash (event "
                "edited, replaced or reordered, or the chain hash altered)",
            ))
            break
        # Grow the tree, stopping at every signed size inside this batch.
        emitted: list[tuple[int, bytes]] | None = [] if stored_hashes is not None else None
        done = 0
        for size in sizes:
            if expected < size <= expected + count:
                tree.extend(leaves[done:size - expected], emitted)
                done = size - expected
                check_signed(size, chains[done - 1])
        tree.extend(leaves[done:], emitted)
        if stored_hashes is not None and emitted is not None:
            first, end = stored_hash_count(expected), stored_hash_count(expected + count)
            emitted.sort()
            actual = stored_hashes(first, end)
            if actual != emitted:
                bad = next(
                    (e for e, a in zip(emitted, actual, strict=False) if e != a),
                    emitted[min(len(actual), len(emitted) - 1)],
                )
                report.problems.append(Problem(
                    expected, "tree",
                    f"stored tree hash at position {bad[0]} is missing or wrong "
                    f"(entries {expected} to {expected + count - 1})",
                ))
                break
        expected += count
        report.entries_checked = expected
    report.tree_size = expected
    _finish(report, by_size, expected)
    return report
