"""op7's settings (:class:`Settings`, from ``OP7_*`` variables) and where a node keeps its state: the op7 home folder.

::

    $OP7_HOME (default ~/.op7)      mode 0700: the state holds received frames, unsealed RED ones included
    ├── keys/CC.AGENCY.key          signing key (Ed25519), PEM PKCS#8, mode 0600 (encrypted with OP7_KEY_PASSPHRASE,
    │                               scrypt: broker.wire.keyfile)
    ├── keys/CC.AGENCY.enc.key      encryption key (X25519) that sealed messages are opened with, mode 0600
    ├── keys/CC.AGENCY.*.old.key    earlier keys, kept after a rotation (old sealed messages stay readable)
    ├── keys/CC.AGENCY.pub          public key card to hand to other operators or the network authority
    ├── trust.json                  the local trust store, used when there is no network directory
    ├── anchor.json                 the network authorities' keys and threshold: switches to the signed directory
    ├── directory/NNNNNNNNNN.json   every signed network directory version accepted, one file each
    └── state/NETWORK/              what this home did on one network (transport, cluster, topic prefix), e.g.
        ├── network.json                kafka-op7-1a2b3c4d: the network it is (transport, address, topic prefix,
        │                               and the Kafka cluster id first met there)
        ├── exchanges-CC.AGENCY.db      the requests a node sent and received, and their answers
        └── replay-GROUP.db             message ids already handled by a consumer group

    $OP7_EMBEDDED_PATH (default $XDG_DATA_HOME/op7/embedded.db, else ~/.local/share/op7/embedded.db)
                                    the embedded transport's topics when no Kafka is configured: one file per
                                    machine user, so that the homes of one user on one machine form one network
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from broker.clock import Clock, default_clock
from broker.errors import ConfigError
from broker.models import check_node_id
from broker.transport import EmbeddedTransport, KafkaSettings, KafkaTransport, Transport, check_bootstrap
from broker.trust.directory import DirectoryAnchor, DirectoryTrust, restore_directory
from broker.trust.store import PublicKeyCard, TrustStore
from broker.wire.envelope import NodeIdentity
from broker.wire.keyfile import protection_of, reprotected
from broker.wire.sealing import Opener
from broker.wire.signing import EncryptionKey, SigningKey
from broker.wire.trust import Trust

__all__ = ["ENV_PREFIX", "Home", "Network", "Settings"]

_Private = TypeVar("_Private", SigningKey, EncryptionKey)

log = logging.getLogger("op7.home")
#: Key files already warned about in this process (one warning each, however often they are opened).
_warned: set[Path] = set()

#: Every setting is read from the variable of its name in capitals with this prefix (``home``: ``OP7_HOME``).
ENV_PREFIX = "OP7_"


def _default_home() -> Path:
    return Path.home() / ".op7"


def _default_embedded_path() -> Path:
    """One embedded file per machine user, where the XDG base directories put a user's data."""
    data = os.environ.get("XDG_DATA_HOME", "")
    base = Path(data) if data and Path(data).is_absolute() else Path.home() / ".local" / "share"
    return base / "op7" / "embedded.db"


def _safe(text: str) -> str:
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in text)


@dataclass(frozen=True)
class Network:
    """The network a home's commands talk to: its transport, where it is, and the topic prefix. State kept about
    one network (exchanges, replay) is kept apart from another's, so that a trial never leaks into a real one."""

    #: ``embedded`` or ``kafka``.
    transport: str
    #: The embedded file (absolute), or the Kafka bootstrap servers (sorted, lower case).
    address: str
    topic_prefix: str

    def describe(self) -> dict[str, str]:
        return {"transport": self.transport, "address": self.address, "topic_prefix": self.topic_prefix}

    @property
    def key(self) -> str:
        """A short readable name of the network, e.g. ``kafka-op7-1a2b3c4d`` (the digest tells addresses apart)."""
        digest = hashlib.sha256(json.dumps(self.describe(), sort_keys=True).encode()).hexdigest()[:8]
        return f"{self.transport}-{_safe(self.topic_prefix)}-{digest}"


#: The session timeout of a static group member (OP7_KAFKA_GROUP_INSTANCE_ID): long enough for a service manager to
#: restart a crashed listener, short enough that a member gone for good is replaced within a minute.
STATIC_SESSION_TIMEOUT_MS = 45_000


class Settings(BaseSettings):
    """op7's settings, in one place: each from its ``OP7_*`` environment variable (an empty one counts as unset),
    or from keyword arguments (the command line's options), which take precedence.

    The ``kafka_*`` settings become the :class:`~broker.transport.KafkaSettings` of a command that reaches Kafka
    (:meth:`kafka`); they are checked when used.
    """

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_ignore_empty=True, extra="ignore", frozen=True)

    home: Path = Field(default_factory=_default_home, description="state folder")
    bootstrap: str | None = Field(None, description="Kafka bootstrap servers; without them, the embedded transport")
    topic_prefix: str = Field("op7", description="topic names start with this and a dot")
    embedded_path: Path = Field(
        default_factory=_default_embedded_path,
        description="the embedded transport's file, one per machine user (default $XDG_DATA_HOME/op7/embedded.db)",
    )
    key_passphrase: SecretStr | None = Field(None, description="passphrase of the private key files")
    kafka_security_protocol: str = Field("PLAINTEXT", description="PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL")
    kafka_ca: str | None = Field(None, description="CA certificates (PEM) of the brokers; default: the system's")
    kafka_cert: str | None = Field(None, description="client certificate (PEM) for mutual TLS")
    kafka_key: str | None = Field(None, description="client key (PEM) for mutual TLS")
    kafka_key_password: SecretStr | None = Field(None, description="password of the client key")
    kafka_sasl_mechanism: str | None = Field(None, description="SCRAM-SHA-256, SCRAM-SHA-512 or PLAIN")
    kafka_sasl_username: str | None = Field(None, description="SASL user name")
    kafka_sasl_password: SecretStr | None = Field(None, description="SASL password")
    # Text, checked by kafka(): a bad Kafka setting fails the commands that reach Kafka, not every command.
    kafka_replication_factor: str | None = Field(
        None, description="replicas of the topics op7 creates (default: 3, or fewer brokers)"
    )
    kafka_group_instance_id: str | None = Field(
        None,
        description="static group membership: this listener's own id in its group (one per process; worker I of "
        "--workers N adds -I); a restart within the session timeout keeps its partitions, without a rebalance",
    )
    # Text, checked by metrics_endpoint(): a bad one fails the commands that serve metrics, not every command.
    metrics_port: str | None = Field(
        None, description="port of the Prometheus endpoint of the long-running commands (default: none served)"
    )
    metrics_address: str = Field("127.0.0.1", description="address the Prometheus endpoint listens on")
    audit_store: str | None = Field(
        None, description="the auditor's evidence log: a SQLite file or a postgresql:// URL (default: audit.db)"
    )

    @classmethod
    def load(cls, **overrides: Any) -> Settings:
        """The settings from the environment, with ``overrides`` (those that are not None) on top."""
        try:
            return cls(**{k: v for k, v in overrides.items() if v is not None})
        except ValidationError as exc:
            problems = "; ".join(
                f"{ENV_PREFIX}{'.'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in exc.errors()
            )
            raise ConfigError(f"settings: {problems}") from None

    def kafka(self, **overrides: Any) -> KafkaSettings:
        """The Kafka client settings of :attr:`bootstrap` (which must be set), with ``overrides`` not None on top."""
        if not self.bootstrap:
            raise ConfigError("no Kafka bootstrap servers: give --bootstrap or OP7_BOOTSTRAP")

        def secret(value: SecretStr | None) -> str | None:
            return value.get_secret_value() if value is not None else None

        replicas = self.kafka_replication_factor
        if replicas is not None and not (replicas.isdigit() and int(replicas) >= 1):
            raise ConfigError(f"{self.variable('kafka_replication_factor')}={replicas!r}: a whole number from 1")

        settings = KafkaSettings(
            bootstrap_servers=check_bootstrap(self.bootstrap),
            security_protocol=self.kafka_security_protocol.upper(),
            ssl_cafile=self.kafka_ca,
            ssl_certfile=self.kafka_cert,
            ssl_keyfile=self.kafka_key,
            ssl_password=secret(self.kafka_key_password),
            sasl_mechanism=self.kafka_sasl_mechanism,
            sasl_username=self.kafka_sasl_username,
            sasl_password=secret(self.kafka_sasl_password),
            replication_factor=int(replicas) if replicas else None,
            group_instance_id=self.kafka_group_instance_id,
            # A static member is given this long to come back before its partitions go to another member.
            session_timeout_ms=STATIC_SESSION_TIMEOUT_MS if self.kafka_group_instance_id else 10_000,
        )
        return dataclasses.replace(settings, **{k: v for k, v in overrides.items() if v is not None})

    def metrics_endpoint(self, port: int | None = None, address: str | None = None) -> tuple[str, int] | None:
        """Where a long-running command serves its metrics: ``port`` and ``address`` (the command's options) over
        :attr:`metrics_port` and :attr:`metrics_address`; None when no port is given."""
        if port is None and self.metrics_port is not None:
            text = self.metrics_port.strip()
            if not (text.isdigit() and 0 < int(text) < 65536):
                raise ConfigError(f"{self.variable('metrics_port')}={self.metrics_port!r}: a port number, 1 to 65535")
            port = int(text)
        return None if port is None else (address or self.metrics_address, port)

    def transport(self, embedded_path: Path | None, *, clock: Clock | None = None, **kafka: Any) -> Transport:
        """Kafka when bootstrap servers are set, otherwise the embedded transport (``embedded_path``, or memory)."""
        if self.bootstrap:
            return KafkaTransport(self.kafka(**kafka))
        return EmbeddedTransport(embedded_path, clock=clock)

    def network(self) -> Network:
        """The network these settings reach: Kafka at :attr:`bootstrap` if set, otherwise the embedded file."""
        if self.bootstrap:
            servers = sorted({s.strip().lower() for s in self.bootstrap.split(",") if s.strip()})
            return Network("kafka", ",".join(servers), self.topic_prefix)
        return Network("embedded", str(self.embedded_path.expanduser().resolve()), self.topic_prefix)

    @staticmethod
    def variable(name: str) -> str:
        """The environment variable of the setting ``name``."""
        return f"{ENV_PREFIX}{name.upper()}"


@dataclass(frozen=True)
class Home:
    root: Path
    #: What this home's commands read the time from (the system clock unless a program gives another).
    clock: Clock = field(default_factory=default_clock, compare=False)
    #: The settings this home was opened with (the embedded file, the key passphrase): read once.
    settings: Settings = field(default_factory=Settings.load, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.root.exists() and not self.root.is_dir():
            raise ConfigError(
                f"home {self.root}: a file, not a folder; {Settings.variable('home')} (or --home) names the folder "
                "where a node keeps its keys, trust and state"
            )
        try:
            mode = self.root.stat().st_mode
        except OSError:
            return
        if mode & 0o077:
            log.warning(
                "home %s is open to other users (mode %o): it holds private keys and received messages; "
                "run: chmod 700 %s",
                self.root,
                mode & 0o777,
                self.root,
            )

    def create(self) -> None:
        """Create the home, readable by its owner only (parents as the umask says)."""
        if not self.root.exists():
            self.root.parent.mkdir(parents=True, exist_ok=True)
            self.root.mkdir(mode=0o700, exist_ok=True)
            os.chmod(self.root, 0o700)  # whatever the umask

    @classmethod
    def from_env(cls, override: Path | None = None) -> Home:
        settings = Settings.load()
        return cls(override if override is not None else settings.home, settings=settings)

    def _passphrase(self) -> bytes | None:
        value = self.settings.key_passphrase
        return value.get_secret_value().encode() if value else None

    @property
    def keys_dir(self) -> Path:
        return self.root / "keys"

    @property
    def trust_path(self) -> Path:
        return self.root / "trust.json"

    @property
    def embedded_path(self) -> Path:
        """The embedded transport's file: one per machine user, shared by all the user's homes (OP7_EMBEDDED_PATH)."""
        return self.settings.embedded_path

    @property
    def network(self) -> Network:
        """The network this home's commands reach (from the settings it was opened with)."""
        return self.settings.network()

    def state_dir(self) -> Path:
        """This home's state about :attr:`network`, created with a ``network.json`` that names the network."""
        network = self.network
        folder = self.root / "state" / network.key
        label = folder / "network.json"
        if not label.exists():
            try:
                self.create()
                folder.mkdir(parents=True, exist_ok=True)
                label.write_text(json.dumps({"format": "op7-network/1", **network.describe()}, indent=2) + "\n")
            except OSError as exc:
                raise ConfigError(f"cannot write {label}: {exc.strerror or exc}") from None
        return folder

    def bind_cluster(self, cluster_id: str) -> None:
        """Tie this home's state about its network to the cluster reached there (recorded the first time): a cluster
        of another id at the same address (a trial broker, a tunnel to another network) is refused, so that the
        exchanges of one are never resent to the other."""
        label = self.state_dir() / "network.json"
        try:
            described = json.loads(label.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{label}: cannot read: {exc}") from None
        known = described.get("cluster_id")
        if known is None:
            described["cluster_id"] = cluster_id
            label.write_text(json.dumps(described, indent=2) + "\n", encoding="utf-8")
        elif known != cluster_id:
            raise ConfigError(
                f"{self.network.address} now reaches the Kafka cluster {cluster_id}, but the state in {label.parent} "
                f"is about cluster {known}: another network at the same address. Use another --topic-prefix or "
                f"OP7_HOME for it, or move {label.parent} away if that cluster is gone for good"
            )

    def key_path(self, node_id: str) -> Path:
        return self.keys_dir / f"{check_node_id(node_id)}.key"

    def card_path(self, node_id: str) -> Path:
        return self.keys_dir / f"{check_node_id(node_id)}.pub"

    @property
    def anchor_path(self) -> Path:
        return self.root / "anchor.json"

    @property
    def directory_dir(self) -> Path:
        """Every directory version accepted, one file each."""
        return self.root / "directory"

    def enc_key_path(self, node_id: str) -> Path:
        return self.keys_dir / f"{check_node_id(node_id)}.enc.key"

    def replay_path(self, group: str) -> Path:
        return self.state_dir() / f"replay-{_safe(group)}.db"

    def outbox_path(self, node_id: str) -> Path:
        """What ``node_id`` sent on this home's network and the cluster has not acknowledged yet."""
        return self.state_dir() / f"outbox-{check_node_id(node_id)}.db"

    def sequence_path(self, node_id: str) -> Path:
        """The sequence numbers ``node_id`` gave the frames it signed on this home's network."""
        return self.state_dir() / f"sequence-{check_node_id(node_id)}.db"

    def exchanges_path(self, node_id: str) -> Path:
        """The exchanges of ``node_id`` on this home's network."""
        return self.state_dir() / f"exchanges-{check_node_id(node_id)}.db"

    @property
    def deadlines_path(self) -> Path:
        """Optional answer deadlines of this network (see ``broker.exchange.DeadlinePolicy.load``)."""
        return self.root / "deadlines.json"

    def uses_directory(self) -> bool:
        return self.anchor_path.exists()

    def trust(self) -> Trust:
        """The network directory when an anchor is installed, otherwise the local trust store."""
        if not self.uses_directory():
            return TrustStore.load_or_empty(self.trust_path)
        trust = DirectoryTrust(DirectoryAnchor.load(self.anchor_path), clock=self.clock)
        restore_directory(self.directory_dir, trust, self.clock.now())
        return trust

    def _write_private(self, path: Path, pem: bytes, node_id: str) -> None:
        self.create()
        self.keys_dir.mkdir(exist_ok=True)
        os.chmod(self.keys_dir, 0o700)
        tmp = path.with_name(path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(pem)
        os.replace(tmp, path)
        self._warn_protection(path, pem, node_id, written=True)

    def _warn_protection(self, path: Path, data: bytes, node_id: str, *, written: bool = False) -> None:
        """Warn when the key file ``data`` is in clear or encrypted with a weak KDF: each time it is written, once
        per process when it is opened."""
        protection = protection_of(data)
        if protection == "scrypt" or (path in _warned and not written):
            return
        _warned.add(path)
        if protection == "none":
            log.warning(
                "%s: private key %s (not encrypted): whoever reads the file holds the key; set %s and run "
                "'op7 keys protect %s'",
                path,
                "written unprotected" if written else "is unprotected",
                Settings.variable("key_passphrase"),
                node_id,
            )
        else:
            log.warning(
                "%s: private key is encrypted with a weak key derivation (PBKDF2, 2,048 iterations); "
                "run 'op7 keys protect %s' to encrypt it again with scrypt",
                path,
                node_id,
            )

    def new_key(self, node_id: str, *, overwrite: bool = False, rotate: bool = False) -> tuple[SigningKey, Path, Path]:
        """Generate and store a signing and an encryption key for ``node_id``.

        Refuses to replace existing keys unless ``overwrite`` (the old keys are lost) or ``rotate`` (the old
        keys are kept as ``*.old.key``, so that what was sealed to them can still be opened).
        """
        key_path, enc_path, card_path = self.key_path(node_id), self.enc_key_path(node_id), self.card_path(node_id)
        if key_path.exists() and not (overwrite or rotate):
            raise ConfigError(f"{key_path} already exists; use 'op7 keys rotate {node_id}' to replace it")
        if rotate and not key_path.exists():
            raise ConfigError(f"no key to rotate for {node_id}; create one with: op7 keys new {node_id}")
        key, enc = SigningKey.generate(), EncryptionKey.generate()
        try:
            if rotate:
                old = self.identity(node_id).key.public.key_id.hex()
                os.replace(key_path, key_path.with_name(f"{node_id}.{old}.old.key"))
                if enc_path.exists():
                    old_enc = self._open_private(EncryptionKey, enc_path, node_id).public.key_id.hex()
                    os.replace(enc_path, enc_path.with_name(f"{node_id}.enc.{old_enc}.old.key"))
            self._write_private(key_path, key.to_pem(self._passphrase()), node_id)
            self._write_private(enc_path, enc.to_pem(self._passphrase()), node_id)
            card_path.write_text(PublicKeyCard(node_id, key.public, enc.public).to_json(), encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot write the keys of {node_id} in {self.keys_dir}: {exc.strerror or exc}") from None
        return key, key_path, card_path

    def _read_private(self, path: Path, node_id: str) -> bytes:
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise ConfigError(f"no key for {node_id} at {path}; create one with: op7 keys new {node_id}") from None
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read: {exc}") from None
        if path.stat().st_mode & 0o077:
            raise ConfigError(f"{path}: private key is readable by other users; run: chmod 600 {path}")
        return data

    def _open_private(self, kind: type[_Private], path: Path, node_id: str) -> _Private:
        """The private key in ``path``; an error names the file and, when it is the cause, OP7_KEY_PASSPHRASE."""
        data = self._read_private(path, node_id)
        passphrase = self._passphrase()
        try:
            key = kind.from_pem(data, passphrase)
        except ConfigError as exc:
            variable = Settings.variable("key_passphrase")
            encrypted = b"-----BEGIN ENCRYPTED PRIVATE KEY-----" in data
            if encrypted and passphrase is None:
                problem = f"the private key is encrypted and {variable} is not set: set it to the key's passphrase"
            elif encrypted:
                problem = f"cannot decrypt the private key with the passphrase in {variable}: wrong passphrase?"
            elif passphrase is not None and b"PRIVATE KEY" in data:
                problem = (
                    f"the private key is not encrypted, but {variable} is set: unset it for this home, or run "
                    f"'op7 keys protect {node_id}' to encrypt the keys with it"
                )
            else:
                problem = str(exc)
            raise ConfigError(f"{path}: {problem}") from None
        self._warn_protection(path, data, node_id)
        return key

    def protect(self, node_id: str) -> list[Path]:
        """Encrypt the private keys of ``node_id`` (earlier ones included) with scrypt under OP7_KEY_PASSPHRASE: keys
        in clear, or encrypted with that passphrase by an earlier op7 (PBKDF2). Returns the files rewritten."""
        variable = Settings.variable("key_passphrase")
        passphrase = self._passphrase()
        if passphrase is None:
            raise ConfigError(
                f"set {variable} to the passphrase that the private keys of {node_id} are to be kept with"
            )
        main = [p for p in (self.key_path(node_id), self.enc_key_path(node_id)) if p.exists()]
        if not main:
            raise ConfigError(f"no key for {node_id} in {self.keys_dir}; create one with: op7 keys new {node_id}")
        rewritten = []
        for path in [*main, *sorted(self.keys_dir.glob(f"{node_id}.*.old.key"))]:
            data = self._read_private(path, node_id)
            if protection_of(data) == "scrypt":
                continue
            try:
                pem = reprotected(data, passphrase)
            except ConfigError:
                raise ConfigError(
                    f"{path}: cannot decrypt the private key with the passphrase in {variable}: wrong passphrase?"
                ) from None
            self._write_private(path, pem, node_id)
            rewritten.append(path)
        return rewritten

    def identity(self, node_id: str) -> NodeIdentity:
        """The signing identity of a node whose private key is in this home."""
        return NodeIdentity(node_id, self._open_private(SigningKey, self.key_path(node_id), node_id))

    def opener(self, node_id: str) -> Opener | None:
        """What opens messages sealed to ``node_id``: its current and earlier encryption keys; None if none."""
        paths = [self.enc_key_path(node_id), *sorted(self.keys_dir.glob(f"{node_id}.enc.*.old.key"))]
        keys = [self._open_private(EncryptionKey, p, node_id) for p in paths if p.exists()]
        return Opener(node_id, keys) if keys else None
