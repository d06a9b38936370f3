"""Who the nodes are and which keys they hold: the trust a node checks every message against.

Two sources sit behind one :class:`Trust` interface:

- :class:`TrustStore`, a local JSON file an operator maintains by hand (``op7 keys trust``), for small or
  bilateral set-ups: every listed key is valid at all times and may send every type.
- :class:`DirectoryTrust`, the signed **network directory**: members, roles, signing and encryption keys with
  validity windows and revocations, and the message types each node may send. It is distributed on a compacted
  topic and as files, each version as one :class:`DirectoryDocument`.

A new version replaces the one held under the rules of python-tuf's root update: it is the held version plus 1,
it is signed by a threshold of the authorities of the held version (of the anchor, for the first) *and* by a
threshold of its own authorities, and a held version that has expired verifies nothing. A version that arrives
before the one it follows waits for it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from broker.clock import Clock, default_clock
from broker.errors import ConfigError, DecodeError, VerificationError
from broker.models.directory import Directory, KeyEntry, NodeEntry, SignedDirectory
from broker.trust.directory_document import DIRECTORY_SIGNING_CONTEXT, DirectoryAnchor, DirectoryDocument
from broker.wire.signing import SealPublicKey, VerifyKey

__all__ = [
    "DIRECTORY_SIGNING_CONTEXT",
    "DirectoryAnchor",
    "DirectoryDocument",
    "DirectoryTrust",
    "keep_directory",
    "restore_directory",
]

log = logging.getLogger("op7.directory")

#: Versions that arrived before the one they follow, kept in memory at most (the rest are dropped, and read
#: again from the topic at the next start).
MAX_WAITING = 64


def _when(at: datetime) -> str:
    return f"{at:%Y-%m-%dT%H:%M:%SZ}"


@dataclass(frozen=True)
class _Held:
    """The version held and its indexes, built once per version (every message looks its sender up here) and
    replaced in one assignment: a reader never sees the indexes of one version with another."""

    directory: Directory | None = None
    signed: SignedDirectory | None = None
    nodes: Mapping[str, NodeEntry] = field(default_factory=dict)
    signing: Mapping[tuple[str, str], tuple[KeyEntry, VerifyKey]] = field(default_factory=dict)
    allowed: Mapping[str, frozenset[str]] = field(default_factory=dict)

    @classmethod
    def of(cls, directory: Directory, signed: SignedDirectory) -> _Held:
        return cls(
            directory,
            signed,
            {n.node_id: n for n in directory.nodes},
            {
                (n.node_id, k.key_id): (k, VerifyKey.from_raw(k.public_key))
                for n in directory.nodes
                for k in n.signing_keys
            },
            {n.node_id: frozenset(n.allowed_types) for n in directory.nodes},
        )


class DirectoryTrust:
    """The network directory a node holds, replaced only by the version that follows it, properly signed.

    Updates (:meth:`offer`) may run in another thread than the checks of messages: the version held changes in
    one assignment.
    """

    def __init__(self, anchor: DirectoryAnchor, *, clock: Clock | None = None) -> None:
        self.anchor = anchor
        #: Reads "now" for the expiry of the version held (the process default clock when None).
        self.clock = clock
        self._accepted: dict[int, SignedDirectory] = {}
        self._accepted_at: dict[int, datetime] = {}
        self._waiting: dict[int, list[SignedDirectory]] = {}
        self._held_now = _Held()

    @property
    def directory(self) -> Directory | None:
        """The version held (None before the first)."""
        return self._held_now.directory

    @property
    def signed(self) -> SignedDirectory | None:
        """The version held as signed."""
        return self._held_now.signed

    @property
    def network(self) -> str:
        """The network's name (the anchor's): every frame verified here must name it (``wrong-network``)."""
        return self.anchor.network

    @property
    def version(self) -> int:
        return self.directory.version if self.directory else 0

    @property
    def accepted(self) -> Mapping[int, SignedDirectory]:
        """Every version accepted since this object was made (restored ones included), by version."""
        return self._accepted

    @property
    def accepted_at(self) -> Mapping[int, datetime]:
        """When each version in :attr:`accepted` was accepted: the time its signatures were checked at."""
        return self._accepted_at

    @property
    def waiting(self) -> list[int]:
        """Versions received before the one they follow, waiting for it."""
        return sorted(self._waiting)

    def _held(self) -> str:
        if self.directory is not None:
            return f"version {self.version} held"
        if self.anchor.version is not None:
            return f"no version held yet, anchor of version {self.anchor.version}"
        return "no version held yet"

    def _refused(self, version: int, problem: str, reason: str) -> VerificationError:
        return VerificationError(f"directory version {version} refused ({self._held()}): {problem}", reason=reason)

    def offer(self, signed: SignedDirectory, at: datetime) -> bool:
        """Take ``signed`` if it is the version that follows the one held, properly signed; then any version that
        was waiting for it. False for a version already held or older; raise :class:`VerificationError` naming
        the version offered, the version held and what is missing otherwise (a version too new also waits)."""
        document = DirectoryDocument(signed)
        # Decoded first only to order versions; nothing in it is used before the signatures below verify.
        claimed = document.directory
        if self.directory is not None and claimed.version <= self.version:
            return self._not_newer(claimed, signed)
        if self.directory is None and self.anchor.version is not None and claimed.version < self.anchor.version:
            log.debug("ignored directory version %d: older than the anchor's", claimed.version)
            return False
        expected = self._next()
        if expected is not None and claimed.version > expected:
            self._wait(claimed.version, signed)
            raise self._refused(
                claimed.version,
                f"version {expected} must come first (each version is accepted only after the one before it, "
                "whose authorities sign it); this one waits for it",
                "directory-gap",
            )
        self._accept(document, claimed, at)
        self._drain(at)
        return True

    def _next(self) -> int | None:
        """The highest version that can be taken now (None: any, from an anchor that names no version)."""
        if self.directory is not None:
            return self.version + 1
        return None if self.anchor.version is None else self.anchor.version + 1

    def _not_newer(self, claimed: Directory, signed: SignedDirectory) -> bool:
        if claimed.version == self.version and self.signed is not None and signed.body != self.signed.body:
            problem = f"it differs from the version {self.version} held; a version is never replaced"
            raise self._refused(claimed.version, problem, "directory-fork")
        log.debug("ignored directory version %d: version %d is held", claimed.version, self.version)
        return False

    def _wait(self, version: int, signed: SignedDirectory) -> None:
        if any(s.body == signed.body for s in self._waiting.get(version, ())):
            return
        if sum(len(q) for q in self._waiting.values()) >= MAX_WAITING:
            # Nothing that waits is verified yet: the highest versions are dropped first, so that records claiming
            # far-off versions cannot crowd out the next ones (which are taken soonest, and re-read at restart).
            highest = max(self._waiting)
            if version >= highest:
                log.warning("dropped directory version %d: %d versions already wait", version, MAX_WAITING)
                return
            self._waiting[highest].pop()
            if not self._waiting[highest]:
                del self._waiting[highest]
            log.warning("dropped waiting directory version %d for version %d", highest, version)
        self._waiting.setdefault(version, []).append(signed)
        log.info("directory version %d waits for version %d (version %d held)", version, self.version + 1, self.version)

    def _drain(self, at: datetime) -> None:
        # Versions wait only beyond the next one, and each is taken from here in turn: none is ever behind.
        while self.version + 1 in self._waiting:
            for signed in self._waiting.pop(self.version + 1):
                document = DirectoryDocument(signed)
                try:
                    self._accept(document, document.directory, at)
                    break
                except (VerificationError, DecodeError) as exc:
                    log.warning("refused a directory version that waited: %s", exc)
            else:
                return

    def _accept(self, document: DirectoryDocument, claimed: Directory, at: datetime) -> None:
        """Check both thresholds and the network, then make ``claimed`` the version held."""
        if claimed.network != self.anchor.network:
            raise self._refused(
                claimed.version,
                f"it is for network {claimed.network!r}, not {self.anchor.network!r}",
                "directory-network",
            )
        old = self.directory or self.anchor
        old_name = f"version {self.version} held" if self.directory else "the anchor"
        # Checked before any signature: a list padded with entries never costs more than one check per key.
        may_sign = {a.key_id for a in (*old.authorities, *claimed.authorities)}
        if len(document.signed.signatures) > len(may_sign):
            raise self._refused(
                claimed.version,
                f"it carries {len(document.signed.signatures)} signatures, more than the {len(may_sign)} "
                f"authority keys that may sign it (those of {old_name} and its own)",
                "directory-too-many-signatures",
            )
        held_set = (old.authorities, old.threshold)
        self._threshold(document, claimed.version, held_set, old_name, at, "directory-signatures")
        own_set, own_name = (claimed.authorities, claimed.threshold), f"version {claimed.version} itself"
        self._threshold(document, claimed.version, own_set, own_name, at, "directory-new-signatures")
        self._take(claimed, document.signed, at)

    def _threshold(
        self,
        document: DirectoryDocument,
        version: int,
        authority_set: tuple[tuple[KeyEntry, ...], int],
        name: str,
        at: datetime,
        reason: str,
    ) -> None:
        """Raise ``reason`` unless a threshold of distinct keys of the authority set signed the body."""
        authorities, threshold = authority_set
        signers = document.signers(authorities, at)
        if len(signers) >= threshold:
            return
        missing = [a.key_id for a in authorities if a.key_id not in signers]
        raise self._refused(
            version,
            f"{len(signers)} valid signature(s) by the authorities of {name}, {threshold} required "
            f"(threshold {threshold} of {len(authorities)} keys; signed by {', '.join(signers) or 'none of them'}; "
            f"{threshold - len(signers)} more needed from {', '.join(missing)})",
            reason,
        )

    def _take(self, directory: Directory, signed: SignedDirectory, at: datetime) -> None:
        self._accepted[directory.version] = signed
        self._accepted_at[directory.version] = at
        self._held_now = _Held.of(directory, signed)
        expires = _when(directory.expires_at) if directory.expires_at else "never"
        log.info(
            "directory of %s now at version %d (%d nodes, expires %s)",
            directory.network,
            directory.version,
            len(directory.nodes),
            expires,
        )

    def expired(self, at: datetime | None = None) -> VerificationError | None:
        """The refusal every use of an expired directory meets (None while the version held is in force)."""
        return self._expiry(self.directory, at)

    def _expiry(self, directory: Directory | None, at: datetime | None = None) -> VerificationError | None:
        now = at or (self.clock or default_clock()).now()
        if directory is None or directory.expires_at is None or now < directory.expires_at:
            return None
        return VerificationError(
            f"the network directory held (version {directory.version}) expired at {_when(directory.expires_at)}; "
            f"nothing is verified with it until the network authorities publish version {directory.version + 1}",
            reason="directory-expired",
        )

    def _in_force(self) -> _Held:
        """The version held, unless it expired."""
        held = self._held_now
        problem = self._expiry(held.directory)
        if problem is not None:
            raise problem
        return held

    @staticmethod
    def _node(held: _Held, node: str) -> NodeEntry:
        entry = held.nodes.get(node)
        if entry is None:
            raise VerificationError(f"unknown sender {node}: not in the network directory", reason="unknown-sender")
        return entry

    def _signing_entry(self, held: _Held, node: str, key_id: bytes) -> tuple[KeyEntry, VerifyKey]:
        found = held.signing.get((node, key_id.hex()))
        if found is None:
            self._node(held, node)
            raise VerificationError(
                f"key {key_id.hex()} is not a signing key of {node} in the directory", reason="unknown-key"
            )
        return found

    def key_for(self, node: str, key_id: bytes) -> VerifyKey:
        return self._signing_entry(self._in_force(), node, key_id)[1]

    def check_use(self, node: str, key_id: bytes, signed_at: datetime, message_type: str) -> None:
        held = self._in_force()
        problem = self._signing_entry(held, node, key_id)[0].problem_at(signed_at)
        if problem is not None:
            raise VerificationError(f"{node}: {problem[1]}", reason=problem[0])
        if message_type not in held.allowed[node]:  # the node is known: its signing key was found
            raise VerificationError(
                f"{node} is not allowed to send {message_type} by the directory", reason="type-not-allowed"
            )

    def encryption_key(self, node: str, at: datetime) -> SealPublicKey:
        try:
            entry = self._node(self._in_force(), node)
        except VerificationError as exc:
            raise ConfigError(str(exc)) from None
        usable = [k for k in entry.encryption_keys if k.problem_at(at) is None]
        if not usable:
            raise ConfigError(f"{node} has no valid encryption key in the directory")
        return SealPublicKey.from_raw(max(usable, key=lambda k: k.valid_from).public_key)


def keep_directory(folder: Path, trust: DirectoryTrust) -> Path:
    """Keep every version ``trust`` accepted in ``folder``, one file per version with the time it was accepted,
    so that the chain of versions from the anchor can be verified again after a restart; returns the file of the
    version held."""
    assert trust.directory is not None
    for version, signed in trust.accepted.items():
        path = folder / f"{version:010d}.json"
        if not path.exists():
            DirectoryDocument(signed).to_file(path, accepted_at=trust.accepted_at[version])
    return folder / f"{trust.directory.version:010d}.json"


def restore_directory(folder: Path, trust: DirectoryTrust, at: datetime) -> None:
    """Walk the versions kept in ``folder`` from the anchor, in order; each must follow the one before.

    Each is checked as it was when it was accepted: at the time recorded beside it (its ``issued_at`` if none
    is), or ``at`` if that is earlier. An authority key whose planned end has passed since then still leads to
    the version held; what arrives later is checked at its own time. A kept version whose predecessor is missing
    waits for it (it may still arrive on the directory topic, or be installed); any other refusal is a
    :class:`ConfigError` naming the file.
    """
    for path in sorted(folder.glob("*.json")):  # none when the folder does not exist
        try:
            document, accepted_at = DirectoryDocument.from_kept_file(path)
            trust.offer(document.signed, min(accepted_at or document.directory.issued_at, at))
        except VerificationError as exc:
            if exc.reason != "directory-gap":
                raise ConfigError(f"{path}: does not follow from the versions before it: {exc}") from None
        except DecodeError as exc:
            raise ConfigError(f"{path}: does not follow from the versions before it: {exc}") from None
    if trust.waiting:
        log.warning(
            "%s: kept directory version(s) %s wait for version %d, which is not kept; version %d stays in force "
            "until it arrives on the directory topic or is installed",
            folder,
            ", ".join(map(str, trust.waiting)),
            trust.version + 1,
            trust.version,
        )
