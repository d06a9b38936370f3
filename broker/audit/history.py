"""The network directory through time: every version seen, verified from the anchor in order, and the version in
force at any instant, against which the auditor judges a message signed then.

A node holds one version, the newest; an auditor judges a message by the version that was in force when it was
signed (the newest issued by then), its expiry and its keys' validity windows read at that instant.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from datetime import datetime

from broker.clock import ManualClock
from broker.errors import DecodeError, MessageError, VerificationError
from broker.models.directory import Directory, SignedDirectory
from broker.trust.directory import DirectoryAnchor, DirectoryDocument, DirectoryTrust
from broker.wire.envelope import Verified, check_sender, verify_signed
from broker.wire.trust import Trust

__all__ = ["DirectoryHistory", "Version"]


@dataclass(frozen=True)
class Version:
    """One accepted directory version, with the trust that holds exactly it."""

    directory: Directory
    signed: SignedDirectory
    data: bytes
    trust: DirectoryTrust
    clock: ManualClock


class DirectoryHistory:
    """Directory versions from ``anchor`` on, each accepted only after the one before it (as a node would); without an
    anchor, ``fallback`` (a local trust store) judges every message."""

    def __init__(self, anchor: DirectoryAnchor | None, fallback: Trust | None = None) -> None:
        if anchor is None and fallback is None:
            raise ValueError("a directory history needs an anchor or a fallback trust")
        self.anchor = anchor
        self.fallback = fallback
        self._clock = ManualClock()
        self._chain = DirectoryTrust(anchor, clock=self._clock) if anchor else None
        self._versions: list[Version] = []
        self._issued: list[datetime] = []

    @property
    def versions(self) -> list[Version]:
        return list(self._versions)

    @property
    def network(self) -> str | None:
        return self.anchor.network if self.anchor else self.fallback.network if self.fallback else None

    def nodes(self) -> set[str]:
        """Every node any accepted version listed."""
        return {n.node_id for v in self._versions for n in v.directory.nodes}

    def offer(self, data: bytes) -> Version | None:
        """Take a directory record's bytes: the new version (and any that waited for it) when accepted, None for a
        version already held; raise :class:`MessageError` with the reason when it is refused or waits."""
        if self._chain is None:
            raise VerificationError(
                "no directory anchor is installed: directory versions cannot be verified", reason="no-anchor"
            )
        try:
            signed = DirectoryDocument.from_bytes(data).signed
            claimed = DirectoryDocument(signed).directory
        except (DecodeError, ValueError) as exc:
            raise DecodeError(f"not a signed directory version: {exc}", reason="bad-directory") from None
        before = self._chain.version if self._chain.directory else 0
        self._clock.set(claimed.issued_at)
        if not self._chain.offer(signed, claimed.issued_at):
            return None
        for version in range(before + 1, self._chain.version + 1):
            self._pin(self._chain.accepted[version], self._chain.anchor)
        return self._versions[-1]

    def _pin(self, signed: SignedDirectory, first: DirectoryAnchor) -> None:
        document = DirectoryDocument(signed)
        directory = document.directory
        previous = self._versions[-1].directory if self._versions else None
        anchor = DirectoryAnchor.of(previous) if previous else first
        clock = ManualClock(directory.issued_at)
        trust = DirectoryTrust(anchor, clock=clock)
        trust.offer(signed, directory.issued_at)
        self._versions.append(Version(directory, signed, document.to_bytes(), trust, clock))
        self._issued.append(directory.issued_at)

    def in_force(self, at: datetime) -> Version | None:
        """The newest version issued by ``at``; the first version for an earlier instant (a sender's clock ahead
        of the authorities' is judged by the keys the first version lists); None without versions."""
        if not self._versions:
            return None
        i = bisect.bisect_right(self._issued, at)
        return self._versions[max(i - 1, 0)]

    def trust_at(self, at: datetime) -> Trust:
        """The trust that judges what was signed at ``at``: the version in force then, read as of then."""
        version = self.in_force(at)
        if version is None:
            if self.fallback is None:
                raise VerificationError("no directory version is known yet", reason="no-directory")
            return self.fallback
        version.clock.set(at)
        return version.trust

    def verify(self, data: bytes) -> Verified:
        """Verify a frame as a receiver would have when it was signed: the signature by a key some version lists,
        then the sender, its key and its right to send the type by the version in force at the signed time."""
        verified = self._signature(data)
        envelope = verified.envelope
        trust = self.trust_at(envelope.created_at)
        # The key must be the sender's in the version in force when it signed, not only in some version.
        trust.key_for(envelope.sender, verified.raw.key_id)
        check_sender(verified, trust)
        return verified

    def _signature(self, data: bytes) -> Verified:
        """The frame's signature verified by the newest version that lists its key (read as of its issue)."""
        if not self._versions:
            return verify_signed(data, self.trust_at(datetime.min))
        problems: list[MessageError] = []
        for version in reversed(self._versions):
            version.clock.set(version.directory.issued_at)
            try:
                return verify_signed(data, version.trust)
            except VerificationError as exc:
                if exc.reason not in ("unknown-sender", "unknown-key"):
                    raise
                problems.append(exc)
        raise problems[0]
