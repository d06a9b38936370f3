"""Who the nodes are and which keys they hold: the local trust store.

For now a JSON file the operator maintains (``op7 keys trust``); a signed network directory distributed on a
compacted topic replaces it later behind the same :meth:`TrustStore.key_for` lookup.

File format::

    {"format": "op7-trust-store/1",
     "nodes": {"FR.GN": [{"key_id": "<16 hex>", "public_key": "<base64 of 32 bytes>"}]}}
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._iso import COUNTRY_CODES
from .errors import ConfigError, VerificationError
from .models import NODE_ID_PATTERN
from .signing import VerifyKey

__all__ = ["PublicKeyCard", "TrustStore", "check_node_id"]

FORMAT = "op7-trust-store/1"
CARD_FORMAT = "op7-public-key/1"


def check_node_id(node_id: str) -> str:
    """Return ``node_id`` if it is ``CC.AGENCY``; raise :class:`ConfigError` otherwise."""
    if not NODE_ID_PATTERN.match(node_id):
        raise ConfigError(f"{node_id!r} is not a node id of the form CC.AGENCY (e.g. FR.GN, MX.FGR)")
    if node_id[:2] not in COUNTRY_CODES:
        raise ConfigError(f"{node_id!r}: {node_id[:2]} is not an ISO 3166-1 alpha-2 country code")
    return node_id


@dataclass(frozen=True)
class PublicKeyCard:
    """A node's public key as exchanged between operators (the ``.pub`` file)."""

    node: str
    key: VerifyKey

    def to_json(self) -> str:
        return (
            json.dumps(
                {
                    "format": CARD_FORMAT,
                    "node": self.node,
                    "algorithm": "Ed25519",
                    "key_id": self.key.key_id.hex(),
                    "public_key": self.key.b64,
                },
                indent=2,
            )
            + "\n"
        )

    @classmethod
    def load(cls, path: Path) -> PublicKeyCard:
        data = _read_json(path)
        if not isinstance(data, dict) or data.get("format") != CARD_FORMAT:
            raise ConfigError(f"{path}: not an op7 public key file (format {CARD_FORMAT})")
        node = check_node_id(str(data.get("node")))
        key = _key_entry(path, node, data)
        return cls(node, key)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: cannot read JSON: {exc}") from None


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


class TrustStore:
    """Node id -> public keys. Looked up by (node, key id) for every message received."""

    def __init__(self, nodes: dict[str, list[VerifyKey]] | None = None) -> None:
        self._nodes: dict[str, dict[bytes, VerifyKey]] = {}
        for node, keys in (nodes or {}).items():
            for key in keys:
                self.add(node, key)

    def add(self, node: str, key: VerifyKey) -> None:
        self._nodes.setdefault(check_node_id(node), {})[key.key_id] = key

    def remove(self, node: str) -> None:
        self._nodes.pop(node, None)

    def nodes(self) -> Iterable[tuple[str, list[VerifyKey]]]:
        return ((n, list(keys.values())) for n, keys in sorted(self._nodes.items()))

    def __contains__(self, node: object) -> bool:
        return node in self._nodes

    def key_for(self, node: str, key_id: bytes) -> VerifyKey:
        """The key ``node`` signs with under ``key_id``; :class:`VerificationError` if it is not trusted."""
        keys = self._nodes.get(node)
        if keys is None:
            raise VerificationError(f"unknown sender {node}: not in the trust store", reason="unknown-sender")
        key = keys.get(key_id)
        if key is None:
            raise VerificationError(f"key {key_id.hex()} is not a trusted key of {node}", reason="unknown-key")
        return key

    @classmethod
    def load(cls, path: Path) -> TrustStore:
        data = _read_json(path)
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
                store.add(node, _key_entry(path, node, entry))
        return store

    @classmethod
    def load_or_empty(cls, path: Path) -> TrustStore:
        return cls.load(path) if path.exists() else cls()

    def save(self, path: Path) -> None:
        data = {
            "format": FORMAT,
            "nodes": {
                node: [{"key_id": k.key_id.hex(), "public_key": k.b64} for k in keys] for node, keys in self.nodes()
            },
        }
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(path.suffix + ".tmp")
            tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
            os.replace(tmp, path)
        except OSError as exc:
            raise ConfigError(f"{path}: cannot write the trust store: {exc.strerror or exc}") from None
