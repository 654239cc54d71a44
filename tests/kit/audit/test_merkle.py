"""Known-answer tests (RFC 6962 and the certificate-transparency reference vectors) and
property tests of proofs against a naive recursive tree."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from carecollect.kit.audit import merkle
from carecollect.kit.audit.merkle import (
    CompactRange,
    ProofError,
    consistency_ranges,
    hashes_for,
    inclusion_ranges,
    leaf_hash,
    node_hash,
    stored_hash_count,
    stored_hash_index,
    verify_consistency,
    verify_inclusion,
)

# certificate-transparency merkle_tree_test.cc kInputs and kSHA256Roots.
INPUTS = [bytes.fromhex(h) for h in
          ["", "00", "10", "2021", "3031", "40414243", "5051525354555657",
           "606162636465666768696a6b6c6d6e6f"]]
ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
# kSHA256Paths: (leaf index 0-based, tree size, path)
PATHS = [
    (0, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (5, 8, ["bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (1, 5, ["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
]
# kSHA256Proofs: (old size, new size, proof)
PROOFS = [
    (1, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (6, 8, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 5, ["5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
]


# A naive recursive tree straight from RFC 6962 section 2.1, as the oracle.
def naive_root(leaves: list[bytes]) -> bytes:
    n = len(leaves)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return hashlib.sha256(b"\x00" + leaves[0]).digest()
    k = 1
    while k * 2 < n:
        k *= 2
    return hashlib.sha256(b"\x01" + naive_root(leaves[:k]) + naive_root(leaves[k:])).digest()


def naive_path(m: int, leaves: list[bytes]) -> list[bytes]:
    n = len(leaves)
    if n == 1:
        return []
    k = 1
    while k * 2 < n:
        k *= 2
    if m < k:
        return [*naive_path(m, leaves[:k]), naive_root(leaves[k:])]
    return [*naive_path(m - k, leaves[k:]), naive_root(leaves[:k])]


def naive_subproof(m: int, leaves: list[bytes], complete: bool) -> list[bytes]:
    n = len(leaves)
    if m == n:
        return [] if complete else [naive_root(leaves)]
    k = 1
    while k * 2 < n:
        k *= 2
    if m <= k:
        return [*naive_subproof(m, leaves[:k], complete), naive_root(leaves[k:])]
    return [*naive_subproof(m - k, leaves[k:], False), naive_root(leaves[:k])]


def stored_tree(leaves: list[bytes]) -> tuple[dict[int, bytes], CompactRange]:
    stored: dict[int, bytes] = {}
    tree = CompactRange()
    for data in leaves:
        position = stored_hash_count(tree.size)
        for offset, h in enumerate(tree.append(leaf_hash(data))):
            stored[position + offset] = h
    return stored, tree


def test_rfc6962_known_answers() -> None:
    assert merkle.EMPTY_ROOT.hex() == (
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    assert CompactRange().root() == merkle.EMPTY_ROOT
    assert leaf_hash(b"").hex() == (
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d")
    assert leaf_hash(b"L123456").hex() == (
        "395aa064aa4c29f7010acfe3f25db9485bbd4b91897b6ad7ad547639252b4d56")
    assert node_hash(b"N123", b"N456").hex() == (
        "aa217fe888e47007fa15edab33c2b492a722cb106c64667fc2b044444de66bbb")


def test_incremental_roots_match_reference_vectors() -> None:
    tree = CompactRange()
    for data, expected in zip(INPUTS, ROOTS, strict=True):
        tree.append(leaf_hash(data))
        assert tree.root().hex() == expected
    assert naive_root(INPUTS).hex() == ROOTS[-1]


@pytest.mark.parametrize(("index", "size", "path"), PATHS)
def test_inclusion_reference_vectors(index: int, size: int, path: list[str]) -> None:
    stored, _ = stored_tree(INPUTS[:size])
    proof = hashes_for(inclusion_ranges(index, size), lambda ps: stored)
    assert [p.hex() for p in proof] == path
    root = bytes.fromhex(ROOTS[size - 1])
    verify_inclusion(index, size, leaf_hash(INPUTS[index]), proof, root)
    with pytest.raises(ProofError):
        verify_inclusion(index, size, leaf_hash(b"WrongLeaf"), proof, root)
    with pytest.raises(ProofError):
        verify_inclusion(index, size * 2, leaf_hash(INPUTS[index]), proof, root)
    with pytest.raises(ProofError):
        verify_inclusion(index, size, leaf_hash(INPUTS[index]), proof[:-1], root)
    with pytest.raises(ProofError):
        verify_inclusion(index, size, leaf_hash(INPUTS[index]), [*proof, root], root)


@pytest.mark.parametrize(("old", "new", "path"), PROOFS)
def test_consistency_reference_vectors(old: int, new: int, path: list[str]) -> None:
    stored, _ = stored_tree(INPUTS[:new])
    proof = hashes_for(consistency_ranges(old, new), lambda ps: stored)
    assert [p.hex() for p in proof] == path
    old_root, new_root = bytes.fromhex(ROOTS[old - 1]), bytes.fromhex(ROOTS[new - 1])
    verify_consistency(old, new, old_root, new_root, proof)
    with pytest.raises(ProofError):
        verify_consistency(old, new, new_root, new_root, proof)
    with pytest.raises(ProofError):
        verify_consistency(old, new, old_root, old_root, proof)
    with pytest.raises(ProofError):
        verify_consistency(old, new, old_root, new_root, proof[:-1])


def test_stored_hash_index_matches_tlog() -> None:
    # golang.org/x/mod/sumdb/tlog: positions of the first hashes of a growing tree.
    assert [stored_hash_index(0, n) for n in range(6)] == [0, 1, 3, 4, 7, 8]
    assert [stored_hash_index(1, n) for n in range(3)] == [2, 5, 9]
    assert stored_hash_index(2, 0) == 6
    assert [stored_hash_count(n) for n in range(1, 9)] == [1, 3, 4, 7, 8, 10, 11, 15]


@settings(max_examples=60, deadline=None)
@given(size=st.integers(min_value=1, max_value=140), data=st.data())
def test_inclusion_proofs_match_naive_tree(size: int, data: st.DataObject) -> None:
    leaves = [b"leaf-%d" % i for i in range(size)]
    stored, tree = stored_tree(leaves)
    assert len(stored) == stored_hash_count(size)
    root = naive_root(leaves)
    assert tree.root() == root
    index = data.draw(st.integers(min_value=0, max_value=size - 1))
    proof = hashes_for(inclusion_ranges(index, size), lambda ps: stored)
    assert proof == naive_path(index, leaves)
    verify_inclusion(index, size, leaf_hash(leaves[index]), proof, root)
    if size > 1:
        other = (index + 1) % size
        with pytest.raises(ProofError):
            verify_inclusion(other, size, leaf_hash(leaves[index]), proof, root)


@settings(max_examples=60, deadline=None)
@given(size=st.integers(min_value=1, max_value=140), data=st.data())
def test_consistency_proofs_match_naive_tree(size: int, data: st.DataObject) -> None:
    leaves = [b"c-%d" % i for i in range(size)]
    stored, _ = stored_tree(leaves)
    old = data.draw(st.integers(min_value=1, max_value=size))
    proof = hashes_for(consistency_ranges(old, size), lambda ps: stored)
    expected = [] if old == size else naive_subproof(old, leaves, True)
    assert proof == expected
    old_root, new_root = naive_root(leaves[:old]), naive_root(leaves)
    verify_consistency(old, size, old_root, new_root, proof)
    assert merkle.range_hash(0, old, stored) == old_root
    if old < size:
        with pytest.raises(ProofError):
            verify_consistency(old, size, naive_root([b"x", *leaves[1:old]]), new_root, proof)


def test_missing_stored_hash_is_reported() -> None:
    stored, _ = stored_tree(INPUTS[:5])
    del stored[stored_hash_index(2, 0)]
    with pytest.raises(ProofError, match="position 6 is missing"):
        hashes_for(inclusion_ranges(4, 5), lambda ps: stored)


@settings(max_examples=40, deadline=None)
@given(cuts=st.lists(st.integers(min_value=0, max_value=40), min_size=1, max_size=6))
def test_extend_matches_append_and_emits_every_stored_hash(cuts: list[int]) -> None:
    leaves = [leaf_hash(b"x-%d" % i) for i in range(sum(cuts))]
    one_by_one = CompactRange()
    expected: dict[int, bytes] = {}
    for leaf in leaves:
        position = stored_hash_count(one_by_one.size)
        for offset, h in enumerate(one_by_one.append(leaf)):
            expected[position + offset] = h
    batched = CompactRange()
    emitted: list[tuple[int, bytes]] = []
    done = 0
    for cut in cuts:
        batched.extend(leaves[done:done + cut], emitted)
        done += cut
        assert batched.root() == naive_root_of_hashes(leaves[:done])
    assert batched.size == one_by_one.size
    assert batched.hashes == one_by_one.hashes
    assert dict(emitted) == expected
    assert len(emitted) == len(expected)


def naive_root_of_hashes(hashes: list[bytes]) -> bytes:
    if not hashes:
        return merkle.EMPTY_ROOT
    if len(hashes) == 1:
        return hashes[0]
    k = merkle.largest_power_of_two_below(len(hashes))
    return node_hash(naive_root_of_hashes(hashes[:k]), naive_root_of_hashes(hashes[k:]))


def test_stored_position_closed_form() -> None:
    for level in range(6):
        for index in range(40):
            assert merkle.stored_position(level, index) == stored_hash_index(level, index)
