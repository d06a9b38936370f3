from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any, overload

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from broker.wire.merkle import (
    EMPTY_ROOT,
    CompactRange,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    prefix_roots,
    root,
    root_from_path,
    tree,
    verify_consistency,
    verify_inclusion,
)


def naive_root(leaves: list[bytes]) -> bytes:
    if len(leaves) == 1:
        return leaves[0]
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return hashlib.sha256(b"\x01" + naive_root(leaves[:k]) + naive_root(leaves[k:])).digest()


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 7, 8, 9, 31, 100])
def test_every_leaf_proves_the_root(n: int) -> None:
    leaves = [leaf_hash(bytes([i]) * 10) for i in range(n)]
    root, paths = tree(leaves)
    assert root == naive_root(leaves)
    for i, path in enumerate(paths):
        assert root_from_path(leaves[i], i, n, path) == root
        if n > 1:
            assert root_from_path(leaves[i], (i + 1) % n, n, path) != root  # the index is bound
            assert root_from_path(leaf_hash(b"other"), i, n, path) != root
            assert root_from_path(leaves[i], i, n, path[:-1]) != root


def test_rfc6962_empty_leaf_hash() -> None:
    # RFC 6962 test vector: the leaf hash of the empty string.
    assert leaf_hash(b"").hex() == "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"


def test_malformed_paths_are_refused() -> None:
    leaves = [leaf_hash(bytes([i])) for i in range(5)]
    _, paths = tree(leaves)
    assert root_from_path(leaves[0], 5, 5, paths[0]) is None
    assert root_from_path(leaves[0], 0, 5, [*paths[0], bytes(32)]) is None


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 8])
def test_an_index_past_the_last_leaf_is_refused(n: int) -> None:
    """A leaf cannot claim the position just past the end: with one leaf, index 1 of 1 would otherwise "prove" the
    root with an empty path."""
    leaves = [leaf_hash(bytes([i])) for i in range(n)]
    _, paths = tree(leaves)
    for i, path in enumerate(paths):
        assert root_from_path(leaves[i], n, n, path) is None
        assert root_from_path(leaves[i], -1, n, path) is None
    assert root_from_path(leaves[0], 1, 1, []) is None


@pytest.mark.parametrize("n", [2, 3, 5, 8])
def test_a_path_that_stops_short_of_the_root_proves_nothing(n: int) -> None:
    leaves = [leaf_hash(bytes([i])) for i in range(n)]
    _, paths = tree(leaves)
    for i, path in enumerate(paths):
        assert root_from_path(leaves[i], i, n, path[:-1]) is None


def test_a_tree_needs_a_leaf() -> None:
    with pytest.raises(ValueError, match=r"^a Merkle tree needs at least one leaf$"):
        tree([])


# Known answers from transparency-dev/merkle, proof/verify_test.go (the RFC 6962 test data that Google's
# certificate-transparency and trillian carry too): the eight leaves, the root of each prefix of 1..8 leaves, and
# proofs in that tree. Its inclusion vectors number leaves from 1; here they are numbered from 0.
KNOWN_LEAVES = [
    leaf_hash(bytes.fromhex(h))
    for h in ["", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f"]
]
KNOWN_ROOTS = [
    bytes.fromhex(h)
    for h in [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ]
]
KNOWN_INCLUSION = [  # (index, size, path)
    (0, 1, []),
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
]  # fmt: skip
KNOWN_CONSISTENCY = [  # (old size, new size, proof)
    (1, 1, []),
    (1, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (6, 8, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 5, ["5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
    (6, 7, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
]  # fmt: skip
SOME_HASH = bytes.fromhex("abacaba000000000000000000000000000000000000000000060061e00123456")


def test_known_roots() -> None:
    assert root([]) == EMPTY_ROOT == bytes.fromhex("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    for size, expected in enumerate(KNOWN_ROOTS, 1):
        assert root(KNOWN_LEAVES[:size]) == expected
        assert tree(KNOWN_LEAVES[:size])[0] == expected
    assert prefix_roots(KNOWN_LEAVES, range(9)) == {0: EMPTY_ROOT} | dict(enumerate(KNOWN_ROOTS, 1))


@pytest.mark.parametrize(("index", "size", "path"), KNOWN_INCLUSION)
def test_known_inclusion_proofs(index: int, size: int, path: list[str]) -> None:
    proof = [bytes.fromhex(h) for h in path]
    assert inclusion_proof(KNOWN_LEAVES[:size], index) == proof
    assert verify_inclusion(KNOWN_LEAVES[index], index, size, proof, KNOWN_ROOTS[size - 1])
    assert not verify_inclusion(KNOWN_LEAVES[index], index, size, proof, SOME_HASH)
    assert not verify_inclusion(KNOWN_LEAVES[index], index, size, proof, EMPTY_ROOT)
    assert not verify_inclusion(leaf_hash(b"WrongLeaf"), index, size, proof, KNOWN_ROOTS[size - 1])


@pytest.mark.parametrize(("old_size", "new_size", "path"), KNOWN_CONSISTENCY)
def test_known_consistency_proofs(old_size: int, new_size: int, path: list[str]) -> None:
    proof = [bytes.fromhex(h) for h in path]
    old_root, new_root = KNOWN_ROOTS[old_size - 1], KNOWN_ROOTS[new_size - 1]
    assert consistency_proof(KNOWN_LEAVES[:new_size], old_size) == proof
    assert verify_consistency(old_size, new_size, old_root, new_root, proof)
    assert not verify_consistency(old_size, new_size, old_root, SOME_HASH, proof)
    assert not verify_consistency(old_size, new_size, SOME_HASH, new_root, proof)


def _leaves(n: int, salt: bytes = b"") -> list[bytes]:
    return [leaf_hash(salt + i.to_bytes(4, "big")) for i in range(n)]


def _flipped(proof: list[bytes], at: int, byte: int) -> list[bytes]:
    element = bytearray(proof[at])
    element[byte % len(element)] ^= 0x10
    return [*proof[:at], bytes(element), *proof[at + 1 :]]


def naive_split(n: int) -> int:
    return 1 << ((n - 1).bit_length() - 1)


def _sides(index: int, size: int) -> list[bool]:
    """For each node of PATH(index, size), bottom-up, whether it hangs left: a model of RFC 9162's recursion, not of
    the verifier's bit arithmetic."""
    sides = []
    while size > 1:
        k = naive_split(size)
        sides.append(index >= k)
        index, size = (index - k, size - k) if index >= k else (index, k)
    return sides[::-1]


PROPERTY = settings(max_examples=60, deadline=None, derandomize=True, database=None)


@PROPERTY
@given(st.integers(1, 200), st.binary(max_size=4), st.data())
def test_every_inclusion_proof_is_the_tree_path_and_verifies(size: int, salt: bytes, data: st.DataObject) -> None:
    leaves = _leaves(size, salt)
    top, paths = tree(leaves)
    assert root(leaves) == top
    for index, path in enumerate(paths):
        assert inclusion_proof(leaves, index) == path
        assert verify_inclusion(leaves[index], index, size, path, top)
    index = data.draw(st.integers(0, size - 1), label="index")
    path = paths[index]
    for at in range(len(path)):
        assert not verify_inclusion(leaves[index], index, size, _flipped(path, at, data.draw(st.integers(0, 31))), top)
    for other in [index - 1, index + 1, index ^ 2]:
        assert not verify_inclusion(leaves[index], other, size, path, top)
    # A proof binds the root, not the size: another size verifies exactly when its tree has the same shape on the path.
    other_size = data.draw(st.integers(1, 2 * size + 1).filter(lambda s: s != size), label="other size")
    same_shape = index < other_size and _sides(index, other_size) == _sides(index, size)
    assert verify_inclusion(leaves[index], index, other_size, path, top) == same_shape
    assert not verify_inclusion(leaves[index], index, size, path, _flipped([top], 0, data.draw(st.integers(0, 31)))[0])
    assert not verify_inclusion(leaves[index], index, size, [*path, top], top)
    if path:
        assert not verify_inclusion(leaves[index], index, size, path[:-1], top)


@PROPERTY
@given(st.integers(1, 200), st.integers(1, 200), st.binary(max_size=4), st.data())
def test_every_consistency_proof_verifies(a: int, b: int, salt: bytes, data: st.DataObject) -> None:
    old_size, new_size = min(a, b), max(a, b)
    leaves = _leaves(new_size, salt)
    roots = prefix_roots(leaves, [old_size, new_size])
    old_root, new_root = roots[old_size], roots[new_size]
    assert new_root == tree(leaves)[0] and old_root == root(leaves[:old_size])
    proof = consistency_proof(leaves, old_size)
    assert verify_consistency(old_size, new_size, old_root, new_root, proof)
    byte = data.draw(st.integers(0, 31), label="byte")
    for at in range(len(proof)):
        assert not verify_consistency(old_size, new_size, old_root, new_root, _flipped(proof, at, byte))
    # These sizes never share the proof's shape; a new size one away may (an RFC 9162 proof binds roots, not sizes).
    for wrong in [
        (old_size - 1, new_size),
        (old_size + 1, new_size),
        (old_size, 2 * new_size),
        (old_size, new_size // 2),
    ]:
        assert not verify_consistency(*wrong, old_root, new_root, proof)
    assert not verify_consistency(old_size, new_size, _flipped([old_root], 0, byte)[0], new_root, proof)
    assert not verify_consistency(old_size, new_size, old_root, _flipped([new_root], 0, byte)[0], proof)
    assert not verify_consistency(old_size, new_size, old_root, new_root, [*proof, new_root])
    if proof:
        assert not verify_consistency(old_size, new_size, new_root, old_root, proof)
        assert not verify_consistency(old_size, new_size, old_root, new_root, proof[:-1])
        assert not verify_consistency(old_size, new_size, old_root, new_root, [proof[0], *proof])


@PROPERTY
@given(st.lists(st.integers(0, 300), max_size=20))
def test_prefix_roots_are_the_roots_of_the_prefixes(sizes: list[int]) -> None:
    leaves = _leaves(300)
    assert prefix_roots(leaves, sizes) == {size: root(leaves[:size]) for size in sizes}


def test_a_compact_range_has_the_root_of_every_size_it_passes_through() -> None:
    leaves = _leaves(300)
    grown = CompactRange()
    assert (grown.size, grown.root()) == (0, EMPTY_ROOT)
    for size, leaf in enumerate(leaves, 1):
        grown.append(leaf)
        assert (grown.size, grown.root()) == (size, root(leaves[:size]))
    assert CompactRange(leaves[:77]).root() == root(leaves[:77])


class _LazyLeaves(Sequence[bytes]):
    """A log read leaf by leaf, as from a database: it refuses slices, which would copy it."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n

    @overload
    def __getitem__(self, i: int) -> bytes: ...
    @overload
    def __getitem__(self, i: slice) -> Sequence[bytes]: ...
    def __getitem__(self, i: int | slice) -> bytes | Sequence[bytes]:
        if isinstance(i, slice) or not 0 <= i < self.n:
            raise AssertionError(f"read {i}")
        return leaf_hash(i.to_bytes(4, "big"))


def test_a_log_is_read_leaf_by_leaf_not_copied() -> None:
    lazy, leaves = _LazyLeaves(1000), _leaves(1000)
    assert root(lazy) == root(leaves)
    assert prefix_roots(lazy, [0, 1, 999, 1000]) == prefix_roots(leaves, [0, 1, 999, 1000])
    assert inclusion_proof(lazy, 700) == inclusion_proof(leaves, 700)
    assert consistency_proof(lazy, 700) == consistency_proof(leaves, 700)


def test_a_consistency_proof_between_equal_sizes_is_empty() -> None:
    leaves = _leaves(5)
    assert consistency_proof(leaves, 5) == []
    assert verify_consistency(5, 5, root(leaves), root(leaves), [])
    assert not verify_consistency(5, 5, root(leaves), root(leaves[:4]), [])
    assert not verify_consistency(5, 5, root(leaves), root(leaves), [root(leaves)])


def test_the_empty_tree_is_a_prefix_of_every_tree() -> None:
    leaves = _leaves(3)
    assert verify_consistency(0, 3, EMPTY_ROOT, root(leaves), [])
    assert verify_consistency(0, 0, EMPTY_ROOT, EMPTY_ROOT, [])
    assert not verify_consistency(0, 3, SOME_HASH, root(leaves), [])
    assert not verify_consistency(0, 3, EMPTY_ROOT, root(leaves), [SOME_HASH])


def test_malformed_consistency_proofs_are_refused_not_raised() -> None:
    leaves = _leaves(7)
    old, new = root(leaves[:3]), root(leaves)
    proof = consistency_proof(leaves, 3)
    assert verify_consistency(3, 7, old, new, proof)
    bad: list[Any] = [
        (3, 7, old, new, []),  # nothing to check
        (4, 3, old, new, proof),  # a tree that shrank
        (-1, 7, old, new, proof),
        (3, 7, old, new, [*proof[:-1], proof[-1][:31]]),
        (3, 7, old, new, [*proof, b""]),
        (3, 7, old, new, [b"", *proof]),
        (3, 7, old, new, [*proof[:-1], "x" * 32]),
        (3, 7, old, new, [*proof[:-1], None]),
        (3, 7, old[:31], new, proof),
        (3, 7, old, new + b"\x00", proof),
        (3, 7, old.hex(), new, proof),
    ]
    for args in bad:
        assert verify_consistency(*args) is False, args


def test_malformed_inclusion_proofs_are_refused_not_raised() -> None:
    leaves = _leaves(6)
    path = inclusion_proof(leaves, 4)
    top = root(leaves)
    assert verify_inclusion(leaves[4], 4, 6, path, top)
    bad: list[Any] = [
        (leaves[4], 4, 6, [*path[:-1], path[-1][:31]], top),
        (leaves[4], 4, 6, [*path, b""], top),
        (leaves[4], 4, 6, [None, *path], top),
        (leaves[4][:31], 4, 6, path, top),
        (leaves[4], 4, 6, path, top[:31]),
        (leaves[4], 4, 6, path, None),
        (leaves[4], 6, 6, path, top),
        (leaves[4], 4, 0, path, top),
        (b"", 0, 1, [], b""),  # a one-leaf tree's root is its leaf, but not any bytes at all
    ]
    for args in bad:
        assert verify_inclusion(*args) is False, args


@pytest.mark.parametrize("index", [-1, 3])
def test_an_inclusion_proof_needs_a_leaf_of_the_tree(index: int) -> None:
    with pytest.raises(ValueError, match=rf"^leaf index {index} is outside a tree of 3 leaves$"):
        inclusion_proof(_leaves(3), index)


@pytest.mark.parametrize("old_size", [0, 4, -1])
def test_a_consistency_proof_needs_an_old_size_within_the_tree(old_size: int) -> None:
    with pytest.raises(ValueError, match=rf"^old tree size {old_size} must lie between 1 and 3, the number of leaves$"):
        consistency_proof(_leaves(3), old_size)


@pytest.mark.parametrize(("sizes", "wrong"), [([4], 4), ([2, -1], -1), ([0, 3, 4], 4)])
def test_prefix_roots_need_sizes_within_the_tree(sizes: list[int], wrong: int) -> None:
    with pytest.raises(ValueError, match=rf"^tree size {wrong} must lie between 0 and 3, the number of leaves$"):
        prefix_roots(_leaves(3), sizes)
