"""``op7.report.NationalReport``: a State's figures and measures, for the Secretary-General."""

from __future__ import annotations

from typing import ClassVar

from pydantic import model_validator

from broker.models._types import Count, Country, Day, Languages, Name, Record, Text
from broker.models.common import Contact, Money
from broker.models.message import ID, Message


class KidnappingFigures(Record):
    cases_reported: Count
    victims: Count
    victims_released: Count = 0
    victims_rescued: Count = 0
    victims_escaped: Count = 0
    victims_deceased: Count = 0
    victims_still_held: Count = 0
    cases_with_ransom_demand: Count = 0
    ransom_paid: tuple[Money, ...] = ()
    suspects_arrested: Count = 0
    prosecutions: Count = 0
    convictions: Count = 0

    @model_validator(mode="after")
    def _consistent(self) -> KidnappingFigures:
        outcomes = (
            self.victims_released
            + self.victims_rescued
            + self.victims_escaped
            + self.victims_deceased
            + self.victims_still_held
        )
        if outcomes > self.victims:
            raise ValueError(f"victim outcomes add up to {outcomes}, more than the {self.victims} victims")
        if self.cases_with_ransom_demand > self.cases_reported:
            raise ValueError("more cases with a ransom demand than cases reported")
        if len({m.currency for m in self.ransom_paid}) != len(self.ransom_paid):
            raise ValueError("ransom_paid lists each currency once")
        return self


class Legislation(Record):
    title: Name
    reference: Name
    in_force_since: Day | None = None


class SpecialUnit(Record):
    name: Name
    agency: Name
    contact: Contact | None = None


class NationalReport(Message):
    avro_name: ClassVar[str] = "op7.report.NationalReport"

    report_id: ID
    country: Country
    period_start: Day
    period_end: Day
    figures: KidnappingFigures
    legislation: tuple[Legislation, ...] = ()
    special_units: tuple[SpecialUnit, ...] = ()
    victim_support_measures: Text | None = None
    civil_society_cooperation: Text | None = None
    notes: Text | None = None
    languages: Languages

    @model_validator(mode="after")
    def _period(self) -> NationalReport:
        if self.period_end < self.period_start:
            raise ValueError("period_end is before period_start")
        if self.country != self.issuer.node[:2]:
            raise ValueError(f"a report on {self.country} is issued by a node of {self.country}")
        return self
