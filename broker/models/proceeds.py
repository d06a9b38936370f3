"""``op7.proceeds``: tracing, detection, freezing and confiscation of the proceeds of kidnapping."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, ClassVar

from pydantic import Field, model_validator

from broker.models._types import Country, Name, Record, Text
from broker.models.common import FinancialAccount, LegalBasis, Money, ResponseOutcome
from broker.models.message import Request, Response


class ProceedsMeasure(StrEnum):
    TRACING = "Tracing"
    DETECTION = "Detection"
    FREEZING = "Freezing"
    CONFISCATION = "Confiscation"


class AssetKind(StrEnum):
    BANK_ACCOUNT = "BankAccount"
    CRYPTO_ASSET = "CryptoAsset"
    REAL_ESTATE = "RealEstate"
    VEHICLE = "Vehicle"
    CASH = "Cash"
    SECURITIES = "Securities"
    OTHER = "Other"


class Asset(Record):
    asset_id: Name
    kind: AssetKind = AssetKind.OTHER
    description: Text
    account: FinancialAccount | None = None
    country: Country | None = None
    estimated_value: Money | None = None


class ProceedsRequest(Request):
    avro_name: ClassVar[str] = "op7.proceeds.ProceedsRequest"

    measure: ProceedsMeasure
    assets: Annotated[tuple[Asset, ...], Field(min_length=1)]
    court_order: Name | None = None
    legal_basis: Annotated[tuple[LegalBasis, ...], Field(min_length=1)]
    facts: Text

    @model_validator(mode="after")
    def _order_for_coercive_measures(self) -> ProceedsRequest:
        if self.measure in (ProceedsMeasure.FREEZING, ProceedsMeasure.CONFISCATION) and not self.court_order:
            raise ValueError(f"{self.measure.value} needs the court_order to be executed")
        if len({a.asset_id for a in self.assets}) != len(self.assets):
            raise ValueError("asset_id values must be unique within a request")
        return self


class AssetResultKind(StrEnum):
    LOCATED = "Located"
    NOT_FOUND = "NotFound"
    FROZEN = "Frozen"
    CONFISCATED = "Confiscated"
    RELEASED = "Released"


class AssetResult(Record):
    asset_id: Name
    result: AssetResultKind
    amount: Money | None = None
    note: Text | None = None


class ProceedsResponse(Response):
    avro_name: ClassVar[str] = "op7.proceeds.ProceedsResponse"

    outcome: ResponseOutcome
    grounds: Text | None = None
    assets: tuple[AssetResult, ...] = ()
