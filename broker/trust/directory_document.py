"""One signed network directory version as it travels and is kept, and the anchor a node starts from.

File formats (JSON)::

    anchor.json     {"format": "op7-directory-anchor/1", "network": "op7", "version": 1, "threshold": 2,
                     "authorities": [{"key_id": "<16 hex>", "public_key": "<base64>"}]}
    directory.json  {"format": "op7-signed-directory/1", "body": "<base64 of the Avro Directory>",
                     "signatures": [{"key_id": "<16 hex>", "signature": "<base64>"}],
                     "accepted_at": "<UTC time>"}   (in a node's home only: when it accepted the version)

An anchor's ``version`` is the directory version whose authorities it holds; anchors written before it existed
have none. The body of a directory is the Avro encoding of ``op7.directory.Directory`` with the schema of this
tree or of a released one (see :func:`decode_body`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from broker.errors import ConfigError, DecodeError, VerificationError
from broker.models.directory import Directory, KeyEntry, SignedDirectory
from broker.models.inputs import first_problem
from broker.trust.files import b64, read_json, unb64, write_json
from broker.wire.codec import decode_datum, encode_datum
from broker.wire.compat import released_versions
from broker.wire.schemas import Schema, SchemaRegistry, default_registry
from broker.wire.signing import SigningKey, VerifyKey

__all__ = [
    "DIRECTORY_SIGNING_CONTEXT",
    "DirectoryAnchor",
    "DirectoryDocument",
    "decode_body",
]

ANCHOR_FORMAT = "op7-directory-anchor/1"
SIGNED_FORMAT = "op7-signed-directory/1"
#: Domain separation: a directory signature can never be mistaken for a message signature.
DIRECTORY_SIGNING_CONTEXT = b"op7 directory v1\x00"
_DIRECTORY = "op7.directory.Directory"
_SIGNED = "op7.directory.SignedDirectory"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NETWORK = re.compile(r"[a-z0-9][a-z0-9.-]{0,62}")  # as Directory.network


@dataclass(frozen=True)
class DirectoryAnchor:
    """The trust a node starts from: the authority keys and threshold its operator installed out of band, and
    the directory version they are those of (None in anchors written before anchors named one)."""

    network: str
    threshold: int
    authorities: tuple[KeyEntry, ...]
    version: int | None = None

    @classmethod
    def of(cls, directory: Directory) -> DirectoryAnchor:
        return cls(directory.network, directory.threshold, directory.authorities, directory.version)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"format": ANCHOR_FORMAT, "network": self.network}
        if self.version is not None:
            data["version"] = self.version
        data["threshold"] = self.threshold
        data["authorities"] = [{"key_id": a.key_id, "public_key": b64(a.public_key)} for a in self.authorities]
        return data

    @classmethod
    def load(cls, path: Path) -> DirectoryAnchor:
        return cls.from_json(read_json(path), str(path))

    @classmethod
    def from_json(cls, data: Any, where: str) -> DirectoryAnchor:
        """An anchor from its JSON (:meth:`to_json`); :class:`ConfigError` naming ``where`` and the field."""
        path = where
        if not isinstance(data, dict) or data.get("format") != ANCHOR_FORMAT:
            raise ConfigError(f"{path}: not an op7 directory anchor (format {ANCHOR_FORMAT})")
        network = data.get("network")
        if not isinstance(network, str) or not _NETWORK.fullmatch(network):
            raise ConfigError(f"{path}: network {network!r} is not a network name (a-z, 0-9, '.', '-')")
        authorities = _anchor_keys(path, data.get("authorities"))
        threshold = data.get("threshold")
        if isinstance(threshold, bool) or not isinstance(threshold, int) or not 1 <= threshold <= len(authorities):
            raise ConfigError(
                f"{path}: threshold {threshold!r} must be a whole number between 1 and the {len(authorities)} "
                "authority keys"
            )
        version = data.get("version")
        if version is not None and (not isinstance(version, int) or isinstance(version, bool) or version < 1):
            raise ConfigError(f"{path}: version {version!r} is not a directory version (a whole number from 1)")
        return cls(network, threshold, tuple(authorities), version)


def _anchor_keys(path: str, entries: object) -> list[KeyEntry]:
    """The authority keys of an anchor file: each a valid Ed25519 key under its own key id, each once."""
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"{path}: authorities must list the network authorities' keys")
    keys: list[KeyEntry] = []
    for entry in entries:
        if not isinstance(entry, dict):
            raise ConfigError(f"{path}: an authority is not an object with key_id and public_key")
        raw = unb64(path, "an authority key", entry.get("public_key"))
        try:
            key: VerifyKey | None = VerifyKey.from_raw(raw)
        except ConfigError:
            key = None
        if key is None or entry.get("key_id", key.key_id.hex()) != key.key_id.hex():
            raise ConfigError(f"{path}: authority key {entry.get('key_id')} is not a valid Ed25519 key")
        if any(k.public_key == raw for k in keys):
            raise ConfigError(f"{path}: authority key {key.key_id.hex()} is listed twice")
        keys.append(KeyEntry(key_id=key.key_id.hex(), public_key=raw, valid_from=_EPOCH))
    return keys


@cache
def _body_schemas() -> tuple[Schema, ...]:
    """The Directory schemas a body may be written with: this tree's, then each released one that differs."""
    registry = default_registry()
    schemas = [registry.get(_DIRECTORY)]
    for folder in released_versions(registry.directory):
        released = SchemaRegistry(folder, include_released=False)
        if _DIRECTORY in released and all(released.get(_DIRECTORY).fingerprint != s.fingerprint for s in schemas):
            schemas.append(released.get(_DIRECTORY))
    return tuple(schemas)


def decode_body(body: bytes) -> Directory:
    """The Directory a body holds, read with the schema that consumes exactly its bytes.

    A body carries no schema id. The schemas differ only by fields appended at the end of the record (released
    schema 1 has no ``expires_at``), so exactly one of them reads a body to its last byte: a shorter schema
    leaves trailing bytes, a longer one runs out of them.
    """
    schemas = _body_schemas()
    first: DecodeError | None = None
    for writer in schemas:
        try:
            datum = decode_datum(writer, body, schemas[0])
        except DecodeError as exc:
            first = first or exc
            continue
        try:
            return Directory.model_validate(datum)
        except ValidationError as exc:
            raise DecodeError(f"invalid directory: {first_problem(exc)}", reason="bad-directory") from exc
    assert first is not None
    raise DecodeError(f"invalid directory: {first}", reason="bad-directory")


def _accepted_at(path: Path, data: dict[str, Any]) -> datetime | None:
    if "accepted_at" not in data:
        return None
    text = data["accepted_at"]
    try:
        at = datetime.fromisoformat(text) if isinstance(text, str) else None
    except ValueError:
        at = None
    if at is None or at.utcoffset() != timedelta(0):
        raise ConfigError(f"{path}: accepted_at {text!r} is not a UTC time (such as 2026-11-01T00:00:00Z)")
    return at


def _encode(schema: str, record: Directory | SignedDirectory) -> bytes:
    return encode_datum(default_registry().get(schema), record.model_dump())


@dataclass(frozen=True)
class DirectoryDocument:
    """One signed directory version as it travels and is kept (after python-tuf's ``Metadata``).

    It carries the exact body bytes the authorities sign and their signatures; it is read from and written to
    the Avro value of the directory topic and the JSON file. The body is decoded on demand and trusted only
    once :class:`broker.trust.directory.DirectoryTrust` has accepted it.
    """

    signed: SignedDirectory

    @classmethod
    def draft(cls, directory: Directory) -> DirectoryDocument:
        """An unsigned document whose body is ``directory``."""
        return cls(SignedDirectory(body=_encode(_DIRECTORY, directory)))

    @classmethod
    def from_bytes(cls, data: bytes) -> DirectoryDocument:
        """From the Avro bytes of a SignedDirectory (the value on the directory topic)."""
        datum = decode_datum(default_registry().get(_SIGNED), data)
        try:
            return cls(SignedDirectory.model_validate(datum))
        except ValidationError as exc:
            raise DecodeError(f"not a signed directory: {first_problem(exc)}", reason="bad-directory") from exc

    def to_bytes(self) -> bytes:
        return _encode(_SIGNED, self.signed)

    @classmethod
    def from_file(cls, path: Path) -> DirectoryDocument:
        return cls.from_kept_file(path)[0]

    @classmethod
    def from_kept_file(cls, path: Path) -> tuple[DirectoryDocument, datetime | None]:
        """A directory file and when the node that kept it accepted it (None when the file does not say)."""
        data = read_json(path)
        if not isinstance(data, dict) or data.get("format") != SIGNED_FORMAT:
            raise ConfigError(f"{path}: not an op7 directory file (format {SIGNED_FORMAT})")
        try:
            body = unb64(path, "body", data.get("body"))
            signatures = [
                {"key_id": s.get("key_id"), "signature": unb64(path, "a signature", s.get("signature"))}
                for s in data.get("signatures") or []
            ]
            document = cls(SignedDirectory.model_validate({"body": body, "signatures": signatures}))
        except (ValidationError, AttributeError) as exc:
            raise ConfigError(f"{path}: malformed directory file: {exc}") from None
        return document, _accepted_at(path, data)

    def to_file(self, path: Path, *, accepted_at: datetime | None = None) -> None:
        """Write the JSON file; ``accepted_at``, when a node keeps a version it accepted, is recorded beside it
        (not signed: it is the node's own note, read back only from its home)."""
        signatures = [{"key_id": s.key_id, "signature": b64(s.signature)} for s in self.signed.signatures]
        data: dict[str, Any] = {"format": SIGNED_FORMAT, "body": b64(self.signed.body), "signatures": signatures}
        if accepted_at is not None:
            data["accepted_at"] = accepted_at.astimezone(UTC).isoformat().replace("+00:00", "Z")
        write_json(path, data)

    @property
    def directory(self) -> Directory:
        """The decoded body, not checked against any authority (for editing, showing and ordering versions)."""
        return decode_body(self.signed.body)

    def sign(self, key: SigningKey) -> DirectoryDocument:
        """A copy with ``key``'s signature over the body added (replacing an earlier one by the same key)."""
        key_id = key.public.key_id.hex()
        others = [s for s in self.signed.signatures if s.key_id != key_id]
        entry = {"key_id": key_id, "signature": key.sign(DIRECTORY_SIGNING_CONTEXT + self.signed.body)}
        return DirectoryDocument(
            SignedDirectory.model_validate({"body": self.signed.body, "signatures": [*others, entry]})
        )

    def signers(self, authorities: tuple[KeyEntry, ...], at: datetime) -> list[str]:
        """The key ids of ``authorities`` with a valid signature over the exact body bytes, each key once.

        Only the first entry of each authority key is checked, and only if the key is in use at ``at``: at most
        ``len(authorities)`` signature checks, however many entries the list holds.
        """
        untried = {a.key_id: a for a in authorities}  # a key id leaves once tried: it never counts twice
        signed_bytes = DIRECTORY_SIGNING_CONTEXT + self.signed.body
        valid: list[str] = []
        for entry in self.signed.signatures:
            authority = untried.pop(entry.key_id, None)
            if authority is None or authority.problem_at(at) is not None:
                continue
            try:
                VerifyKey.from_raw(authority.public_key).verify(entry.signature, signed_bytes)
            except VerificationError:
                continue
            valid.append(authority.key_id)
        return valid

    def verify(self, anchor: DirectoryAnchor, at: datetime) -> Directory:
        """Check the signatures against the keys and threshold of ``anchor`` alone; return the body decoded.

        Signatures are checked over the exact body bytes before the body is decoded. This is one of the checks
        of an update (:meth:`broker.trust.directory.DirectoryTrust.offer` makes them all).
        """
        signers = self.signers(anchor.authorities, at)
        if len(signers) < anchor.threshold:
            raise VerificationError(
                f"directory has {len(signers)} valid authority signature(s); {anchor.threshold} are required",
                reason="directory-signatures",
            )
        directory = self.directory
        if directory.network != anchor.network:
            raise VerificationError(
                f"directory is for network {directory.network!r}, not {anchor.network!r}", reason="directory-network"
            )
        return directory
