"""The network directory through time: every version seen, verified from the anchor in order, and the version in
force at any instant, against which the auditor judges a message signed then.

A node holds one version, the newest; an auditor judges a message by the version that was in force when it was
signed (the newest issued by then), its expiry and its keys' validity windows read at that instant. A revocation
counts whenever it was published: it may be dated back to when a key was compromised, and what the key signed from
then on is not its node's.
"""

from __future__ import annotations

import bisect
import contextlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from broker.clock import ManualClock
from broker.errors import DecodeError, MessageError, VerificationError
from broker.models.directory import Directory, KeyEntry, SignedDirectory
from broker.trust.directory import MAX_WAITING, DirectoryAnchor, DirectoryDocument, DirectoryTrust
from broker.wire.envelope import Verified, check_sender, verify_signed
from broker.wire.signing import VerifyKey
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
    #: Its signing keys by (node, key id).
    keys: Mapping[tuple[str, str], KeyEntry]


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
        #: When each version took force: its issue, or its predecessor's if that is later (it replaced that one).
        self._issued: list[datetime] = []
        #: Versions that came before the one they follow, by version.
        self._waiting: dict[int, list[SignedDirectory]] = {}
        #: The earliest revocation any version lists, by (node, signing key id): its time and the key's entry.
        self._revoked: dict[tuple[str, str], tuple[datetime, KeyEntry]] = {}

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
        version already held (the same body); raise :class:`MessageError` with the reason when it is refused (a
        version held with another body is a fork; one before where the chain from the anchor starts cannot be
        verified) or waits for the one before it. Each version is checked at its own issue."""
        if self._chain is None:
            raise VerificationError(
                "no directory anchor is installed: directory versions cannot be verified", reason="no-anchor"
            )
        chain = self._chain
        signed, claimed = _decoded(data)
        held = next((v for v in self._versions if v.directory.version == claimed.version), None)
        if held is not None:
            if held.signed.body != signed.body:
                raise VerificationError(
                    f"directory version {claimed.version} refused: it differs from the version {claimed.version} "
                    "held; a version is never replaced",
                    reason="directory-fork",
                )
            return None
        # The next version; from an anchor that names none, any version comes first.
        expected = chain.version if chain.directory else chain.anchor.version
        if expected is not None and claimed.version > expected + 1:
            self._wait(claimed.version, signed)
            raise VerificationError(
                f"directory version {claimed.version} waits: version {expected + 1} must come first (each version is "
                "accepted only after the one before it)",
                reason="directory-gap",
            )
        self._take(chain, signed, claimed)
        # The chain never holds a version that waits: each is checked here, at its own issue, once it follows.
        while waiting := self._waiting.pop(chain.version + 1, []):
            for candidate in waiting:
                with contextlib.suppress(MessageError):
                    self._take(chain, candidate, DirectoryDocument(candidate).directory)
                    break
        return self._versions[-1]

    def _wait(self, version: int, signed: SignedDirectory) -> None:
        """Keep a version that came before the one it follows, unverified: at most :data:`MAX_WAITING`, the highest
        versions dropped first (records that claim far-off versions cannot crowd out the next ones)."""
        queue = self._waiting.setdefault(version, [])
        if any(s.body == signed.body for s in queue):
            return
        queue.append(signed)
        if sum(len(q) for q in self._waiting.values()) > MAX_WAITING:
            highest = max(self._waiting)
            self._waiting[highest].pop()
            if not self._waiting[highest]:
                del self._waiting[highest]

    def _take(self, chain: DirectoryTrust, signed: SignedDirectory, claimed: Directory) -> None:
        """Accept the version that follows the chain's, checked at its issue, and keep it with a trust of its own
        (anchored at the version before it) that judges what was signed while it was in force."""
        self._clock.set(claimed.issued_at)
        if not chain.offer(signed, claimed.issued_at):
            start = self._versions[0].directory.version if self._versions else chain.anchor.version
            raise VerificationError(
                f"directory version {claimed.version} cannot be verified: the chain of versions from the anchor "
                f"starts at version {start}",
                reason="directory-before-anchor",
            )
        anchor = DirectoryAnchor.of(self._versions[-1].directory) if self._versions else chain.anchor
        clock = ManualClock(claimed.issued_at)
        trust = DirectoryTrust(anchor, clock=clock)
        trust.offer(signed, claimed.issued_at)
        keys = {(n.node_id, k.key_id): k for n in claimed.nodes for k in n.signing_keys}
        self._versions.append(Version(claimed, signed, DirectoryDocument(signed).to_bytes(), trust, clock, keys))
        self._issued.append(max([claimed.issued_at, *self._issued[-1:]]))
        for where, key in keys.items():
            known = self._revoked.get(where)
            if key.revoked_at is not None and (known is None or key.revoked_at < known[0]):
                self._revoked[where] = (key.revoked_at, key)

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

    def key_at(self, node: str, key_id: bytes, at: datetime) -> VerifyKey:
        """``node``'s signing key ``key_id`` as of ``at``: listed by the version in force then and valid then by
        it, and revoked by no version from ``at`` or before; :class:`VerificationError` with the reason otherwise."""
        key = self.trust_at(at).key_for(node, key_id)
        version = self.in_force(at)
        listed = version.keys.get((node, key_id.hex())) if version else None
        problem = listed.problem_at(at) if listed else None
        revoked = self._revoked.get((node, key_id.hex()))
        if problem is None and revoked is not None and revoked[0] <= at:
            problem = revoked[1].problem_at(at)  # a revocation is the first problem it names
        if problem is not None:
            raise VerificationError(f"{node}: {problem[1]}", reason=problem[0])
        return key

    def verify(self, data: bytes) -> Verified:
        """Verify a frame as a receiver would have when it was signed: the signature by a key some version lists,
        then the sender, its key and its right to send the type by the version in force at the signed time, and
        no revocation of the key from that time or before."""
        verified = self._signature(data)
        envelope = verified.envelope
        # The key must be the sender's in the version in force when it signed, not only in some version.
        self.key_at(envelope.sender, verified.raw.key_id, envelope.created_at)
        check_sender(verified, self.trust_at(envelope.created_at))
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


def _decoded(data: bytes) -> tuple[SignedDirectory, Directory]:
    """A directory record's signed version and its body, not verified yet; ``bad-directory`` when it is none."""
    try:
        signed = DirectoryDocument.from_bytes(data).signed
        return signed, DirectoryDocument(signed).directory
    except (DecodeError, ValueError) as exc:
        raise DecodeError(f"not a signed directory version: {exc}", reason="bad-directory") from None
