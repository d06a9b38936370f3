"""The log's Merkle root kept as entries are appended, without reading the log again.

A compact range (as transparency logs keep it): the roots of the perfect subtrees the leaves so far make up, at most
one per bit of the size. Appending merges equal-sized neighbours; the RFC 9162 root folds them right to left, which
is exactly MTH's split at the largest power of two below the size.
"""

from __future__ import annotations

from collections.abc import Iterable

from broker.wire import merkle

__all__ = ["CompactRange"]


class CompactRange:
    """The Merkle tree hash of leaves appended one by one, in O(log n) memory."""

    def __init__(self, leaves: Iterable[bytes] = ()) -> None:
        self.size = 0
        self._stack: list[bytes] = []
        for leaf in leaves:
            self.append(leaf)

    def append(self, leaf: bytes) -> None:
        self.size += 1
        merkle._push(self._stack, self.size, leaf)

    def root(self) -> bytes:
        """The root now (RFC 9162 §2.1.1; the empty tree's is SHA-256 of nothing)."""
        return merkle._fold(self._stack)
