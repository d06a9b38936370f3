"""Field types and validators shared by every model: what Avro cannot check, checked here."""

from __future__ import annotations

import base64
import os
import re
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any, ClassVar

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationInfo,
)

from broker.clock import default_clock, parse_offset
from broker.errors import ConfigError
from broker.models._iso import COUNTRY_CODES, CURRENCY_CODES

#: ``CC.AGENCY``: ISO 3166-1 alpha-2, a dot, an agency code of capitals, digits and hyphens.
NODE_ID_PATTERN = re.compile(r"^([A-Z]{2})\.([A-Z0-9][A-Z0-9-]{0,15})$")


def check_node_id(node_id: str) -> str:
    """Return ``node_id`` if it is ``CC.AGENCY``; raise :class:`ConfigError` otherwise."""
    if not NODE_ID_PATTERN.match(node_id):
        raise ConfigError(f"{node_id!r} is not a node id of the form CC.AGENCY (e.g. FR.GN, MX.FGR)")
    if node_id[:2] not in COUNTRY_CODES:
        raise ConfigError(f"{node_id!r}: {node_id[:2]} is not an ISO 3166-1 alpha-2 country code")
    return node_id


def _country(value: str) -> str:
    if value not in COUNTRY_CODES:
        raise ValueError("not an ISO 3166-1 alpha-2 country code")
    return value


def _currency(value: str) -> str:
    if value not in CURRENCY_CODES:
        raise ValueError("not an ISO 4217 currency code")
    return value


def _node_id(value: str) -> str:
    match = NODE_ID_PATTERN.match(value)
    if not match:
        raise ValueError("not a node id of the form CC.AGENCY (e.g. FR.GN)")
    _country(match.group(1))
    return value


#: Compiled once: every header and most payloads go through these validators.
_HEX64 = re.compile(r"[0-9a-fA-F]{64}")
_LANGUAGE = re.compile(r"[a-z]{2,3}(-[A-Za-z0-9]{2,8})*")


def _sha256(value: Any) -> Any:
    if isinstance(value, str):
        if not _HEX64.fullmatch(value):
            raise ValueError("not a SHA-256 digest (64 hexadecimal digits)")
        return bytes.fromhex(value)
    if isinstance(value, bytes) and len(value) != 32:
        raise ValueError("a SHA-256 digest has 32 bytes")
    return value


def _language(value: str) -> str:
    if not _LANGUAGE.fullmatch(value):
        raise ValueError("not a BCP 47 language tag (e.g. en, fr, es-MX)")
    return value


def relative_offset(value: Any) -> timedelta | None:
    """The offset a relative time (``+6h``, ``-35m``, ``+14d``, ``+2w``: a sign is required) stands for, or None."""
    if not isinstance(value, str) or value.strip()[:1] not in ("+", "-"):
        return None
    return parse_offset(value)


def _base_time(value: str, info: ValidationInfo) -> datetime:
    base = (info.context or {}).get("now") if isinstance(info.context, dict) else None
    if not isinstance(base, datetime):
        raise ValueError(
            f"{value!r} is a relative time: only input files may give one (it counts from the time of sending)"
        )
    return base


def _relative_time(value: Any, info: ValidationInfo) -> Any:
    offset = relative_offset(value)
    return value if offset is None else _base_time(value, info) + offset


def _relative_day(value: Any, info: ValidationInfo) -> Any:
    offset = relative_offset(value)
    return value if offset is None else (_base_time(value, info) + offset).date()


def today(info: ValidationInfo | None = None) -> date:
    """Today's date for validation: that of the time of sending when validating input, else of the clock."""
    base = (info.context or {}).get("now") if info is not None and isinstance(info.context, dict) else None
    return (base if isinstance(base, datetime) else default_clock().now()).date()


def _utc(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("time out of range once converted to UTC") from None


def _uuid_text(value: Any) -> Any:
    return str(value) if isinstance(value, uuid.UUID) else value


Country = Annotated[str, AfterValidator(_country)]
Currency = Annotated[str, AfterValidator(_currency)]
NodeId = Annotated[str, AfterValidator(_node_id)]
Language = Annotated[str, AfterValidator(_language)]
Languages = Annotated[tuple[Language, ...], Field(min_length=1)]
Timestamp = Annotated[AwareDatetime, BeforeValidator(_relative_time), AfterValidator(_utc)]
#: A calendar date; input files may give it relative to the day of sending (``+14d``).
Day = Annotated[date, BeforeValidator(_relative_day)]
Sha256 = Annotated[
    bytes,
    BeforeValidator(_sha256),
    PlainSerializer(lambda b: b.hex(), return_type=str, when_used="json"),
]


def _b64_in(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return base64.b64decode(value, validate=True)
        except ValueError:
            raise ValueError("not base64") from None
    return value


#: Raw bytes (keys, frames, ciphertext): base64 in JSON.
Blob = Annotated[
    bytes,
    BeforeValidator(_b64_in),
    PlainSerializer(lambda b: base64.b64encode(b).decode(), return_type=str, when_used="json"),
]


def _hex_in(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return bytes.fromhex(value)
        except ValueError:
            raise ValueError("not hexadecimal") from None
    return value


#: Avro ``fixed`` values other than digests: lowercase hex in JSON.
HexBytes = Annotated[
    bytes,
    BeforeValidator(_hex_in),
    PlainSerializer(lambda b: b.hex(), return_type=str, when_used="json"),
]
MessageId = Annotated[
    str,
    BeforeValidator(_uuid_text),
    Field(pattern=r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"),
]
Identifier = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,99}$")]
Text = Annotated[str, Field(min_length=1, max_length=8000)]
Name = Annotated[str, Field(min_length=1, max_length=200)]
Phone = Annotated[str, Field(pattern=r"^\+[1-9][0-9]{6,14}$", description="E.164")]
Email = Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]
Count = Annotated[int, Field(ge=0, le=10_000_000)]


def new_message_id(now: datetime) -> str:
    """A UUIDv7 (RFC 9562) for the instant ``now``: 48-bit Unix milliseconds, then random bits; sorts by time."""
    ms = int(now.timestamp() * 1000) & ((1 << 48) - 1)
    rand = bytearray(os.urandom(10))
    rand[0] = 0x70 | (rand[0] & 0x0F)  # version 7
    rand[2] = 0x80 | (rand[2] & 0x3F)  # RFC 4122 variant
    digits = (ms.to_bytes(6, "big") + rand).hex()
    return f"{digits[:8]}-{digits[8:12]}-{digits[12:16]}-{digits[16:20]}-{digits[20:]}"


def new_id() -> str:
    """Default for a message's own identifier (alert_id, request_id, ...)."""
    return new_message_id(default_clock().now())


class Record(BaseModel):
    """Base of every model: frozen, unknown fields refused, surrounding whitespace stripped."""

    # defer_build: a command builds the validators of the few types it uses, not of all of them at import.
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True, defer_build=True)


class MessageBase(Record):
    """Base of every record that travels as a message payload; ``avro_name`` ties it to its schema."""

    avro_name: ClassVar[str]

    @property
    def message_case_id(self) -> str | None:
        """The case this message belongs to, if its type has one."""
        return getattr(self, "case_id", None)
