"""Notice-style JSON: one person per record, with the field names of INTERPOL's public notices API.

Kind: a notice is **red** when ``notice_type`` says ``"red"``, or, without ``notice_type``, when it has
``arrest_warrants`` (not null); otherwise it is **yellow** (``notice_type: "yellow"``, or neither). ``kind`` is not
read: it is reported as an unknown field like any other.

Inbound, a yellow notice (a missing person) becomes a ``KidnappingAlert`` whose victim is the person, or
``CaseInformation`` with the person as ``Victim`` when ``yellow_as = "case"``. A red notice becomes
``CaseInformation`` with the person as ``Suspect`` and one summary line per arrest warrant. Not an
``ExtraditionRequest``: that is a request from one authority to another, with a warrant reference, issuing
court and date, the legal provision of each charge and a legal basis, none of which a red notice carries;
making it one would invent facts. The case's 4x4 evaluation is the sender's judgement: the ``evaluation``
setting (e.g. ``"B2"``) is required to read red notices, or yellow ones as case information.

=====================  ==========================================  ===================================
notice field           alert (yellow)                              case information
=====================  ==========================================  ===================================
entity_id              case_id = case_prefix + entity_id           case_id = case_prefix + entity_id
forename, name         victims[0].given_names, .family_names       persons[0].person.given_names, ...
date_of_birth          victims[0].date_of_birth                    person.date_of_birth
sex_id F/M/U           victims[0].sex Female/Male/Unknown          person.sex
nationalities          victims[0].nationalities                    person.nationalities
height (metres)        victims[0].height_cm                        (lost: a person has no height)
distinguishing_marks   victims[0].distinguishing_marks             person.description
birth_name             (lost)                                      person.aliases[0] = forename + birth_name
place_of_birth         (lost)                                      person.place_of_birth
place, date_of_event,  last_seen.place, .at, .country              sightings[0]
country
arrest_warrants        (a red notice is never an alert)            summary, one line per warrant
=====================  ==========================================  ===================================

Lost, always, as :class:`~adapters.base.Loss` entries: ``weight``, ``eyes_colors_id``, ``hairs_id``,
``country_of_birth_id``, parents' names, ``_links``, ``_embedded`` (images: a shared photo reference needs the
image's digest), any unknown field, a date given as a year alone, and ``languages_spoken_ids``: the shared
``languages`` are those the message's text is written in (the ``languages`` setting, default ``en``), not those
the person speaks, for which the schema has no field; the report names the BCP 47 tag of each code it knows.
A null or blank value counts as absent. Dates are ``YYYY/MM/DD`` (the API's form) or ``YYYY-MM-DD``; a
``date_of_event`` that is a date is read as 00:00 UTC of that day. The headline or subject is made from the names
(and place).

Outbound (``render``), an alert becomes a yellow notice of its first victim. Case information becomes a red notice
of its first suspect when its summary holds arrest-warrant lines as written above, else a yellow notice of its
first victim; its first sighting gives place, date and country. Every shared field the notice cannot hold (the
envelope's handling code included) is a loss of the rendering.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import UTC, date, datetime, time
from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError

from adapters.base import (
    COMMON_SETTINGS,
    InboundAdapter,
    Loss,
    OutboundAdapter,
    Rendered,
    Translation,
    envelope_fields,
    loss,
)
from adapters.notice_codes import PERSON, SEX_OUT, VICTIM, WHY_NOT, spoken_language
from adapters.notice_reader import NoticeReader, notice_kind, parse_notice
from broker.errors import ConfigError, InputError, Problem
from broker.models import CaseInformation, Evaluation, KidnappingAlert, Message, PersonRole, new_message_id
from broker.models._types import Languages
from broker.models.inputs import validate_outgoing

__all__ = ["NoticeJsonAdapter", "spoken_language"]

DEFAULT_PREFIX = "NOTICE-"
#: A notice is a few kilobytes; a bigger input is refused before it is parsed.
DEFAULT_MAX_BYTES = 5 * 2**20
_PREFIX = re.compile(r"([A-Za-z0-9][A-Za-z0-9._:/-]{0,49})?")
_IDENTIFIER = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/-]{0,99}")
_WARRANT = re.compile(r"Arrest warrant(?: issued by ([A-Z]{2}))?(?:: (.+?))?(?: \(translation: (.+)\))?")
_LANGUAGES: TypeAdapter[tuple[str, ...]] = TypeAdapter(Languages)


def _clip(text: str, size: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= size else text[: size - 1] + "…"


def _full_name(person: Mapping[str, Any]) -> str:
    return " ".join(str(person[key]).strip() for key in ("forename", "name") if key in person) or "unnamed person"


def _remap(problem: Problem, paths: Mapping[str, str]) -> Problem:
    """A problem of the shared model told against the notice field it came from, where there is one."""
    for shared, notice in paths.items():
        if problem.path == shared or problem.path.startswith((shared + ".", shared + "[")):
            return Problem(notice + problem.path[len(shared) :], problem.message, problem.got)
    return problem


def _day_out(day: date) -> str:
    return f"{day.year:04d}/{day.month:02d}/{day.day:02d}"


def _shown(record: BaseModel, name: str) -> str:
    return json.dumps(record.model_dump(mode="json", include={name})[name], ensure_ascii=False)


def _leftovers(record: BaseModel, taken: set[str], prefix: str) -> list[Loss]:
    """A loss for each field of ``record`` outside ``taken`` that holds something."""
    lost = []
    for name, info in type(record).model_fields.items():
        value = getattr(record, name)
        if name in taken or value is None or value == () or (not info.is_required() and value == info.default):
            continue
        lost.append(
            loss(prefix + name, _shown(record, name), WHY_NOT.get(name, "the notice format has no field for it"))
        )
    return lost


def _person_out(record: BaseModel, table: Mapping[str, str], prefix: str) -> tuple[dict[str, Any], list[Loss]]:
    """A victim's or person's fields by notice name, and the losses of the rest."""
    notice: dict[str, Any] = {}
    lost: list[Loss] = []
    for key, shared in table.items():
        value = getattr(record, shared)
        if value is None or value == ():
            continue
        if shared == "sex":
            if value not in SEX_OUT:
                lost.append(loss(prefix + shared, value.value, "notices write sex as F, M or U only"))
                continue
            value = SEX_OUT[value]
        elif shared == "aliases":
            forename = getattr(record, "given_names", "") + " "
            if len(value) != 1 or not value[0].startswith(forename):
                lost.append(loss(prefix + shared, _shown(record, shared), WHY_NOT["aliases"]))
                continue
            value = value[0].removeprefix(forename)
        elif isinstance(value, date):
            value = _day_out(value)
        notice[key] = value / 100 if shared == "height_cm" else list(value) if isinstance(value, tuple) else value
    return notice, lost + _leftovers(record, set(table.values()), prefix)


class NoticeJsonAdapter(InboundAdapter[Message], OutboundAdapter):
    """Notice-style JSON (INTERPOL public notices API field names), both ways; see the module's documentation.

    Settings, besides ``issuer``, ``tlp``, ``restrictions`` and ``status``: ``yellow_as`` (``"alert"``, the
    default, or ``"case"``; a model given by name decides it too), ``case_prefix`` (put before ``entity_id`` to
    make the case id, default ``NOTICE-``), ``languages`` (BCP 47 tags of the notice's text, default ``["en"]``),
    ``evaluation`` (``"B2"`` or ``{source, accuracy}``: required to read case information) and ``max_bytes``
    (default 5 MiB).
    """

    name = "notice"
    summary = "notice-style JSON (INTERPOL notices API fields): yellow -> alert or case information, red -> case"
    message_types = (KidnappingAlert.avro_name, CaseInformation.avro_name)
    setting_names = (*COMMON_SETTINGS, "case_prefix", "yellow_as", "languages", "evaluation", "max_bytes")

    def __init__(self, model: type[Message] | None = None, /, settings: Mapping[str, Any] | None = None) -> None:
        super().__init__(model, settings)
        if model not in (None, KidnappingAlert, CaseInformation):
            raise ConfigError(f"adapter 'notice' reads KidnappingAlert or CaseInformation, not {model.avro_name}")
        self.yellow_as = self.settings.get("yellow_as", "case" if model is CaseInformation else "alert")
        if self.yellow_as not in ("alert", "case"):
            raise ConfigError(f"adapter 'notice': yellow_as is 'alert' or 'case', not {self.yellow_as!r}")
        if model is not None and (model is CaseInformation) != (self.yellow_as == "case"):
            raise ConfigError(f"adapter 'notice': yellow_as = {self.yellow_as!r} contradicts {model.__name__}")
        self.case_prefix = self.settings.get("case_prefix", DEFAULT_PREFIX)
        if not isinstance(self.case_prefix, str) or not _PREFIX.fullmatch(self.case_prefix):
            raise ConfigError(
                "adapter 'notice': case_prefix is up to 50 letters, digits and . _ : / - (starting with a letter "
                f"or digit), not {self.case_prefix!r}"
            )
        self.max_bytes = self.settings.get("max_bytes", DEFAULT_MAX_BYTES)
        if isinstance(self.max_bytes, bool) or not isinstance(self.max_bytes, int) or self.max_bytes < 1:
            raise ConfigError(f"adapter 'notice': max_bytes is a positive number of bytes, not {self.max_bytes!r}")
        try:
            self.languages = list(_LANGUAGES.validate_python(tuple(self.settings.get("languages", ["en"]))))
            evaluation = self.settings.get("evaluation")
            if isinstance(evaluation, str):
                evaluation = {"source": evaluation[:1], "accuracy": evaluation[1:]}
            self.evaluation = None if evaluation is None else Evaluation.model_validate(evaluation)
        except (ValidationError, TypeError) as exc:
            raise ConfigError(f"adapter 'notice': languages or evaluation: {exc}") from None

    def translate(self, data: bytes, source: str, *, now: datetime) -> Translation[Message]:
        envelope = envelope_fields(self.settings, self.name)
        if len(data) > self.max_bytes:
            raise InputError(source, [Problem("", f"{len(data)} bytes: larger than max_bytes ({self.max_bytes})")])
        reader = NoticeReader(parse_notice(data, source), now)
        kind = notice_kind(reader)
        if kind == "red" and self.model is KidnappingAlert:
            reader.problem("arrest_warrants", "a red notice reads as CaseInformation, not as a KidnappingAlert")
            raise InputError(source, reader.problems)
        entity = reader.text(reader.doc.get("entity_id"), "entity_id")
        case_id = None if entity is None else self.case_prefix + entity.strip()
        if case_id is None and "entity_id" not in reader.bad:
            reader.problem("entity_id", "required: it makes the case id")
        elif case_id is not None and not _IDENTIFIER.fullmatch(case_id):
            reader.problem("entity_id", "does not make a case id: letters, digits and . _ : / -, 100 at most", entity)
        person, event = reader.person(), reader.event()
        if kind == "yellow" and self.yellow_as == "alert":
            model: type[Message] = KidnappingAlert
            body, paths = self._alert(person, event, case_id, now)
            reader.leftovers(set(VICTIM))
        else:
            model = CaseInformation
            body, paths = self._case(kind, person, event, case_id, reader.warrants())
            reader.leftovers(set(PERSON))
        try:
            message = validate_outgoing(model, {**envelope, **body}, source, now=now)
        except InputError as exc:
            mapped = [_remap(problem, paths) for problem in exc.problems]
            reader.problems += [p for p in mapped if re.split(r"[.\[]", p.path, maxsplit=1)[0] not in reader.bad]
        if reader.problems:
            raise InputError(source, reader.problems)
        return Translation(message, source, tuple(reader.lost))

    def _alert(
        self, person: dict[str, Any], event: dict[str, Any] | None, case_id: str | None, now: datetime
    ) -> tuple[dict[str, Any], dict[str, str]]:
        where = f", last seen in {event['place'].strip()} ({event['country'].strip()})" if event else ""
        body: dict[str, Any] = {
            "alert_id": new_message_id(now),
            "case_id": case_id,
            "msg_type": "Alert",
            "headline": _clip(f"Missing: {_full_name(person)}{where}", 200),
            "languages": self.languages,
            "victims": [{VICTIM[key]: value for key, value in person.items() if key in VICTIM}],
        }
        paths = {"case_id": "entity_id", **{f"victims[0].{shared}": key for key, shared in VICTIM.items()}}
        if event:
            body["last_seen"] = {"at": event["date_of_event"], "place": event["place"], "country": event["country"]}
            paths |= {"last_seen.at": "date_of_event", "last_seen.place": "place", "last_seen.country": "country"}
        return body, paths

    def _case(
        self, kind: str, person: dict[str, Any], event: dict[str, Any] | None, case_id: str | None, lines: list[str]
    ) -> tuple[dict[str, Any], dict[str, str]]:
        entity = "" if case_id is None else case_id.removeprefix(self.case_prefix)
        if self.evaluation is None:
            raise ConfigError(
                "adapter 'notice': set evaluation (the 4x4 code of what a notice says, e.g. \"B2\") to read a red "
                "notice, or a yellow one with yellow_as = 'case'"
            )
        entry = {PERSON[key]: value for key, value in person.items() if key in PERSON}
        if "aliases" in entry:
            entry["aliases"] = [" ".join(str(person.get("forename", "")).split() + entry["aliases"].split())]
        role = PersonRole.SUSPECT if kind == "red" else PersonRole.VICTIM
        label = "Wanted" if kind == "red" else "Missing person"
        body: dict[str, Any] = {
            "case_id": case_id,
            "subject": _clip(f"{label}: {_full_name(person)} ({kind} notice {entity})", 200),
            "summary": "\n".join(lines) or None,
            "languages": self.languages,
            "evaluation": self.evaluation.model_dump(),
            "persons": [{"person": entry, "role": role.value}],
        }
        paths = {"case_id": "entity_id", "summary": "arrest_warrants", "persons[0].person.aliases[0]": "birth_name"}
        paths |= {f"persons[0].person.{shared}": key for key, shared in PERSON.items()}
        if event:
            body["sightings"] = [
                {
                    "at": event["date_of_event"],
                    "location": {"description": event["place"], "country": event["country"]},
                    "description": _clip(f"{_full_name(person)} last seen", 200),
                }
            ]
            paths |= {"sightings[0].at": "date_of_event", "sightings[0].location.description": "place"}
            paths |= {"sightings[0].location.country": "country"}
        return body, paths

    def render(self, message: Message, *, message_id: str, sender: str) -> Rendered:
        if isinstance(message, KidnappingAlert):
            notice, lost = self._render_alert(message)
        elif isinstance(message, CaseInformation):
            notice, lost = self._render_case(message)
        else:
            raise ConfigError(
                f"adapter 'notice': {message.avro_name} has no notice form (it renders KidnappingAlert and "
                "CaseInformation)"
            )
        data = json.dumps(notice, indent=2, ensure_ascii=False).encode() + b"\n"
        return Rendered(data, "application/json", ".json", tuple(lost))

    def _entity(self, case_id: str) -> str:
        return case_id.removeprefix(self.case_prefix) if self.case_prefix else case_id

    def _render_alert(self, alert: KidnappingAlert) -> tuple[dict[str, Any], list[Loss]]:
        notice: dict[str, Any] = {"notice_type": "yellow", "entity_id": self._entity(alert.case_id)}
        lost: list[Loss] = []
        if alert.msg_type.value != "Alert":
            why = "a notice has no lifecycle: this notice stands for an alert's " + alert.msg_type.value
            lost.append(loss("msg_type", alert.msg_type.value, why))
        for i, victim in enumerate(alert.victims):
            if i == 0:
                fields, victim_lost = _person_out(victim, VICTIM, "victims[0].")
                notice |= fields
                lost += victim_lost
            else:
                lost.append(loss(f"victims[{i}]", victim.model_dump_json(), "a notice describes one person"))
        if alert.last_seen is not None:
            seen = alert.last_seen
            notice |= {"place": seen.place, "date_of_event": _day_out(seen.at.date()), "country": seen.country}
            if seen.at.timetz() != time(tzinfo=UTC):
                lost.append(loss("last_seen.at", seen.at.isoformat(), "a notice's date_of_event has no time of day"))
            lost += _leftovers(seen, {"at", "place", "country"}, "last_seen.")
        return notice, lost + _leftovers(alert, {"case_id", "msg_type", "victims", "last_seen"}, "")

    def _render_case(self, info: CaseInformation) -> tuple[dict[str, Any], list[Loss]]:
        warrants, other = [], []
        for line in (info.summary or "").splitlines():
            match = _WARRANT.fullmatch(line.strip())
            if match is None:
                other.append(line)
                continue
            keys = ("issuing_country_id", "charge", "charge_translation")
            warrants.append({key: value for key, value in zip(keys, match.groups(), strict=True) if value})
        lost = [loss("summary", "\n".join(other), "a notice has no free-text summary")] if "".join(other) else []
        red = bool(warrants)
        role = PersonRole.SUSPECT if red else PersonRole.VICTIM
        notice: dict[str, Any] = {"notice_type": "red" if red else "yellow", "entity_id": self._entity(info.case_id)}
        chosen = next((i for i, entry in enumerate(info.persons) if entry.role is role), None)
        for i, entry in enumerate(info.persons):
            if i != chosen:
                lost.append(loss(f"persons[{i}]", entry.model_dump_json(), "a notice describes one person"))
                continue
            fields, person_lost = _person_out(entry.person, PERSON, f"persons[{i}].person.")
            notice |= fields
            lost += person_lost + _leftovers(entry, {"person", "role"}, f"persons[{i}].")
        for i, sighting in enumerate(info.sightings):
            if i > 0:
                lost.append(loss(f"sightings[{i}]", sighting.model_dump_json(), "a notice has one place of event"))
                continue
            where = sighting.location
            notice |= {"place": where.description, "date_of_event": _day_out(sighting.at.date())}
            notice["country"] = where.country
            if sighting.at.timetz() != time(tzinfo=UTC):
                lost.append(loss("sightings[0].at", sighting.at.isoformat(), "a notice's date_of_event is a date"))
            if not sighting.description.endswith(" last seen"):
                lost.append(loss("sightings[0].description", sighting.description, "a notice has no such text"))
            lost += _leftovers(sighting, {"at", "location", "description"}, "sightings[0].")
            lost += _leftovers(where, {"description", "country"}, "sightings[0].location.")
        if warrants:
            notice["arrest_warrants"] = warrants
        return notice, lost + _leftovers(info, {"case_id", "summary", "persons", "sightings"}, "")
