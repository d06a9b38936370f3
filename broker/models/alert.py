"""``op7.alert.KidnappingAlert``: the alert lifecycle, modelled on CAP 1.2."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, ClassVar

from pydantic import Field, ValidationInfo, model_validator

from broker.models._types import (
    Country,
    Day,
    Identifier,
    Language,
    Languages,
    Name,
    Record,
    Sha256,
    Text,
    Timestamp,
    today,
)
from broker.models.common import GeoPoint, Money, Sex, Vehicle
from broker.models.message import ID, Message


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


class PhotoReference(Record):
    uri: Annotated[str, Field(min_length=1, max_length=2000)]
    media_type: Annotated[str, Field(pattern=r"^image/[a-z0-9.+-]+$")]
    sha256: Sha256


class Victim(Record):
    given_names: Name
    family_names: Name
    date_of_birth: Day | None = None
    age_years: Annotated[int, Field(ge=0, le=130)] | None = None
    sex: Sex = Sex.UNKNOWN
    height_cm: Annotated[int, Field(ge=30, le=260)] | None = None
    nationalities: tuple[Country, ...] = ()
    distinguishing_marks: Text | None = None
    clothing: Text | None = None
    photo: PhotoReference | None = None

    @model_validator(mode="after")
    def _birth_in_past(self, info: ValidationInfo) -> Victim:
        if self.date_of_birth is not None and self.date_of_birth > today(info):
            raise ValueError("date_of_birth is in the future")
        return self


class LastSeen(Record):
    at: Timestamp
    place: Text
    country: Country
    position: GeoPoint | None = None


class Suspect(Record):
    description: Text
    given_names: Name | None = None
    family_names: Name | None = None
    sex: Sex = Sex.UNKNOWN
    age_years: Annotated[int, Field(ge=0, le=130)] | None = None
    nationalities: tuple[Country, ...] = ()


class RansomDemand(Record):
    demand: Money | None = None
    channel: Text | None = None


class AlertText(Record):
    """The alert's free text in another of its languages."""

    language: Language
    headline: Annotated[str, Field(min_length=1, max_length=200)]
    description: Text | None = None
    instruction: Text | None = None


class KidnappingAlert(Message):
    """A kidnapping alert: Alert, then Updates, then Cancel or AllClear, each referencing what it changes."""

    avro_name: ClassVar[str] = "op7.alert.KidnappingAlert"

    alert_id: ID
    case_id: Identifier
    msg_type: AlertMessageType
    references: tuple[Identifier, ...] = ()
    expires_at: Timestamp | None = None
    urgency: Urgency = Urgency.UNKNOWN
    severity: Severity = Severity.UNKNOWN
    headline: Annotated[str, Field(min_length=1, max_length=200)]
    description: Text | None = None
    languages: Languages
    victims: tuple[Victim, ...]
    last_seen: LastSeen | None = None
    suspects: tuple[Suspect, ...] = ()
    vehicles: tuple[Vehicle, ...] = ()
    ransom: RansomDemand | None = None
    instruction: Text | None = None
    translations: tuple[AlertText, ...] = ()

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
        translated = [t.language for t in self.translations]
        if len(set(translated)) != len(translated):
            raise ValueError("translations: one text per language")
        others = set(self.languages[1:])
        if any(language not in others for language in translated):
            raise ValueError("translations: each is in one of the alert's languages other than the first")
        return self
