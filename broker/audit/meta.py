"""What the evidence log keeps of a verified message's header, and how a reader gets it back.

An entry's ``meta`` holds the signed header's fields as JSON values (:func:`envelope_meta`): enough to prove who sent
what to whom and when, sealed or not. A sealed message's wrapped content keys are not kept: ``sealed`` only says
that the payload is closed to the auditor. :func:`message_meta` reads the fields the reports use back into typed
values, naming the entry and the field when one is missing or malformed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from broker.errors import ConfigError
from broker.models import Envelope

__all__ = ["MessageMeta", "envelope_meta", "message_meta"]


def envelope_meta(envelope: Envelope) -> dict[str, Any]:
    """The header of a verified message as an entry's ``meta``: every field as a JSON value (times in ISO 8601,
    digests in hex), ``sealed`` as a boolean."""
    meta: dict[str, Any] = envelope.model_dump(mode="json", exclude={"sealed"})
    meta["sealed"] = envelope.sealed is not None
    return meta


@dataclass(frozen=True)
class MessageMeta:
    """The header fields of a logged message that reports count by."""

    sender: str
    message_id: str
    message_type: str
    created_at: datetime
    status: str
    recipients: tuple[str, ...]
    case_id: str | None
    in_reply_to: str | None
    expires_at: datetime | None
    sealed: bool
    network: str | None

    @property
    def country(self) -> str:
        """The sender's country: the first two letters of its node id."""
        return self.sender[:2]


def message_meta(meta: Mapping[str, Any], where: str = "entry") -> MessageMeta:
    """The report fields of ``meta`` (as :func:`envelope_meta` writes it); :class:`ConfigError` naming ``where`` and
    the field when one is missing or of the wrong kind."""
    recipients = _field(meta, "recipients", list, where, required=False) or []
    if not all(isinstance(r, str) for r in recipients):
        raise ConfigError(f"{where}: meta field 'recipients' is not a list of node ids")
    return MessageMeta(
        sender=_field(meta, "sender", str, where),
        message_id=_field(meta, "message_id", str, where),
        message_type=_field(meta, "message_type", str, where),
        created_at=_time(meta, "created_at", where, required=True),
        status=_field(meta, "status", str, where),
        recipients=tuple(recipients),
        case_id=_field(meta, "case_id", str, where, required=False),
        in_reply_to=_field(meta, "in_reply_to", str, where, required=False),
        expires_at=_time(meta, "expires_at", where, required=False),
        sealed=bool(_field(meta, "sealed", bool, where, required=False)),
        network=_field(meta, "network", str, where, required=False),
    )


def _field(meta: Mapping[str, Any], name: str, kind: type, where: str, *, required: bool = True) -> Any:
    value = meta.get(name)
    if value is None:
        if required:
            raise ConfigError(f"{where}: meta has no {name!r}")
        return None
    if not isinstance(value, kind):
        raise ConfigError(f"{where}: meta field {name!r} is {type(value).__name__}, not {kind.__name__}")
    return value


def _time(meta: Mapping[str, Any], name: str, where: str, *, required: bool) -> Any:
    text = _field(meta, name, str, where, required=required)
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"{where}: meta field {name!r} is not an ISO 8601 time: {text!r}") from None
    if value.tzinfo is None:
        raise ConfigError(f"{where}: meta field {name!r} has no time zone: {text!r}")
    return value
