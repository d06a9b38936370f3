"""Messages for people: a header line, then every field that has a value, one labelled line each, nested records
indented. One rendering serves every message type (``op7 show``, ``op7 inbox watch``), so a new type or field needs
no code here.
"""

from __future__ import annotations

import textwrap
import unicodedata
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from decimal import Decimal
from enum import Enum
from typing import Any

from pydantic import BaseModel

from broker.models import Authority, Contact, Envelope, Handling, Message

__all__ = ["WIDTH", "render_body", "render_envelope", "render_message", "short_type"]

#: Lines are wrapped at this width (long free text: facts, descriptions).
WIDTH = 100

#: Fields never shown: the header line says them, or they are secret (a forwarded original's content key).
_HIDDEN = frozenset({"case_id", "status", "handling", "sent_at", "msg_type", "original_content_key"})


def short_type(message_type: str) -> str:
    """``op7.mla.MutualLegalAssistanceRequest`` -> ``MutualLegalAssistanceRequest``."""
    return message_type.rsplit(".", 1)[-1]


def _when(value: datetime, now: datetime | None) -> str:
    text = f"{value:%Y-%m-%d %H:%M:%SZ}"
    if now is None:
        return text
    delta = value - now
    ahead = delta >= timedelta(0)
    delta = abs(delta)
    hours, rest = divmod(int(delta.total_seconds()), 3600)
    if hours >= 24:
        span = f"{hours // 24} d {hours % 24} h"
    else:
        span = f"{hours} h {rest // 60} min" if hours else f"{rest // 60} min"
    return f"{text} ({'in ' + span if ahead else span + ' ago'})"


def _handling(h: Handling) -> str:
    tlp = "AMBER+STRICT" if h.tlp.value == "AMBER_STRICT" else h.tlp.value
    return f"TLP:{tlp}" + "".join(f", {r.value}" for r in h.restrictions)


def _contact(c: Contact) -> str:
    return ", ".join(p for p in (c.desk, c.phone, c.email) if p)


def _inline(value: Any, now: datetime | None) -> str | None:
    """``value`` on one line, or None when it needs lines of its own."""
    if isinstance(value, Authority):
        return f"{value.name} ({value.node}); {_contact(value.contact)}"
    if isinstance(value, Contact):
        return _contact(value)
    if isinstance(value, Handling):
        return _handling(value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, datetime):
        return _when(value, now)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str | int | float | Decimal):
        return str(value)
    if isinstance(value, bytes):  # digests read as hex; anything longer is only measured
        return value.hex() if len(value) <= 32 else f"<{len(value)} bytes>"
    if isinstance(value, BaseModel):
        shown = [(k, v) for k, v in _fields(value)]
        if len(shown) == 1:  # a record of one field (a phone number, a reference) reads as its value
            return _inline(shown[0][1], now)
    if isinstance(value, tuple | list) and all(isinstance(v, str | Enum) for v in value):
        return ", ".join(str(v.value) if isinstance(v, Enum) else v for v in value)
    return None


def _fields(model: BaseModel) -> Iterator[tuple[str, Any]]:
    # What the message says first; who issued it (declared first, on the base class) last.
    for name in sorted(type(model).model_fields, key=lambda n: n == "issuer"):
        value = getattr(model, name)
        if name in _HIDDEN or value is None or value == () or value == []:
            continue
        yield name, value


def _label(name: str) -> str:
    return name.replace("_", " ").capitalize()


def _printable(text: str) -> str:
    """``text`` safe for a terminal: line breaks and tabs become spaces, and every other control or format character
    (an escape sequence, a carriage return, a bidirectional override) is written as its code, so that a sender's
    free text cannot redraw what the reader sees (a forged "signature verified", say)."""
    return "".join(
        " " if ch in "\n\t" else (ch if unicodedata.category(ch)[0] != "C" else f"\\u{ord(ch):04x}") for ch in text
    )


def _line(indent: str, label: str, text: str) -> list[str]:
    first = f"{indent}{label}: "
    return textwrap.wrap(
        _printable(text), WIDTH, initial_indent=first, subsequent_indent=indent + "  ", break_on_hyphens=False
    ) or [first.rstrip()]


def _lines(model: BaseModel, indent: str, now: datetime | None) -> list[str]:
    out: list[str] = []
    for name, value in _fields(model):
        text = _inline(value, now)
        if text is not None:
            out += _line(indent, _label(name), text)
        elif isinstance(value, BaseModel):
            out += [f"{indent}{_label(name)}:", *_lines(value, indent + "  ", now)]
        else:
            out.append(f"{indent}{_label(name)}:")
            for item in value:
                out += _item(item, indent + "  ", now)
    return out


def _item(item: Any, indent: str, now: datetime | None) -> list[str]:
    text = _inline(item, now)
    if text is not None:
        return (
            textwrap.wrap(_printable(text), WIDTH, initial_indent=f"{indent}- ", subsequent_indent=indent + "  ") or []
        )
    inner = _lines(item, indent + "  ", now)
    return [f"{indent}- {inner[0].lstrip()}", *inner[1:]] if inner else []


def render_body(message: Message, *, now: datetime | None = None, indent: str = "  ") -> list[str]:
    """The fields of ``message`` that have a value, labelled, one line each (long text wrapped)."""
    return _lines(message, indent, now)


def render_envelope(envelope: Envelope, *, verified: bool = True) -> list[str]:
    """The header for people: type, case, status and handling; id, sender, recipients, time, sealing."""
    case = f" case {envelope.case_id}" if envelope.case_id else ""
    to = ", ".join(envelope.recipients) or "all subscribers"
    notes = ["sealed" if envelope.sealed is not None else "not sealed"]
    if verified:
        notes.append("signature verified")
    reply = f", in reply to {envelope.in_reply_to}" if envelope.in_reply_to else ""
    return [
        f"{short_type(envelope.message_type)}{case} [{envelope.status.value}, {_handling(envelope.handling)}]",
        f"  id {envelope.message_id}{reply}",
        f"  from {envelope.sender} to {to} at {envelope.created_at:%Y-%m-%d %H:%M:%SZ} ({', '.join(notes)})",
    ]


def render_message(
    message: Message | None, envelope: Envelope, *, now: datetime | None = None, verified: bool = True
) -> str:
    """``message`` as text for people, under its header; ``message`` None when its content cannot be read here
    (sealed to other nodes). With ``now``, times also say how far ahead or behind they are."""
    lines = render_envelope(envelope, verified=verified)
    if message is None:
        lines.append(f"  (content sealed to {', '.join(envelope.recipients)}: not readable with this node's keys)")
    else:
        lines += _lines(message, "  ", now)
    return "\n".join(lines)
