"""Merkle trees as in RFC 9162 (Certificate Transparency v2), for batch signatures and the evidence log.

A leaf hash is SHA-256(0x00 || data), an interior node SHA-256(0x01 || left || right); a tree of n leaves splits at
the largest power of two below n, and the empty tree's hash is SHA-256 of nothing. An inclusion proof (audit path)
lets anyone recompute the root from one leaf; a consistency proof shows that a tree is an append-only extension of
an earlier one. Every function here but :func:`leaf_hash` takes leaf *hashes*.

A proof binds the roots, not the sizes: sizes whose trees have the same shape along the proven path (leaf 0 of 5 and
of 8, say) accept the same proof. What binds a size to a root is the signed checkpoint that states both.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

__all__ = [
    "CompactRange",
    "EMPTY_ROOT",
    "consistency_proof",
    "inclusion_proof",
    "leaf_hash",
    "prefix_roots",
    "root",
    "root_from_path",
    "tree",
    "verify_consistency",
    "verify_inclusion",
]

#: The root of the tree of no leaves (RFC 9162, section 2.1.1).
EMPTY_ROOT = hashlib.sha256(b"").digest()
_HASH_SIZE = 32


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def tree(leaves: Sequence[bytes]) -> tuple[bytes, list[list[bytes]]]:
    """The root over leaf hashes ``leaves`` and, for each leaf, its audit path (bottom-up)."""
    if not leaves:
        raise ValueError("a Merkle tree needs at least one leaf")
    if len(leaves) == 1:
        return leaves[0], [[]]
    k = _split(len(leaves))
    left_root, left_paths = tree(leaves[:k])
    right_root, right_paths = tree(leaves[k:])
    paths = [[*p, right_root] for p in left_paths] + [[*p, left_root] for p in right_paths]
    return _node(left_root, right_root), paths


def root_from_path(leaf: bytes, index: int, size: int, path: Sequence[bytes]) -> bytes | None:
    """The root that ``path`` proves ``leaf`` (at ``index`` of ``size``) belongs to; None if the path is malformed.

    RFC 9162, section 2.1.3.2.
    """
    if not 0 <= index < size:
        return None
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            return None
        if fn & 1 or fn == sn:
            r = _node(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = _node(r, p)
        fn >>= 1
        sn >>= 1
    return r if sn == 0 else None


def _push(stack: list[bytes], count: int, leaf: bytes) -> None:
    """Appends ``leaf``, the ``count``-th, to ``stack``: the roots of the perfect subtrees that the leaves so far
    make, largest first (one per bit set in ``count``), merging the equal-sized ones that the new leaf completes."""
    stack.append(leaf)
    while not count & 1:
        right = stack.pop()
        stack[-1] = _node(stack[-1], right)
        count >>= 1


def _fold(stack: list[bytes]) -> bytes:
    """The root of the tree whose perfect subtrees are ``stack``: each hangs left of the ones after it."""
    if not stack:
        return EMPTY_ROOT
    r = stack[-1]
    for left in reversed(stack[:-1]):
        r = _node(left, r)
    return r


class CompactRange:
    """The Merkle tree hash of leaf hashes appended one at a time, in O(log n) memory: the roots of the perfect
    subtrees the leaves so far make up (as transparency logs keep them), folded when the root is asked for."""

    def __init__(self, leaves: Iterable[bytes] = ()) -> None:
        self.size = 0
        self._stack: list[bytes] = []
        for leaf in leaves:
            self.append(leaf)

    def append(self, leaf: bytes) -> None:
        self.size += 1
        _push(self._stack, self.size, leaf)

    def root(self) -> bytes:
        """The root now; :data:`EMPTY_ROOT` before any leaf."""
        return _fold(self._stack)


def _range_root(leaves: Sequence[bytes], start: int, end: int) -> bytes:
    """MTH(leaves[start:end]), holding one hash per level rather than a copy of the range."""
    stack: list[bytes] = []
    for count in range(1, end - start + 1):
        _push(stack, count, leaves[start + count - 1])
    return _fold(stack)


def root(leaves: Sequence[bytes]) -> bytes:
    """The Merkle tree hash over leaf hashes ``leaves`` (RFC 9162, section 2.1.1); :data:`EMPTY_ROOT` for none."""
    return _range_root(leaves, 0, len(leaves))


def prefix_roots(leaves: Sequence[bytes], sizes: Iterable[int]) -> dict[int, bytes]:
    """The root of the first ``size`` leaf hashes, for each of ``sizes``, in one pass over the leaves."""
    wanted = sorted(set(sizes))
    for size in wanted:
        if not 0 <= size <= len(leaves):
            raise ValueError(f"tree size {size} must lie between 0 and {len(leaves)}, the number of leaves")
    stack: list[bytes] = []
    roots: dict[int, bytes] = {}
    count = 0
    for size in wanted:
        while count < size:
            count += 1
            _push(stack, count, leaves[count - 1])
        roots[size] = _fold(stack)
    return roots


def inclusion_proof(leaves: Sequence[bytes], index: int) -> list[bytes]:
    """The audit path of leaf ``index`` among leaf hashes ``leaves``, bottom-up (RFC 9162, section 2.1.3.1).

    Only the siblings along the leaf's way to the root are hashed: O(n) work, O(log n) memory.
    """
    if not 0 <= index < len(leaves):
        raise ValueError(f"leaf index {index} is outside a tree of {len(leaves)} leaves")
    start, end, siblings = 0, len(leaves), []
    while end - start > 1:
        mid = start + _split(end - start)
        if index < mid:
            siblings.append(_range_root(leaves, mid, end))
            end = mid
        else:
            siblings.append(_range_root(leaves, start, mid))
            start = mid
    return siblings[::-1]


def consistency_proof(leaves: Sequence[bytes], old_size: int) -> list[bytes]:
    """The proof that the tree of the first ``old_size`` leaf hashes is a prefix of the tree of all ``leaves``
    (RFC 9162, section 2.1.4.1, PROOF and SUBPROOF); empty when the two are the same tree."""
    if not 0 < old_size <= len(leaves):
        raise ValueError(f"old tree size {old_size} must lie between 1 and {len(leaves)}, the number of leaves")
    # SUBPROOF's recursion, walked down from the root: [start, end) is the subtree it recurses into, which always
    # holds the old tree's last leaf, old_size - 1, and ends at it once the walk stops.
    start, end, nodes = 0, len(leaves), []
    while old_size != end:
        mid = start + _split(end - start)
        if old_size <= mid:
            nodes.append(_range_root(leaves, mid, end))
            end = mid
        else:
            nodes.append(_range_root(leaves, start, mid))
            start = mid
    if start:
        # Not the whole old tree, whose root the verifier holds, but its right edge: the proof needs this node's root.
        nodes.append(_range_root(leaves, start, end))
    return nodes[::-1]


def _is_hash(value: object) -> bool:
    return isinstance(value, bytes) and len(value) == _HASH_SIZE


def verify_inclusion(leaf: bytes, index: int, size: int, path: Sequence[bytes], root: bytes) -> bool:
    """Whether ``path`` proves leaf hash ``leaf`` to be leaf ``index`` of the tree of ``size`` leaves with ``root``
    (RFC 9162, section 2.1.3.2); False for anything malformed."""
    if not (_is_hash(leaf) and _is_hash(root) and all(_is_hash(p) for p in path)):
        return False
    return root_from_path(leaf, index, size, path) == root


def verify_consistency(old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]) -> bool:
    """Whether ``proof`` shows the tree of ``old_size`` leaves with ``old_root`` to be a prefix of the tree of
    ``new_size`` leaves with ``new_root`` (RFC 9162, section 2.1.4.2); False for anything malformed."""
    if not (_is_hash(old_root) and _is_hash(new_root) and all(_is_hash(p) for p in proof)):
        return False
    if not 0 <= old_size <= new_size:
        return False
    if old_size == new_size:
        return not proof and old_root == new_root
    if old_size == 0:
        return not proof and old_root == EMPTY_ROOT
    if not proof:
        return False
    if (old_size & (old_size - 1)) == 0:
        # The old tree is a perfect subtree of the new one: its root is the proof's starting node, left out.
        proof = [old_root, *proof]
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = proof[0]
    for c in proof[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = _node(c, fr), _node(c, sr)
            # RFC 9162 also stops at fn == 0, which cannot happen: fn == sn > 0 here, so it turns odd first.
            while not fn & 1:
                fn >>= 1
                sn >>= 1
        else:
            sr = _node(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == old_root and sr == new_root and sn == 0
