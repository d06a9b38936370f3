"""Named types of ``schemas/common.avsc``, shared by every message type."""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field, ValidationInfo, model_validator

from broker.models._types import (
    Country,
    Currency,
    Day,
    Email,
    Name,
    NodeId,
    Phone,
    Record,
    Sha256,
    Text,
    Timestamp,
    today,
)


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


def _tlp(value: Any) -> Any:
    # TLP 2.0 writes AMBER+STRICT; Avro symbols cannot hold '+'.
    return value.replace("+", "_").upper() if isinstance(value, str) else value


class Handling(Record):
    tlp: Annotated[Tlp, BeforeValidator(_tlp)]
    restrictions: tuple[UseRestriction, ...] = ()


class Contact(Record):
    desk: Name
    phone: Phone
    email: Email | None = None


class Authority(Record):
    node: NodeId
    name: Name
    contact: Contact


class Sex(StrEnum):
    FEMALE = "Female"
    MALE = "Male"
    OTHER = "Other"
    UNKNOWN = "Unknown"


class IdentityDocumentKind(StrEnum):
    PASSPORT = "Passport"
    NATIONAL_ID_CARD = "NationalIdCard"
    RESIDENCE_PERMIT = "ResidencePermit"
    DRIVING_LICENCE = "DrivingLicence"
    OTHER = "Other"


class IdentityDocument(Record):
    kind: IdentityDocumentKind = IdentityDocumentKind.OTHER
    number: Annotated[str, Field(min_length=1, max_length=50)]
    issuing_country: Country


class Person(Record):
    given_names: Name
    family_names: Name
    aliases: tuple[Name, ...] = ()
    date_of_birth: Day | None = None
    place_of_birth: Name | None = None
    sex: Sex = Sex.UNKNOWN
    nationalities: tuple[Country, ...] = ()
    documents: tuple[IdentityDocument, ...] = ()
    description: Text | None = None

    @model_validator(mode="after")
    def _birth_in_past(self, info: ValidationInfo) -> Person:
        if self.date_of_birth is not None and self.date_of_birth > today(info):
            raise ValueError("date_of_birth is in the future")
        return self


class GeoPoint(Record):
    latitude: Annotated[float, Field(ge=-90, le=90)]
    longitude: Annotated[float, Field(ge=-180, le=180)]


class Location(Record):
    description: Text
    country: Country
    position: GeoPoint | None = None


class Vehicle(Record):
    make: Name | None = None
    model: Name | None = None
    colour: Name | None = None
    plate: Annotated[str, Field(min_length=1, max_length=20)] | None = None
    registration_country: Country | None = None


class PhoneNumber(Record):
    number: Phone
    imei: Annotated[str, Field(pattern=r"^[0-9]{15,16}$")] | None = None
    note: Text | None = None


def _scale4(value: Decimal) -> Decimal:
    # The Avro decimal has scale 4; normalising here makes a model equal to itself after a round trip.
    return value.quantize(Decimal("0.0001"))


class Money(Record):
    amount: Annotated[Decimal, Field(ge=0, max_digits=20, decimal_places=4), AfterValidator(_scale4)]
    currency: Currency


class AccountKind(StrEnum):
    BANK = "Bank"
    PAYMENT_SERVICE = "PaymentService"
    CRYPTO_ASSET = "CryptoAsset"
    OTHER = "Other"


class FinancialAccount(Record):
    kind: AccountKind = AccountKind.OTHER
    identifier: Annotated[str, Field(min_length=1, max_length=200)]
    institution: Name | None = None
    holder: Name | None = None
    country: Country | None = None


class EvidenceReference(Record):
    reference: Annotated[str, Field(min_length=1, max_length=200)]
    description: Text
    media_type: Annotated[str, Field(pattern=r"^[a-z]+/[a-z0-9.+-]+$")] | None = None
    sha256: Sha256
    uri: Annotated[str, Field(min_length=1, max_length=2000)] | None = None
    collected_at: Timestamp | None = None


class LegalInstrument(StrEnum):
    BILATERAL_TREATY = "BilateralTreaty"
    MULTILATERAL_TREATY = "MultilateralTreaty"
    UNTOC = "UNTOC"
    RECIPROCITY = "Reciprocity"
    DOMESTIC_LAW = "DomesticLaw"
    OTHER = "Other"


class LegalBasis(Record):
    instrument: LegalInstrument
    reference: Name


class SourceReliability(StrEnum):
    A = "A"
    B = "B"
    C = "C"
    X = "X"


class InformationAccuracy(StrEnum):
    ACCURACY_1 = "ACCURACY_1"
    ACCURACY_2 = "ACCURACY_2"
    ACCURACY_3 = "ACCURACY_3"
    ACCURACY_4 = "ACCURACY_4"


def _accuracy(value: Any) -> Any:
    # Written 1..4 by people; Avro symbols cannot start with a digit.
    if isinstance(value, int | str) and str(value) in {"1", "2", "3", "4"}:
        return f"ACCURACY_{value}"
    return value


class Evaluation(Record):
    source: SourceReliability
    accuracy: Annotated[InformationAccuracy, BeforeValidator(_accuracy)]


class RequestUrgency(StrEnum):
    ROUTINE = "Routine"
    URGENT = "Urgent"
    LIFE_THREATENING = "LifeThreatening"


class ResponseOutcome(StrEnum):
    EXECUTED = "Executed"
    PARTIALLY_EXECUTED = "PartiallyExecuted"
    REFUSED = "Refused"
    NEEDS_CLARIFICATION = "NeedsClarification"
    IN_PROGRESS = "InProgress"
