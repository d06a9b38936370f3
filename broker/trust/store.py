"""The local trust store, kept by hand (``op7 keys trust``), and the public key cards operators exchange.

For small or bilateral set-ups: every listed key is valid at all times and may send every type. ::

    trust.json      {"format": "op7-trust-store/1",
                     "nodes": {"FR.GN": [{"key_id": "<16 hex>", "public_key": "<base64>",
                                          "encryption_key": "<base64, optional>"}]}}
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from broker.errors import ConfigError, VerificationError
from broker.models import check_node_id
from broker.trust.files import read_json, write_json
from broker.wire.signing import SealPublicKey, VerifyKey

__all__ = ["PublicKeyCard", "TrustStore"]

FORMAT = "op7-trust-store/1"
CARD_FORMAT = "op7-public-key/1"


@dataclass(frozen=True)
class PublicKeyCard:
    """A node's public keys as exchanged between operators (the ``.pub`` file)."""

    node: str
    key: VerifyKey
    encryption_key: SealPublicKey | None = None

    def to_json(self) -> str:
        data: dict[str, Any] = {
            "format": CARD_FORMAT,
            "node": self.node,
            "algorithm": "Ed25519",
            "key_id": self.key.key_id.hex(),
            "public_key": self.key.b64,
        }
        if self.encryption_key is not None:
            data["encryption_key"] = self.encryption_key.b64
            data["encryption_key_id"] = self.encryption_key.key_id.hex()
        return json.dumps(data, indent=2) + "\n"

    @classmethod
    def load(cls, path: Path) -> PublicKeyCard:
        data = read_json(path)
        if not isinstance(data, dict) or data.get("format") != CARD_FORMAT:
            raise ConfigError(f"{path}: not an op7 public key file (format {CARD_FORMAT})")
        node = check_node_id(str(data.get("node")))
        return cls(node, _key_entry(path, node, data), _enc_entry(path, node, data))


def _key_entry(path: Path, node: str, entry: Any) -> VerifyKey:
    if not isinstance(entry, dict) or not isinstance(entry.get("public_key"), str):
        raise ConfigError(f"{path}: {node}: each key needs a base64 public_key")
    try:
        key = VerifyKey.from_b64(entry["public_key"])
    except ConfigError as exc:
        raise ConfigError(f"{path}: {node}: {exc}") from None
    if "key_id" in entry and entry["key_id"] != key.key_id.hex():
        raise ConfigError(f"{path}: {node}: key_id {entry['key_id']} does not match its public key")
    return key


def _enc_entry(path: Path, node: str, entry: dict[str, Any]) -> SealPublicKey | None:
    if entry.get("encryption_key") is None:
        return None
    try:
        return SealPublicKey.from_b64(str(entry["encryption_key"]))
    except ConfigError as exc:
        raise ConfigError(f"{path}: {node}: {exc}") from None


class TrustStore:
    """Node id -> public keys, kept by hand. Every key is valid at all times and may sign every type."""

    def __init__(self, nodes: dict[str, list[VerifyKey]] | None = None) -> None:
        self._nodes: dict[str, dict[bytes, VerifyKey]] = {}
        self._encryption: dict[str, SealPublicKey] = {}
        for node, keys in (nodes or {}).items():
            for key in keys:
                self.add(node, key)

    def add(self, node: str, key: VerifyKey, encryption_key: SealPublicKey | None = None) -> None:
        self._nodes.setdefault(check_node_id(node), {})[key.key_id] = key
        if encryption_key is not None:
            self._encryption[node] = encryption_key

    def remove(self, node: str) -> None:
        self._nodes.pop(node, None)
        self._encryption.pop(node, None)

    def nodes(self) -> Iterable[tuple[str, list[VerifyKey]]]:
        return ((n, list(keys.values())) for n, keys in sorted(self._nodes.items()))

    def holders(self, key_id: bytes) -> list[str]:
        """The node ids this signing key is trusted under (one, unless a card was trusted under another id)."""
        return [node for node, keys in sorted(self._nodes.items()) if key_id in keys]

    def __contains__(self, node: object) -> bool:
        return node in self._nodes

    @property
    def network(self) -> None:
        """A local trust store is of no network: frames of any network verify (docs/PROTOCOL.md section 4.2)."""
        return None

    def key_for(self, node: str, key_id: bytes) -> VerifyKey:
        keys = self._nodes.get(node)
        if keys is None:
            raise VerificationError(f"unknown sender {node}: not in the trust store", reason="unknown-sender")
        key = keys.get(key_id)
        if key is None:
            raise VerificationError(f"key {key_id.hex()} is not a trusted key of {node}", reason="unknown-key")
        return key

    def check_use(self, node: str, key_id: bytes, signed_at: datetime, message_type: str) -> None:
        return None

    def encryption_key(self, node: str, at: datetime) -> SealPublicKey:
        key = self._encryption.get(node)
        if key is None:
            raise ConfigError(
                f"no encryption key for {node} in the trust store; trust its card again "
                "after it ran 'op7 keys new' with an encryption key"
            )
        return key

    @classmethod
    def load(cls, path: Path) -> TrustStore:
        data = read_json(path)
        if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("nodes"), dict):
            raise ConfigError(f"{path}: not an op7 trust store (format {FORMAT})")
        store = cls()
        for node, entries in data["nodes"].items():
            try:
                check_node_id(node)
            except ConfigError as exc:
                raise ConfigError(f"{path}: {exc}") from None
            if not isinstance(entries, list):
                raise ConfigError(f"{path}: {node}: expected a list of keys")
            for entry in entries:
                store.add(node, _key_entry(path, node, entry), _enc_entry(path, node, entry))
        return store

    @classmethod
    def load_or_empty(cls, path: Path) -> TrustStore:
        return cls.load(path) if path.exists() else cls()

    def save(self, path: Path) -> None:
        nodes: dict[str, list[dict[str, str]]] = {}
        for node, keys in self.nodes():
            nodes[node] = []
            for key in keys:
                entry = {"key_id": key.key_id.hex(), "public_key": key.b64}
                if node in self._encryption:
                    entry["encryption_key"] = self._encryption[node].b64
                nodes[node].append(entry)
        write_json(path, {"format": FORMAT, "nodes": nodes})
