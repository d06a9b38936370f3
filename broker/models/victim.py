"""``op7.victim.VictimSupportNotification``: victims, their families and the support given to them."""

from __future__ import annotations

from enum import StrEnum
from typing import ClassVar

from broker.models._types import Country, Day, Identifier, Languages, Record, Text
from broker.models.common import Contact, Person
from broker.models.message import ID, Message


class VictimCondition(StrEnum):
    STILL_HELD = "StillHeld"
    RELEASED = "Released"
    RESCUED = "Rescued"
    ESCAPED = "Escaped"
    DECEASED = "Deceased"
    UNKNOWN = "Unknown"


class Assistance(StrEnum):
    MEDICAL = "Medical"
    PSYCHOLOGICAL = "Psychological"
    LEGAL = "Legal"
    CONSULAR = "Consular"
    SHELTER = "Shelter"
    FINANCIAL = "Financial"
    INTERPRETATION = "Interpretation"
    REPATRIATION = "Repatriation"
    OTHER = "Other"


class RepatriationState(StrEnum):
    REQUESTED = "Requested"
    ARRANGED = "Arranged"
    COMPLETED = "Completed"
    NOT_WANTED = "NotWanted"


class Repatriation(Record):
    state: RepatriationState
    destination_country: Country
    date: Day | None = None


class VictimSupportNotification(Message):
    avro_name: ClassVar[str] = "op7.victim.VictimSupportNotification"

    notification_id: ID
    case_id: Identifier
    victim: Person
    victim_condition: VictimCondition = VictimCondition.UNKNOWN
    family_contacts: tuple[Contact, ...] = ()
    assistance: tuple[Assistance, ...] = ()
    repatriation: Repatriation | None = None
    support_contact: Contact
    notes: Text | None = None
    languages: Languages
