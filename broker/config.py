"""Where a node keeps its state: the op7 home folder.

::

    $OP7_HOME (default ~/.op7)
    ├── keys/CC.AGENCY.key   private signing key, PEM PKCS#8, mode 0600 (encrypted with OP7_KEY_PASSPHRASE)
    ├── keys/CC.AGENCY.pub   public key card to hand to other nodes' operators
    ├── trust.json           the trust store: node ids and the public keys they sign with
    └── embedded.db          the embedded transport's topics, when no Kafka is configured
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .directory import PublicKeyCard, TrustStore, check_node_id
from .envelope import NodeIdentity
from .errors import ConfigError
from .signing import SigningKey

__all__ = ["Home"]

PASSPHRASE_ENV = "OP7_KEY_PASSPHRASE"  # noqa: S105 (the variable name, not a secret)


def _passphrase() -> bytes | None:
    value = os.environ.get(PASSPHRASE_ENV)
    return value.encode() if value else None


@dataclass(frozen=True)
class Home:
    root: Path

    @classmethod
    def from_env(cls, override: Path | None = None) -> Home:
        if override is not None:
            return cls(override)
        env = os.environ.get("OP7_HOME")
        return cls(Path(env) if env else Path.home() / ".op7")

    @property
    def keys_dir(self) -> Path:
        return self.root / "keys"

    @property
    def trust_path(self) -> Path:
        return self.root / "trust.json"

    @property
    def embedded_path(self) -> Path:
        return self.root / "embedded.db"

    def key_path(self, node_id: str) -> Path:
        return self.keys_dir / f"{check_node_id(node_id)}.key"

    def card_path(self, node_id: str) -> Path:
        return self.keys_dir / f"{check_node_id(node_id)}.pub"

    def trust(self) -> TrustStore:
        return TrustStore.load_or_empty(self.trust_path)

    def new_key(self, node_id: str, *, overwrite: bool = False) -> tuple[SigningKey, Path, Path]:
        """Generate and store a key for ``node_id``; refuses to replace an existing key unless asked."""
        key_path, card_path = self.key_path(node_id), self.card_path(node_id)
        if key_path.exists() and not overwrite:
            raise ConfigError(f"{key_path} already exists; pass --force to replace it (the old key is lost)")
        key = SigningKey.generate()
        try:
            self.keys_dir.mkdir(parents=True, exist_ok=True)
            os.chmod(self.keys_dir, 0o700)
            tmp = key_path.with_suffix(".key.tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(key.to_pem(_passphrase()))
            os.replace(tmp, key_path)
            card_path.write_text(PublicKeyCard(node_id, key.public).to_json(), encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot write the key of {node_id} in {self.keys_dir}: {exc.strerror or exc}") from None
        return key, key_path, card_path

    def identity(self, node_id: str) -> NodeIdentity:
        """The signing identity of a node whose private key is in this home."""
        path = self.key_path(node_id)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise ConfigError(f"no key for {node_id} at {path}; create one with: op7 keys new {node_id}") from None
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read: {exc}") from None
        if path.stat().st_mode & 0o077:
            raise ConfigError(f"{path}: private key is readable by other users; run: chmod 600 {path}")
        try:
            key = SigningKey.from_pem(data, _passphrase())
        except ConfigError as exc:
            raise ConfigError(f"{path}: {exc}") from None
        return NodeIdentity(node_id, key)
