from __future__ import annotations

import hashlib

import pytest

from broker.wire.merkle import leaf_hash, root_from_path, tree


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
