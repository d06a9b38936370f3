"""``op7.mla``: mutual legal assistance request and response."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, ClassVar

from pydantic import Field, model_validator

from broker.models._types import Record, Text, Timestamp
from broker.models.common import (
    EvidenceReference,
    FinancialAccount,
    LegalBasis,
    Location,
    Person,
    PhoneNumber,
    ResponseOutcome,
)
from broker.models.message import Request, Response


class MeasureKind(StrEnum):
    TAKING_STATEMENT = "TakingStatement"
    PRODUCTION_OF_RECORDS = "ProductionOfRecords"
    SEARCH_AND_SEIZURE = "SearchAndSeizure"
    TELECOMMUNICATIONS_DATA = "TelecommunicationsData"
    BANKING_RECORDS = "BankingRecords"
    SERVICE_OF_DOCUMENTS = "ServiceOfDocuments"
    EXPERT_EXAMINATION = "ExpertExamination"
    LOCATING_PERSONS = "LocatingPersons"
    OTHER = "Other"


class RequestedMeasure(Record):
    kind: MeasureKind = MeasureKind.OTHER
    description: Text
    persons: tuple[Person, ...] = ()
    phones: tuple[PhoneNumber, ...] = ()
    accounts: tuple[FinancialAccount, ...] = ()
    locations: tuple[Location, ...] = ()


class MutualLegalAssistanceRequest(Request):
    avro_name: ClassVar[str] = "op7.mla.MutualLegalAssistanceRequest"

    legal_basis: Annotated[tuple[LegalBasis, ...], Field(min_length=1)]
    offences: Annotated[tuple[Text, ...], Field(min_length=1)]
    facts: Text
    measures: Annotated[tuple[RequestedMeasure, ...], Field(min_length=1)]
    deadline: Timestamp | None = None
    confidentiality_required: bool = True

    @model_validator(mode="after")
    def _deadline_after_sending(self) -> MutualLegalAssistanceRequest:
        if self.deadline is not None and self.deadline <= self.sent_at:
            raise ValueError("deadline is not after sent_at")
        return self


class MutualLegalAssistanceResponse(Response):
    avro_name: ClassVar[str] = "op7.mla.MutualLegalAssistanceResponse"

    outcome: ResponseOutcome
    grounds: Text | None = None
    executed_measures: tuple[MeasureKind, ...] = ()
    results: tuple[EvidenceReference, ...] = ()
    notes: Text | None = None
