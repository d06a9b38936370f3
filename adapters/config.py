"""The configuration file of ``op7 adapter run``: which node, which edges (a folder, a webhook) in and out.

A TOML file; relative paths are relative to it. Secrets are never in it: a webhook's HMAC key comes from an
environment variable it names, and inbound bearer tokens are given as their SHA-256 (``op7 adapter token`` makes
one). Every problem is reported at once, by key::

    as = "FR.GN"                       # the node it sends and receives as (its keys in OP7_HOME)
    type = "KidnappingAlert"           # the message type read, for adapters that read several

    [settings]                         # the adapter's own (op7 adapter list shows which it reads)
    tlp = "AMBER"

    [inbound.folder]                   # files dropped here are translated and sent
    path = "drop"                      # done/ and failed/ are made beside what it holds
    poll = 1.0

    [inbound.webhook]                  # local systems POST records here
    listen = "127.0.0.1:8470"
    max_bytes = 1048576
    [[inbound.webhook.clients]]
    name = "records-system"
    token_sha256 = "9f86d081..."

    [outbound]                         # received messages, translated back
    topics = ["alerts"]                # and/or "inbox"
    [outbound.folder]
    path = "received"
    [outbound.webhook]
    url = "https://records.example/op7"
    secret_env = "OP7_WEBHOOK_SECRET"
    max_attempts = 8
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from broker.errors import ConfigError

__all__ = ["Client", "FolderIn", "FolderOut", "Inbound", "Outbound", "RunConfig", "WebhookIn", "WebhookOut", "load"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FolderIn(_Strict):
    path: Path
    poll: Annotated[float, Field(gt=0, le=3600)] = 1.0


class Client(_Strict):
    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9._-]{1,64}$")]
    token_sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
    #: The adapter that reads this client's JSON bodies (XML bodies are CAP).
    json_format: str = "json"


class WebhookIn(_Strict):
    listen: str = "127.0.0.1:8470"
    max_bytes: Annotated[int, Field(gt=0, le=50 * 1024 * 1024)] = 1024 * 1024
    clients: Annotated[tuple[Client, ...], Field(min_length=1)]

    @field_validator("listen")
    @classmethod
    def _host_port(cls, value: str) -> str:
        host, _, port = value.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError("HOST:PORT, e.g. 127.0.0.1:8470")
        return value

    @property
    def address(self) -> tuple[str, int]:
        host, _, port = self.listen.rpartition(":")
        return host.strip("[]"), int(port)


class Inbound(_Strict):
    folder: FolderIn | None = None
    webhook: WebhookIn | None = None


class FolderOut(_Strict):
    path: Path


class WebhookOut(_Strict):
    url: Annotated[str, Field(pattern=r"^https?://")]
    secret_env: Annotated[str, Field(pattern=r"^[A-Z_][A-Z0-9_]*$")]
    #: Attempts before a delivery is kept as failed (for 'op7 adapter redeliver'); the waits double from
    #: ``first_wait`` up to five minutes, so the default 12 keep trying for about an hour and a half.
    max_attempts: Annotated[int, Field(ge=1, le=100)] = 12
    first_wait: Annotated[float, Field(gt=0, le=60)] = 1.0
    timeout: Annotated[float, Field(gt=0, le=120)] = 10.0

    def secret(self) -> bytes:
        value = os.environ.get(self.secret_env, "")
        if len(value) < 16:
            raise ConfigError(
                f"outbound.webhook.secret_env: the environment variable {self.secret_env} holds the HMAC key "
                "(16 characters at least); it is " + ("not set" if not value else "too short")
            )
        return value.encode()


class Outbound(_Strict):
    topics: tuple[str, ...] = ("alerts",)
    group: str | None = None
    folder: FolderOut | None = None
    webhook: WebhookOut | None = None


class RunConfig(_Strict):
    node: Annotated[str, Field(alias="as")]
    type: str | None = None
    settings: dict[str, Any] = Field(default_factory=dict)
    inbound: Inbound | None = None
    outbound: Outbound | None = None


def load(path: Path) -> RunConfig:
    """The configuration in ``path``, its relative paths made absolute; ConfigError listing every problem."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such configuration file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not TOML: {exc}") from None
    try:
        config = RunConfig.model_validate(data)
    except ValidationError as exc:
        lines = [f"{path}: {'.'.join(str(p) for p in e['loc']) or '(top)'}: {_plain(e['msg'])}" for e in exc.errors()]
        raise ConfigError("\n".join(lines)) from None
    if config.inbound is None and config.outbound is None:
        raise ConfigError(f"{path}: neither [inbound] nor [outbound]: nothing to run")
    base = path.resolve().parent
    updates: dict[str, Any] = {}
    if config.inbound is not None and config.inbound.folder is not None:
        folder = config.inbound.folder.model_copy(update={"path": base / config.inbound.folder.path})
        updates["inbound"] = config.inbound.model_copy(update={"folder": folder})
    if config.outbound is not None and config.outbound.folder is not None:
        folder_out = config.outbound.folder.model_copy(update={"path": base / config.outbound.folder.path})
        updates["outbound"] = config.outbound.model_copy(update={"folder": folder_out})
    if isinstance(config.settings.get("mapping"), str):
        updates["settings"] = {**config.settings, "mapping": str(base / config.settings["mapping"])}
    return config.model_copy(update=updates)


def _plain(message: str) -> str:
    return re.sub(r"^(Value error|Assertion failed), ", "", message)
