"""Frozen pydantic models mirroring the Avro records in ``schemas/``.

Avro fixes the shape; these models also check what Avro cannot: ISO country and currency codes,
coordinates in range, times that carry a zone, node ids, digests. Field names and enum symbols are the
Avro ones, so ``model_dump()`` is the Avro datum and ``model_validate(datum)`` reads one back.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, ClassVar

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    model_validator,
)

from ._iso import COUNTRY_CODES, CURRENCY_CODES

__all__ = [
    "MESSAGE_MODELS",
    "NODE_ID_PATTERN",
    "AlertMessageType",
    "Contact",
    "Envelope",
    "GeoPoint",
    "Handling",
    "IssuingAuthority",
    "KidnappingAlert",
    "LastSeen",
    "Message",
    "PhotoReference",
    "RansomDemand",
    "Severity",
    "Sex",
    "Status",
    "Suspect",
    "Tlp",
    "Urgency",
    "UseRestriction",
    "Vehicle",
    "Victim",
    "new_message_id",
]

#: ``CC.AGENCY``: ISO 3166-1 alpha-2, a dot, an agency code of capitals, digits and hyphens.
NODE_ID_PATTERN = re.compile(r"^([A-Z]{2})\.([A-Z0-9][A-Z0-9-]{0,15})$")


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


def _sha256(value: Any) -> Any:
    if isinstance(value, str):
        if not re.fullmatch(r"[0-9a-fA-F]{64}", value):
            raise ValueError("not a SHA-256 digest (64 hexadecimal digits)")
        return bytes.fromhex(value)
    if isinstance(value, bytes) and len(value) != 32:
        raise ValueError("a SHA-256 digest has 32 bytes")
    return value


def _language(value: str) -> str:
    if not re.fullmatch(r"[a-z]{2,3}(-[A-Za-z0-9]{2,8})*", value):
        raise ValueError("not a BCP 47 language tag (e.g. en, fr, es-MX)")
    return value


def _tlp(value: Any) -> Any:
    # TLP 2.0 writes AMBER+STRICT; Avro symbols cannot hold '+'.
    return value.replace("+", "_").upper() if isinstance(value, str) else value


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


Country = Annotated[str, AfterValidator(_country)]
Currency = Annotated[str, AfterValidator(_currency)]
NodeId = Annotated[str, AfterValidator(_node_id)]
Language = Annotated[str, AfterValidator(_language)]
Timestamp = Annotated[AwareDatetime, AfterValidator(_utc)]
Sha256 = Annotated[
    bytes,
    BeforeValidator(_sha256),
    PlainSerializer(lambda b: b.hex(), return_type=str, when_used="json"),
]
MessageId = Annotated[
    str,
    BeforeValidator(lambda v: str(v) if isinstance(v, uuid.UUID) else v),
    Field(pattern=r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"),
]
Text = Annotated[str, Field(min_length=1, max_length=4000)]
Name = Annotated[str, Field(min_length=1, max_length=200)]


def new_message_id(now: datetime | None = None) -> str:
    """A UUIDv7 (RFC 9562): 48-bit Unix milliseconds, then random bits; sorts by creation time."""
    ms = int((now or datetime.now(UTC)).timestamp() * 1000)
    rand = int.from_bytes(uuid.uuid4().bytes[6:], "big") & ((1 << 80) - 1)
    value = (ms & ((1 << 48) - 1)) << 80 | rand
    value = (value & ~(0xF << 76)) | (0x7 << 76)  # version 7
    value = (value & ~(0x3 << 62)) | (0x2 << 62)  # RFC 4122 variant
    return str(uuid.UUID(int=value))


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)


class Status(StrEnum):
    ACTUAL = "Actual"
    EXERCISE = "Exercise"
    TEST = "Test"


class Tlp(StrEnum):
    CLEAR = "CLEAR"
    GREEN = "GREEN"
    AMBER = "AMBER"
    AMBER_STRICT = "AMBER_STRICT"
    RED = "RED"


class UseRestriction(StrEnum):
    NO_ONWARD_TRANSMISSION = "NO_ONWARD_TRANSMISSION"
    NO_JUDICIAL_USE = "NO_JUDICIAL_USE"
    NO_OPERATIONAL_ACTION = "NO_OPERATIONAL_ACTION"


class Handling(_Record):
    tlp: Annotated[Tlp, BeforeValidator(_tlp)]
    restrictions: tuple[UseRestriction, ...] = ()


class Contact(_Record):
    desk: Name
    phone: Annotated[str, Field(pattern=r"^\+[1-9][0-9]{6,14}$", description="E.164")]
    email: Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")] | None = None


class AlertMessageType(StrEnum):
    ALERT = "Alert"
    UPDATE = "Update"
    CANCEL = "Cancel"
    ALL_CLEAR = "AllClear"


class Urgency(StrEnum):
    IMMEDIATE = "Immediate"
    EXPECTED = "Expected"
    FUTURE = "Future"
    PAST = "Past"
    UNKNOWN = "Unknown"


class Severity(StrEnum):
    EXTREME = "Extreme"
    SEVERE = "Severe"
    MODERATE = "Moderate"
    MINOR = "Minor"
    UNKNOWN = "Unknown"


class Sex(StrEnum):
    FEMALE = "Female"
    MALE = "Male"
    OTHER = "Other"
    UNKNOWN = "Unknown"


class PhotoReference(_Record):
    uri: Annotated[str, Field(min_length=1, max_length=2000)]
    media_type: Annotated[str, Field(pattern=r"^image/[a-z0-9.+-]+$")]
    sha256: Sha256


class Victim(_Record):
    given_names: Name
    family_names: Name
    date_of_birth: date | None = None
    age_years: Annotated[int, Field(ge=0, le=130)] | None = None
    sex: Sex = Sex.UNKNOWN
    height_cm: Annotated[int, Field(ge=30, le=260)] | None = None
    nationalities: tuple[Country, ...] = ()
    distinguishing_marks: Text | None = None
    clothing: Text | None = None
    photo: PhotoReference | None = None

    @model_validator(mode="after")
    def _birth_in_past(self) -> Victim:
        if self.date_of_birth is not None and self.date_of_birth > datetime.now(UTC).date():
            raise ValueError("date_of_birth is in the future")
        return self


class GeoPoint(_Record):
    latitude: Annotated[float, Field(ge=-90, le=90)]
    longitude: Annotated[float, Field(ge=-180, le=180)]


class LastSeen(_Record):
    at: Timestamp
    place: Text
    country: Country
    position: GeoPoint | None = None


class Suspect(_Record):
    description: Text
    given_names: Name | None = None
    family_names: Name | None = None
    sex: Sex = Sex.UNKNOWN
    age_years: Annotated[int, Field(ge=0, le=130)] | None = None
    nationalities: tuple[Country, ...] = ()


class Vehicle(_Record):
    make: Name | None = None
    model: Name | None = None
    colour: Name | None = None
    plate: Annotated[str, Field(min_length=1, max_length=20)] | None = None
    registration_country: Country | None = None


class RansomDemand(_Record):
    amount: Annotated[Decimal, Field(ge=0, max_digits=20, decimal_places=4)] | None = None
    currency: Currency | None = None
    channel: Text | None = None

    @model_validator(mode="after")
    def _amount_has_currency(self) -> RansomDemand:
        if self.amount is not None and self.currency is None:
            raise ValueError("a ransom amount needs its currency")
        return self


class IssuingAuthority(_Record):
    node: NodeId
    name: Name
    contact: Contact


class Message(_Record):
    """Base of every record that travels as a message payload; ``avro_name`` ties it to its schema."""

    avro_name: ClassVar[str]

    @property
    def message_case_id(self) -> str | None:
        return getattr(self, "case_id", None)


class KidnappingAlert(Message):
    """A kidnapping alert (CAP 1.2 style): Alert, then Updates, then Cancel or AllClear."""

    avro_name: ClassVar[str] = "op7.alert.KidnappingAlert"

    alert_id: Annotated[str, Field(min_length=1, max_length=100)] = Field(default_factory=new_message_id)
    case_id: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,99}$")]
    status: Status
    msg_type: AlertMessageType
    references: tuple[str, ...] = ()
    sent_at: Timestamp
    expires_at: Timestamp | None = None
    urgency: Urgency = Urgency.UNKNOWN
    severity: Severity = Severity.UNKNOWN
    headline: Annotated[str, Field(min_length=1, max_length=200)]
    description: Text | None = None
    languages: Annotated[tuple[Language, ...], Field(min_length=1)]
    victims: tuple[Victim, ...]
    last_seen: LastSeen | None = None
    suspects: tuple[Suspect, ...] = ()
    vehicles: tuple[Vehicle, ...] = ()
    ransom: RansomDemand | None = None
    handling: Handling
    issuer: IssuingAuthority

    @model_validator(mode="after")
    def _lifecycle(self) -> KidnappingAlert:
        if self.msg_type is AlertMessageType.ALERT and not self.victims:
            raise ValueError("an Alert names at least one victim")
        if self.msg_type is not AlertMessageType.ALERT and not self.references:
            raise ValueError(f"an {self.msg_type.value} references the alert_ids it changes")
        if self.alert_id in self.references:
            raise ValueError("an alert cannot reference itself")
        if self.expires_at is not None and self.expires_at <= self.sent_at:
            raise ValueError("expires_at is not after sent_at")
        return self


class Envelope(_Record):
    """The decoded, verified header of a message, plus the sender and key id from the frame prefix."""

    sender: NodeId
    key_id: str
    message_id: MessageId
    message_type: str
    schema_fingerprint: Sha256
    created_at: Timestamp
    status: Status
    handling: Handling
    case_id: str | None = None
    recipients: tuple[NodeId, ...] = ()
    conversation_id: str | None = None
    in_reply_to: MessageId | None = None
    expires_at: Timestamp | None = None


#: Payload models by Avro full name.
MESSAGE_MODELS: dict[str, type[Message]] = {KidnappingAlert.avro_name: KidnappingAlert}
