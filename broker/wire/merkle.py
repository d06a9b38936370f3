"""Merkle trees for batch signatures, as in RFC 6962/9162 (Certificate Transparency).

A leaf hash is SHA-256(0x00 || data), an interior node SHA-256(0x01 || left || right); a tree of n leaves splits at
the largest power of two below n. An inclusion proof (audit path) lets anyone recompute the root from one leaf.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

__all__ = ["leaf_hash", "root_from_path", "tree"]


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
