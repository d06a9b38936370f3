"""``op7.cooperation``: law-enforcement collaboration (joint teams, operations, liaison, special units)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, ClassVar

from pydantic import Field, model_validator

from broker.models._types import Day, Name, Record, Text
from broker.models.common import Contact, LegalBasis
from broker.models.message import Request, Response


class CollaborationKind(StrEnum):
    JOINT_INVESTIGATION_TEAM = "JointInvestigationTeam"
    COORDINATED_OPERATION = "CoordinatedOperation"
    LIAISON_OFFICER = "LiaisonOfficer"
    SPECIAL_UNIT_CONTACT = "SpecialUnitContact"


class Unit(Record):
    name: Name
    role: Name
    contact: Contact


class CollaborationRequest(Request):
    avro_name: ClassVar[str] = "op7.cooperation.CollaborationRequest"

    kind: CollaborationKind
    purpose: Text
    starts_on: Day | None = None
    ends_on: Day | None = None
    units: tuple[Unit, ...] = ()
    legal_basis: tuple[LegalBasis, ...] = ()

    @model_validator(mode="after")
    def _period(self) -> CollaborationRequest:
        if self.starts_on and self.ends_on and self.ends_on < self.starts_on:
            raise ValueError("ends_on is before starts_on")
        return self


class CollaborationDecision(StrEnum):
    ACCEPTED = "Accepted"
    ACCEPTED_WITH_CONDITIONS = "AcceptedWithConditions"
    DECLINED = "Declined"
    NEEDS_CLARIFICATION = "NeedsClarification"


class CollaborationResponse(Response):
    avro_name: ClassVar[str] = "op7.cooperation.CollaborationResponse"

    decision: CollaborationDecision
    conditions: Annotated[str, Field(min_length=1, max_length=8000)] | None = None
    units: tuple[Unit, ...] = ()
