"""``op7.extradition``: extradition and provisional-arrest request, and response."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, ClassVar

from pydantic import Field

from broker.models._types import Day, Name, Record, Text
from broker.models.common import LegalBasis, Location, Person
from broker.models.message import Request, Response


class ExtraditionKind(StrEnum):
    EXTRADITION = "Extradition"
    PROVISIONAL_ARREST = "ProvisionalArrest"


class WarrantKind(StrEnum):
    ARREST_WARRANT = "ArrestWarrant"
    JUDGMENT = "Judgment"
    OTHER = "Other"


class Warrant(Record):
    reference: Name
    issued_by: Name
    issued_on: Day
    kind: WarrantKind = WarrantKind.OTHER


class Charge(Record):
    offence: Text
    legal_provision: Name
    maximum_penalty_years: Annotated[int, Field(ge=0, le=200)] | None = None


class ExtraditionRequest(Request):
    avro_name: ClassVar[str] = "op7.extradition.ExtraditionRequest"

    kind: ExtraditionKind
    person_sought: Person
    last_known_location: Location | None = None
    warrant: Warrant
    charges: Annotated[tuple[Charge, ...], Field(min_length=1)]
    legal_basis: Annotated[tuple[LegalBasis, ...], Field(min_length=1)]
    facts: Text


class ExtraditionOutcome(StrEnum):
    PROVISIONALLY_ARRESTED = "ProvisionallyArrested"
    GRANTED = "Granted"
    REFUSED = "Refused"
    NEEDS_CLARIFICATION = "NeedsClarification"
    PENDING = "Pending"


class SurrenderArrangement(Record):
    date: Day
    place: Name


class ExtraditionResponse(Response):
    avro_name: ClassVar[str] = "op7.extradition.ExtraditionResponse"

    outcome: ExtraditionOutcome
    grounds: Text | None = None
    surrender: SurrenderArrangement | None = None
