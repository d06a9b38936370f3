"""What every adapter shares: translations both ways that report, field by field, what they could not carry.

An inbound adapter turns a local record (a file, a request body, a row of an export) into a shared-schema message;
an outbound adapter turns a received message back into a local record. Neither drops anything silently: each
field left behind is a :class:`Loss` in the result, which the command line prints, the API returns, and
``op7 adapter run`` keeps under the message id.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar, Generic, TypeVar

from broker.errors import ConfigError, InputError, Problem
from broker.models import Message

__all__ = [
    "Adapter",
    "InboundAdapter",
    "Loss",
    "OutboundAdapter",
    "Rendered",
    "Translation",
    "envelope_fields",
    "loss",
    "read_file",
]

M = TypeVar("M", bound=Message)

#: Characters of a left-behind value shown in a loss report.
SHOWN = 120


@dataclass(frozen=True)
class Loss:
    """One field a translation could not carry: where it was (a local field inbound, a shared field outbound),
    its value (shortened), and why it could not go."""

    field: str
    value: str
    reason: str

    def __str__(self) -> str:
        return f"{self.field} = {self.value}: {self.reason}"

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "value": self.value, "reason": self.reason}


def loss(field: str, value: object, reason: str) -> Loss:
    """A :class:`Loss` with ``value`` shown as text, shortened to :data:`SHOWN` characters."""
    text = value if isinstance(value, str) else repr(value)
    return Loss(field, text if len(text) <= SHOWN else text[: SHOWN - 1] + "…", reason)


@dataclass(frozen=True)
class Translation(Generic[M]):
    """A local record translated to the shared model, and what of it the shared model could not hold."""

    message: M
    source: str
    lost: tuple[Loss, ...] = field(default=())
    #: The bytes of the local record (a row of an export); None when it is the whole input. A record's message id
    #: is derived from them and the input's name, so that a record read again is sent as the same message.
    record: bytes | None = None

    @property
    def unmapped(self) -> tuple[str, ...]:
        """The local fields left behind."""
        return tuple(item.field for item in self.lost)

    def report(self, message_id: str | None = None) -> dict[str, Any]:
        """The loss report as JSON-ready data (with the message id once the message is sent)."""
        return {
            "source": self.source,
            "message_type": self.message.avro_name,
            "message_id": message_id,
            "lost": [item.as_dict() for item in self.lost],
        }


@dataclass(frozen=True)
class Rendered:
    """A received message as a local record: its bytes, their media type and file suffix, and what the local
    format could not hold."""

    data: bytes
    media_type: str
    suffix: str
    lost: tuple[Loss, ...] = field(default=())


#: Settings every inbound adapter reads: what a local record does not say about its sending.
COMMON_SETTINGS = ("issuer", "tlp", "restrictions", "status")


def envelope_fields(settings: Mapping[str, Any], adapter: str) -> dict[str, Any]:
    """The shared fields a local record does not carry, from the adapter's settings: ``issuer`` (a table with
    ``node``, ``name``, ``desk``, ``phone`` and optionally ``email``; the command line fills it from the network
    directory's entry of the sending node), ``tlp`` (default AMBER), ``restrictions`` (default none) and ``status``
    (default Actual). The values are checked with the message, where a wrong one is reported by field."""
    issuer = settings.get("issuer")
    if not isinstance(issuer, Mapping):
        raise ConfigError(
            f"adapter {adapter!r}: the issuing authority is not known: set issuer = {{node, name, desk, phone}} in "
            "its settings, or send from a home whose node the network directory lists with a 24/7 contact"
        )
    contact = {k: issuer[k] for k in ("desk", "phone", "email") if issuer.get(k) is not None}
    return {
        "issuer": {"node": issuer.get("node"), "name": issuer.get("name"), "contact": contact},
        "handling": {"tlp": settings.get("tlp", "AMBER"), "restrictions": list(settings.get("restrictions", []))},
        "status": settings.get("status", "Actual"),
    }


class Adapter:
    """A local format. ``settings`` are the adapter's table of an ``op7 adapter`` configuration file (what a local
    record does not say, such as the issuing authority or the handling code); a subclass checks the ones it reads
    and refuses the others with :class:`ConfigError`."""

    #: The name on the command line (``--format NAME``, ``op7 adapter translate NAME``).
    name: ClassVar[str]
    #: One line for ``op7 adapter list``.
    summary: ClassVar[str] = ""
    #: The shared message types it translates (Avro full names).
    message_types: ClassVar[tuple[str, ...]] = ()
    #: Settings it reads; any other is refused.
    setting_names: ClassVar[tuple[str, ...]] = ()

    def __init__(self, model: type[Message] | None = None, /, settings: Mapping[str, Any] | None = None) -> None:
        self.model = model
        self.settings = dict(settings or {})
        unknown = sorted(set(self.settings) - set(self.setting_names))
        if unknown:
            allowed = ", ".join(self.setting_names) or "none"
            raise ConfigError(f"adapter {self.name!r}: unknown setting(s) {', '.join(unknown)} (it reads: {allowed})")

    @classmethod
    def directions(cls) -> tuple[str, ...]:
        """``inbound``, ``outbound`` or both: the sides this adapter implements."""
        return tuple(
            side for side, base in (("inbound", InboundAdapter), ("outbound", OutboundAdapter)) if issubclass(cls, base)
        )


class InboundAdapter(Adapter, ABC, Generic[M]):
    """Translates a local record into a shared-schema message; raises :class:`InputError` listing every problem."""

    @abstractmethod
    def translate(self, data: bytes, source: str, *, now: datetime) -> Translation[M]:
        """Translate ``data`` into a message to be sent at ``now`` (what a record leaves out, such as its time
        of sending, is filled from it); raise :class:`broker.errors.InputError` listing every problem found."""

    def translate_all(self, data: bytes, source: str, *, now: datetime) -> Iterator[Translation[M] | InputError]:
        """Each record of ``data`` in turn, translated or refused: a bad record does not stop the others. One
        record for most formats; a flat export has one per row."""
        try:
            yield self.translate(data, source, now=now)
        except InputError as exc:
            yield exc

    def translate_file(self, path: Path, *, now: datetime) -> Translation[M]:
        return self.translate(read_file(path), str(path), now=now)


class OutboundAdapter(Adapter, ABC):
    """Renders a received (verified, decoded) message as a local record."""

    @abstractmethod
    def render(self, message: Message, *, message_id: str, sender: str) -> Rendered:
        """``message`` (sent by node ``sender`` as ``message_id``) as a local record; raise :class:`ConfigError`
        for a message type the format has no record for."""


def read_file(path: Path) -> bytes:
    """A file's bytes, or an :class:`InputError` naming it and why it cannot be read."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise InputError(str(path), [Problem("", "file not found")]) from None
    except OSError as exc:
        raise InputError(str(path), [Problem("", f"cannot read: {exc.strerror or exc}")]) from None
