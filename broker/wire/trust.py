"""What verification asks of a trust source: the one interface the wire format needs.

The local trust store and the signed network directory (:mod:`broker.trust`) implement it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from broker.wire.signing import SealPublicKey, VerifyKey

__all__ = ["Trust"]


class Trust(Protocol):
    """What verification asks of a trust source."""

    @property
    def network(self) -> str | None:
        """The network this trust source is of (a directory's name), which every frame must name; None for a
        source that has none (a local trust store)."""
        ...

    def key_for(self, node: str, key_id: bytes) -> VerifyKey:
        """The public key ``node`` signs with under ``key_id``; :class:`VerificationError` if unknown."""
        ...

    def check_use(self, node: str, key_id: bytes, signed_at: datetime, message_type: str) -> None:
        """Raise :class:`VerificationError` if the key was not valid at ``signed_at`` or the node may not
        send ``message_type``."""
        ...

    def encryption_key(self, node: str, at: datetime) -> SealPublicKey:
        """The key to seal messages to ``node`` with; :class:`ConfigError` if it has none."""
        ...
