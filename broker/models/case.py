"""``op7.case.CaseInformation``: sightings, intelligence, persons, vehicles, phones, accounts, evidence."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, ClassVar

from pydantic import Field, model_validator

from broker.models._types import Identifier, Languages, Record, Text, Timestamp
from broker.models.common import Evaluation, EvidenceReference, FinancialAccount, Location, Person, PhoneNumber, Vehicle
from broker.models.message import ID, Message


class Sighting(Record):
    at: Timestamp
    location: Location
    description: Text
    evaluation: Evaluation | None = None


class IntelligenceItem(Record):
    text: Text
    evaluation: Evaluation


class PersonRole(StrEnum):
    VICTIM = "Victim"
    SUSPECT = "Suspect"
    WITNESS = "Witness"
    ASSOCIATE = "Associate"
    FAMILY_MEMBER = "FamilyMember"
    OTHER = "Other"


class PersonEntry(Record):
    person: Person
    role: PersonRole = PersonRole.OTHER
    evaluation: Evaluation | None = None


class CaseInformation(Message):
    """Information on a case, evaluated 4x4 as a whole and item by item."""

    avro_name: ClassVar[str] = "op7.case.CaseInformation"

    info_id: ID
    case_id: Identifier
    subject: Annotated[str, Field(min_length=1, max_length=200)]
    summary: Text | None = None
    languages: Languages
    evaluation: Evaluation
    sightings: tuple[Sighting, ...] = ()
    intelligence: tuple[IntelligenceItem, ...] = ()
    persons: tuple[PersonEntry, ...] = ()
    vehicles: tuple[Vehicle, ...] = ()
    phones: tuple[PhoneNumber, ...] = ()
    accounts: tuple[FinancialAccount, ...] = ()
    evidence: tuple[EvidenceReference, ...] = ()

    @model_validator(mode="after")
    def _not_empty(self) -> CaseInformation:
        items = (
            self.sightings,
            self.intelligence,
            self.persons,
            self.vehicles,
            self.phones,
            self.accounts,
            self.evidence,
        )
        if not self.summary and not any(items):
            raise ValueError("case information needs a summary or at least one item")
        return self
