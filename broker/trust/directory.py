"""Who the nodes are and which keys they hold: the trust a node checks every message against.

Two sources sit behind one :class:`Trust` interface:

- :class:`TrustStore`, a local JSON file an operator maintains by hand (``op7 keys trust``), for small or
  bilateral set-ups: every listed key is valid at all times and may send every type.
- :class:`DirectoryTrust`, the signed **network directory**: members, roles, signing and encryption keys with
  validity windows and revocations, and the message types each node may send. A new version is accepted only
  if it is newer than the one held and signed by at least ``threshold`` of the authority keys of the version
  held (or of the anchor, for the first). It is distributed on a compacted topic and as a file, each version
  as one :class:`DirectoryDocument` (bytes and files in and out, signing, verification).

File formats (JSON)::

    trust.json      {"format": "op7-trust-store/1",
                     "nodes": {"FR.GN": [{"key_id": "<16 hex>", "public_key": "<base64>",
                                          "encryption_key": "<base64, optional>"}]}}
    anchor.json     {"format": "op7-directory-anchor/1", "network": "op7", "threshold": 2,
                     "authorities": [{"key_id": "<16 hex>", "public_key": "<base64>"}]}
    directory.json  {"format": "op7-signed-directory/1", "body": "<base64 of the Avro Directory>",
                     "signatures": [{"key_id": "<16 hex>", "signature": "<base64>"}]}
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from pydantic import ValidationError

from broker.errors import ConfigError, DecodeError, VerificationError
from broker.models.directory import Directory, KeyEntry, NodeEntry, SignedDirectory
from broker.models.inputs import first_problem
from broker.trust.files import b64, read_json, unb64, write_json
from broker.wire.codec import decode_datum, encode_datum
from broker.wire.schemas import default_registry
from broker.wire.signing import SealPublicKey, SigningKey, VerifyKey

__all__ = [
    "DIRECTORY_SIGNING_CONTEXT",
    "DirectoryAnchor",
    "DirectoryDocument",
    "DirectoryTrust",
    "keep_directory",
    "restore_directory",
]

log = logging.getLogger("op7.directory")

ANCHOR_FORMAT = "op7-directory-anchor/1"
SIGNED_FORMAT = "op7-signed-directory/1"
#: Domain separation: a directory signature can never be mistaken for a message signature.
DIRECTORY_SIGNING_CONTEXT = b"op7 directory v1\x00"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

_DirectoryRecord = TypeVar("_DirectoryRecord", Directory, SignedDirectory)


@dataclass(frozen=True)
class DirectoryAnchor:
    """The trust a node starts from: the authority keys and threshold its operator installed out of band."""

    network: str
    threshold: int
    authorities: tuple[KeyEntry, ...]

    @classmethod
    def of(cls, directory: Directory) -> DirectoryAnchor:
        return cls(directory.network, directory.threshold, directory.authorities)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": ANCHOR_FORMAT,
            "network": self.network,
            "threshold": self.threshold,
            "authorities": [{"key_id": a.key_id, "public_key": b64(a.public_key)} for a in self.authorities],
        }

    @classmethod
    def load(cls, path: Path) -> DirectoryAnchor:
        data = read_json(path)
        if not isinstance(data, dict) or data.get("format") != ANCHOR_FORMAT:
            raise ConfigError(f"{path}: not an op7 directory anchor (format {ANCHOR_FORMAT})")
        authorities = []
        for entry in data.get("authorities") or []:
            raw = unb64(path, "an authority key", entry.get("public_key"))
            key = VerifyKey.from_raw(raw) if len(raw) == 32 else None
            if key is None or entry.get("key_id", key.key_id.hex()) != key.key_id.hex():
                raise ConfigError(f"{path}: authority key {entry.get('key_id')} is not a valid Ed25519 key")
            authorities.append(KeyEntry(key_id=key.key_id.hex(), public_key=raw, valid_from=_EPOCH))
        threshold = data.get("threshold")
        if not isinstance(threshold, int) or not 1 <= threshold <= len(authorities):
            raise ConfigError(f"{path}: threshold must be between 1 and the {len(authorities)} authority keys")
        return cls(str(data.get("network")), threshold, tuple(authorities))


@dataclass(frozen=True)
class DirectoryDocument:
    """One signed directory version as it travels and is kept (after python-tuf's ``Metadata``).

    It carries the exact body bytes the authorities sign and their signatures; it is read from and written to
    the Avro value of the directory topic and the JSON file. The body is decoded on demand and trusted only as
    :meth:`verify` returns it.
    """

    signed: SignedDirectory

    @classmethod
    def draft(cls, directory: Directory) -> DirectoryDocument:
        """An unsigned document whose body is ``directory``."""
        return cls(SignedDirectory(body=_encode(directory)))

    @classmethod
    def from_bytes(cls, data: bytes) -> DirectoryDocument:
        """From the Avro bytes of a SignedDirectory (the value on the directory topic)."""
        return cls(_decode(SignedDirectory, data, "not a signed directory"))

    def to_bytes(self) -> bytes:
        return _encode(self.signed)

    @classmethod
    def from_file(cls, path: Path) -> DirectoryDocument:
        data = read_json(path)
        if not isinstance(data, dict) or data.get("format") != SIGNED_FORMAT:
            raise ConfigError(f"{path}: not an op7 directory file (format {SIGNED_FORMAT})")
        try:
            body = unb64(path, "body", data.get("body"))
            signatures = [
                {"key_id": s.get("key_id"), "signature": unb64(path, "a signature", s.get("signature"))}
                for s in data.get("signatures") or []
            ]
            return cls(SignedDirectory.model_validate({"body": body, "signatures": signatures}))
        except (ValidationError, AttributeError) as exc:
            raise ConfigError(f"{path}: malformed directory file: {exc}") from None

    def to_file(self, path: Path) -> None:
        signatures = [{"key_id": s.key_id, "signature": b64(s.signature)} for s in self.signed.signatures]
        write_json(path, {"format": SIGNED_FORMAT, "body": b64(self.signed.body), "signatures": signatures})

    @property
    def directory(self) -> Directory:
        """The decoded body, not checked against any authority (for editing and showing)."""
        return _decode(Directory, self.signed.body, "invalid directory")

    def sign(self, key: SigningKey) -> DirectoryDocument:
        """A copy with ``key``'s signature over the body added (replacing an earlier one by the same key)."""
        key_id = key.public.key_id.hex()
        others = [s for s in self.signed.signatures if s.key_id != key_id]
        entry = {"key_id": key_id, "signature": key.sign(DIRECTORY_SIGNING_CONTEXT + self.signed.body)}
        return DirectoryDocument(
            SignedDirectory.model_validate({"body": self.signed.body, "signatures": [*others, entry]})
        )

    def verify(self, anchor: DirectoryAnchor, at: datetime) -> Directory:
        """Check the signatures against the authority keys and threshold of ``anchor``; return the body decoded.

        Signatures are checked over the exact body bytes before the body is decoded. Raises
        :class:`VerificationError` naming the problem (too few valid authority signatures, another network).
        """
        valid: set[bytes] = set()  # distinct public keys, not key ids: one key never counts twice
        authorities = {a.key_id: a for a in anchor.authorities}
        signed_bytes = DIRECTORY_SIGNING_CONTEXT + self.signed.body
        for entry in self.signed.signatures:
            authority = authorities.get(entry.key_id)
            if authority is None or authority.public_key in valid or authority.problem_at(at) is not None:
                continue
            try:
                VerifyKey.from_raw(authority.public_key).verify(entry.signature, signed_bytes)
            except VerificationError:
                continue
            valid.add(authority.public_key)
        if len(valid) < anchor.threshold:
            raise VerificationError(
                f"directory has {len(valid)} valid authority signature(s); {anchor.threshold} are required",
                reason="directory-signatures",
            )
        directory = self.directory
        if directory.network != anchor.network:
            raise VerificationError(
                f"directory is for network {directory.network!r}, not {anchor.network!r}", reason="directory-network"
            )
        return directory


def _encode(record: Directory | SignedDirectory) -> bytes:
    return encode_datum(default_registry().get(f"op7.directory.{type(record).__name__}"), record.model_dump())


def _decode(model: type[_DirectoryRecord], data: bytes, problem: str) -> _DirectoryRecord:
    datum = decode_datum(default_registry().get(f"op7.directory.{model.__name__}"), data)
    try:
        return model.model_validate(datum)
    except ValidationError as exc:
        raise DecodeError(f"{problem}: {first_problem(exc)}", reason="bad-directory") from exc


class DirectoryTrust:
    """The network directory a node holds, replaced only by a newer, properly signed version."""

    def __init__(self, anchor: DirectoryAnchor) -> None:
        self.anchor = anchor
        self.directory: Directory | None = None
        self.signed: SignedDirectory | None = None
        # Indexes built once per version: every message looks its sender up here.
        self._nodes: dict[str, NodeEntry] = {}
        self._signing: dict[tuple[str, str], tuple[KeyEntry, VerifyKey]] = {}
        self._allowed: dict[str, frozenset[str]] = {}

    @property
    def version(self) -> int:
        return self.directory.version if self.directory else 0

    def offer(self, signed: SignedDirectory, at: datetime) -> bool:
        """Take ``signed`` if it is a newer valid version; False if it is not newer; raise if it is invalid."""
        base = DirectoryAnchor.of(self.directory) if self.directory else self.anchor
        directory = DirectoryDocument(signed).verify(base, at)
        if directory.version <= self.version:
            if directory.version < self.version:
                log.warning("ignored directory version %d: version %d is held", directory.version, self.version)
            return False
        self.directory, self.signed = directory, signed
        self._nodes = {n.node_id: n for n in directory.nodes}
        self._signing = {
            (n.node_id, k.key_id): (k, VerifyKey.from_raw(k.public_key))
            for n in directory.nodes
            for k in n.signing_keys
        }
        self._allowed = {n.node_id: frozenset(n.allowed_types) for n in directory.nodes}
        log.info(
            "directory of %s now at version %d (%d nodes)", directory.network, directory.version, len(directory.nodes)
        )
        return True

    def _node(self, node: str) -> NodeEntry:
        entry = self._nodes.get(node)
        if entry is None:
            raise VerificationError(f"unknown sender {node}: not in the network directory", reason="unknown-sender")
        return entry

    def _signing_entry(self, node: str, key_id: bytes) -> tuple[KeyEntry, VerifyKey]:
        found = self._signing.get((node, key_id.hex()))
        if found is None:
            self._node(node)
            raise VerificationError(
                f"key {key_id.hex()} is not a signing key of {node} in the directory", reason="unknown-key"
            )
        return found

    def key_for(self, node: str, key_id: bytes) -> VerifyKey:
        return self._signing_entry(node, key_id)[1]

    def check_use(self, node: str, key_id: bytes, signed_at: datetime, message_type: str) -> None:
        problem = self._signing_entry(node, key_id)[0].problem_at(signed_at)
        if problem is not None:
            raise VerificationError(f"{node}: {problem[1]}", reason=problem[0])
        if message_type not in self._allowed.get(node, frozenset()):
            raise VerificationError(
                f"{node} is not allowed to send {message_type} by the directory", reason="type-not-allowed"
            )

    def encryption_key(self, node: str, at: datetime) -> SealPublicKey:
        try:
            entry = self._node(node)
        except VerificationError as exc:
            raise ConfigError(str(exc)) from None
        usable = [k for k in entry.encryption_keys if k.problem_at(at) is None]
        if not usable:
            raise ConfigError(f"{node} has no valid encryption key in the directory")
        return SealPublicKey.from_raw(max(usable, key=lambda k: k.valid_from).public_key)


def keep_directory(folder: Path, trust: DirectoryTrust) -> Path:
    """Keep the version ``trust`` holds in ``folder`` (one file per version, so that the chain of versions from
    the anchor can be verified again after a restart, authority changes included)."""
    assert trust.directory is not None
    assert trust.signed is not None
    path = folder / f"{trust.directory.version:010d}.json"
    DirectoryDocument(trust.signed).to_file(path)
    return path


def restore_directory(folder: Path, trust: DirectoryTrust, at: datetime) -> None:
    """Walk the versions kept in ``folder`` from the anchor, in order; each must verify against the one before."""
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else ():
        try:
            trust.offer(DirectoryDocument.from_file(path).signed, at)
        except (VerificationError, DecodeError) as exc:
            raise ConfigError(f"{path}: does not follow from the versions before it: {exc}") from None
