"""RFC 6962 / RFC 9162 Merkle tree hashing, proofs and stored-hash bookkeeping.

Hashes: `leaf = SHA-256(0x00 || data)`, `node = SHA-256(0x01 || left || right)`, the
empty tree's root is `SHA-256("")` (RFC 9162 section 2.1.1).

Storage: every complete subtree hash is stored once, at its *stored hash position* as
numbered by golang.org/x/mod/sumdb/tlog (`stored_hash_index`). Appending leaf `n` creates
its leaf hash and then one hash per complete subtree it closes, at consecutive positions,
so the table is append-only and the hashes are written in position order. Any subtree
hash, root, inclusion proof or consistency proof needs O(log n) stored hashes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping

_sha256 = hashlib.sha256
EMPTY_ROOT = _sha256(b"").digest()


class ProofError(ValueError):
    """A proof is malformed or does not lead to the claimed root."""


def leaf_hash(data: bytes) -> bytes:
    return _sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return _sha256(b"\x01" + left + right).digest()


def largest_power_of_two_below(n: int) -> int:
    """The k of RFC 6962: the largest power of two strictly smaller than n (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


# Stored hash positions ------------------------------------------------------------------


def stored_hash_index(level: int, n: int) -> int:
    """Position of the n-th hash at `level` (tlog.StoredHashIndex)."""
    for _ in range(level):
        n = 2 * n + 1
    i = 0
    while n > 0:
        i += n
        n >>= 1
    return i + level


def stored_position(level: int, index: int) -> int:
    """Closed form of stored_hash_index: with m = index * 2**level + 2**level - 1 (the
    last leaf under the node), the position is 2m - popcount(m) + level."""
    m = ((index + 1) << level) - 1
    return 2 * m - m.bit_count() + level


def stored_hash_count(size: int) -> int:
    """How many hashes are stored for a tree of `size` leaves (tlog.StoredHashCount)."""
    if size == 0:
        return 0
    count = stored_hash_index(0, size - 1) + 1
    i = size - 1
    while i & 1:
        count += 1
        i >>= 1
    return count


def _perfect_ranges(lo: int, hi: int) -> list[tuple[int, int]]:
    """Split [lo, hi) into maximal aligned perfect subtrees, left to right, as
    (level, index) pairs (tlog's subTreeIndex)."""
    ranges: list[tuple[int, int]] = []
    while lo < hi:
        level = 0
        # Grow while the block stays aligned at lo and inside [lo, hi).
        while lo % (1 << (level + 1)) == 0 and lo + (1 << (level + 1)) <= hi:
            level += 1
        ranges.append((level, lo >> level))
        lo += 1 << level
    return ranges


def positions_for_range(lo: int, hi: int) -> list[int]:
    return [stored_hash_index(level, index) for level, index in _perfect_ranges(lo, hi)]


def range_hash(lo: int, hi: int, stored: Mapping[int, bytes]) -> bytes:
    """MTH of leaves [lo, hi) from stored hashes (which must hold positions_for_range)."""
    if lo == hi:
        return EMPTY_ROOT
    hashes = [stored[p] for p in positions_for_range(lo, hi)]
    result = hashes[-1]
    for h in reversed(hashes[:-1]):
        result = node_hash(h, result)
    return result


class CompactRange:
    """The right border of a tree: the perfect subtrees covering [0, size).

    `append` returns the stored hashes the new leaf creates (leaf first, then each
    completed parent), whose positions are `stored_hash_count(size)` onwards.
    """

    __slots__ = ("hashes", "size")

    def __init__(self, size: int = 0, hashes: list[bytes] | None = None) -> None:
        self.size = size
        self.hashes = hashes or []  # one per set bit of size, largest subtree first

    @classmethod
    def from_stored(cls, size: int, stored: Mapping[int, bytes]) -> CompactRange:
        return cls(size, [stored[p] for p in positions_for_range(0, size)])

    def append(self, leaf: bytes) -> list[bytes]:
        created = [leaf]
        h = leaf
        n = self.size
        hashes = self.hashes
        while n & 1:
            h = node_hash(hashes.pop(), h)
            created.append(h)
            n >>= 1
        hashes.append(h)
        self.size += 1
        return created

    def _push(self, level: int, h: bytes, emit: list[tuple[int, bytes]] | None) -> None:
        """Append a complete subtree of 2**level leaves at an aligned size."""
        n = self.size >> level
        hashes = self.hashes
        while n & 1:
            h = node_hash(hashes.pop(), h)
            n >>= 1
            level += 1
            if emit is not None:
                emit.append((stored_position(level, n), h))
        hashes.append(h)

    def extend(self, leaves: list[bytes], emit: list[tuple[int, bytes]] | None = None) -> None:
        """Append many leaf hashes at once, hashing aligned blocks level by level (much
        faster in Python than one `append` per leaf). With `emit`, every stored hash
        created is added to it as (position, hash), in no particular order."""
        sha = _sha256
        i, total = 0, len(leaves)
        while i < total:
            remaining = total - i
            k = remaining.bit_length() - 1
            if self.size:
                k = min(k, (self.size & -self.size).bit_length() - 1)
            block = leaves[i:i + (1 << k)]
            start = self.size
            if emit is not None:
                emit.extend((stored_position(0, start + j), h) for j, h in enumerate(block))
            level = 0
            while len(block) > 1:
                pairs = iter(block)
                block = [sha(b"\x01" + a + b).digest() for a, b in zip(pairs, pairs, strict=False)]
                level += 1
                if emit is not None:
                    base = start >> level
                    emit.extend(
                        (stored_position(level, base + j), h) for j, h in enumerate(block)
                    )
            self._push(k, block[0], emit)
            self.size = start + (1 << k)
            i += 1 << k

    def root(self) -> bytes:
        if not self.hashes:
            return EMPTY_ROOT
        result = self.hashes[-1]
        for h in reversed(self.hashes[:-1]):
            result = node_hash(h, result)
        return result


class SubtreeStack:
    """The perfect subtrees covering [begin, end) for any begin (a compact range).

    A verifier working on one segment of the log starts at the segment's first leaf,
    which is rarely aligned, so parents whose left half lies before `begin` cannot be
    formed here; they are formed later by `root_from_subtrees` from every segment's
    subtrees. `nodes` holds (level, hash) left to right; each is an aligned subtree.
    """

    __slots__ = ("begin", "end", "nodes")

    def __init__(self, begin: int) -> None:
        self.begin = self.end = begin
        self.nodes: list[tuple[int, bytes]] = []

    def extend(self, leaves: list[bytes]) -> None:
        """Append leaf hashes, hashing aligned blocks level by level (as CompactRange)."""
        sha = _sha256
        i, total = 0, len(leaves)
        while i < total:
            k = (total - i).bit_length() - 1
            if self.end:
                k = min(k, (self.end & -self.end).bit_length() - 1)
            block = leaves[i:i + (1 << k)]
            while len(block) > 1:
                pairs = iter(block)
                block = [sha(b"\x01" + a + b).digest() for a, b in zip(pairs, pairs, strict=False)]
            self._push(k, block[0])
            i += 1 << k

    def _push(self, level: int, h: bytes) -> None:
        nodes = self.nodes
        index = self.end >> level
        self.end += 1 << level
        # A right child whose left sibling is the last node (same level, so it ends where
        # this one starts) completes their parent.
        while index & 1 and nodes and nodes[-1][0] == level:
            h = node_hash(nodes.pop()[1], h)
            level += 1
            index >>= 1
        nodes.append((level, h))

    def subtrees(self) -> list[tuple[int, int, bytes]]:
        """The covering subtrees as (level, index at that level, hash), left to right."""
        result = []
        position = self.begin
        for level, h in self.nodes:
            result.append((level, position >> level, h))
            position += 1 << level
        return result


def root_from_subtrees(size: int, subtrees: Mapping[tuple[int, int], bytes]) -> bytes:
    """MTH of leaves [0, size) from aligned subtree hashes keyed by (level, index) that
    tile [0, size) (for example the `SubtreeStack.subtrees()` of consecutive segments).
    Every subtree of the RFC 6962 split of [0, size) contains whole tiles, so it is
    either given or the node hash of its two halves. Raises ProofError if a tile is
    missing."""
    if size == 0:
        return EMPTY_ROOT

    def subtree(level: int, index: int) -> bytes:
        h = subtrees.get((level, index))
        if h is not None:
            return h
        if level == 0:
            raise ProofError(f"no hash covers leaf {index}")
        return node_hash(subtree(level - 1, 2 * index), subtree(level - 1, 2 * index + 1))

    hashes = []
    position = 0
    for level in range(size.bit_length() - 1, -1, -1):
        if size >> level & 1:
            hashes.append(subtree(level, position >> level))
            position += 1 << level
    result = hashes[-1]
    for h in reversed(hashes[:-1]):
        result = node_hash(h, result)
    return result


# Proofs (RFC 6962 section 2.1.1 / 2.1.2) as lists of subtree ranges ---------------------


def inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """The subtree ranges whose hashes form PATH(index, D[0:size]), in proof order."""
    if not 0 <= index < size:
        raise ProofError("leaf index is outside the tree")
    ranges: list[tuple[int, int]] = []
    lo, hi, m = 0, size, index
    while hi - lo > 1:
        k = largest_power_of_two_below(hi - lo)
        if m < k:
            ranges.append((lo + k, hi))
            hi = lo + k
        else:
            ranges.append((lo, lo + k))
            lo, m = lo + k, m - k
    ranges.reverse()
    return ranges


def consistency_ranges(old_size: int, new_size: int) -> list[tuple[int, int]]:
    """The subtree ranges whose hashes form PROOF(old_size, D[0:new_size])."""
    if not 0 <= old_size <= new_size:
        raise ProofError("consistency needs 0 <= old size <= new size")
    if old_size in (0, new_size):
        return []
    ranges: list[tuple[int, int]] = []
    lo, hi, m, complete = 0, new_size, old_size, True
    while True:
        n = hi - lo
        if m == n:
            if not complete:
                ranges.append((lo, hi))
            break
        k = largest_power_of_two_below(n)
        if m <= k:
            ranges.append((lo + k, hi))
            hi = lo + k
        else:
            ranges.append((lo, lo + k))
            lo, m, complete = lo + k, m - k, False
    ranges.reverse()
    return ranges


def hashes_for(
    ranges: Iterable[tuple[int, int]], read: Callable[[list[int]], Mapping[int, bytes]]
) -> list[bytes]:
    """Resolve subtree ranges to hashes with one batched read of stored positions."""
    ranges = list(ranges)
    positions = sorted({p for lo, hi in ranges for p in positions_for_range(lo, hi)})
    stored = read(positions)
    missing = [p for p in positions if p not in stored]
    if missing:
        raise ProofError(f"stored tree hash at position {missing[0]} is missing")
    return [range_hash(lo, hi, stored) for lo, hi in ranges]


# Verification (RFC 9162 sections 2.1.3.2 and 2.1.4.2) -----------------------------------


def root_from_inclusion(index: int, size: int, leaf: bytes, proof: list[bytes]) -> bytes:
    if not 0 <= index < size:
        raise ProofError("leaf index is outside the tree")
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            raise ProofError("inclusion proof is too long")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("inclusion proof is too short")
    return r


def verify_inclusion(index: int, size: int, leaf: bytes, proof: list[bytes], root: bytes) -> None:
    """Raise ProofError unless `proof` shows leaf `index` is in the tree with `root`."""
    if root_from_inclusion(index, size, leaf, proof) != root:
        raise ProofError("inclusion proof does not lead to the checkpoint root")


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: list[bytes]
) -> None:
    """Raise ProofError unless `proof` shows tree `old_size` is a prefix of `new_size`."""
    if not 0 <= old_size <= new_size:
        raise ProofError("consistency needs 0 <= old size <= new size")
    if old_size == new_size:
        if proof or old_root != new_root:
            raise ProofError("equal sizes must have equal roots and an empty proof")
        return
    if old_size == 0:
        if proof:
            raise ProofError("consistency proof from the empty tree must be empty")
        return
    if not proof:
        raise ProofError("consistency proof is empty")
    if old_size & (old_size - 1) == 0:
        proof = [old_root, *proof]
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = proof[0]
    for c in proof[1:]:
        if sn == 0:
            raise ProofError("consistency proof is too long")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("consistency proof is too short")
    if fr != old_root:
        raise ProofError("consistency proof does not lead to the older root")
    if sr != new_root:
        raise ProofError("consistency proof does not lead to the newer root")
