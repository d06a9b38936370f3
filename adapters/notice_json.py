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
import math
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
from broker.errors import ConfigError, InputError, Problem
from broker.models import CaseInformation, Evaluation, KidnappingAlert, Message, PersonRole, Sex, new_message_id
from broker.models._iso import COUNTRY_CODES
from broker.models._types import Languages
from broker.models.inputs import validate_outgoing

__all__ = ["NoticeJsonAdapter", "spoken_language"]

DEFAULT_PREFIX = "NOTICE-"
#: A notice is a few kilobytes; a bigger input is refused before it is parsed.
DEFAULT_MAX_BYTES = 5 * 2**20
_PREFIX = re.compile(r"([A-Za-z0-9][A-Za-z0-9._:/-]{0,49})?")
_IDENTIFIER = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/-]{0,99}")
_DATE = re.compile(r"([0-9]{4})([/-])([0-9]{2})\2([0-9]{2})")
_YEAR = re.compile(r"[0-9]{4}")
_SURROGATE = re.compile("[\ud800-\udfff]")
_WARRANT = re.compile(r"Arrest warrant(?: issued by ([A-Z]{2}))?(?:: (.+?))?(?: \(translation: (.+)\))?")
_LANGUAGES: TypeAdapter[tuple[str, ...]] = TypeAdapter(Languages)

_SEX_IN = {"F": Sex.FEMALE, "M": Sex.MALE, "U": Sex.UNKNOWN}
_SEX_OUT = {v: k for k, v in _SEX_IN.items()}

# ISO 639-2 (bibliographic and terminology) codes as the notices API writes them, and their ISO 639-1 tags.
_ISO639 = (
    "AFR af|AKA ak|ALB SQI sq|AMH am|ARA ar|ARM HYE hy|ASM as|AZE az|BAM bm|BAQ EUS eu|BEL be|BEN bn|BOS bs|"
    "BUL bg|BUR MYA my|CAT ca|CHI ZHO zh|CZE CES cs|DAN da|DUT NLD nl|ENG en|EST et|EWE ee|FIN fi|FRE FRA fr|"
    "FUL ff|GEO KAT ka|GER DEU de|GLE ga|GLG gl|GRE ELL el|GUJ gu|HAT ht|HAU ha|HEB he|HIN hi|HRV hr|HUN hu|"
    "IBO ig|ICE ISL is|IND id|ITA it|JAV jv|JPN ja|KAN kn|KAZ kk|KHM km|KIN rw|KIR ky|KON kg|KOR ko|KUR ku|"
    "LAO lo|LAV lv|LIN ln|LIT lt|LTZ lb|LUG lg|MAC MKD mk|MAL ml|MAR mr|MAY MSA ms|MLG mg|MLT mt|MON mn|NEP ne|"
    "NOR no|NYA ny|ORI or|ORM om|PAN pa|PER FAS fa|POL pl|POR pt|PUS ps|RUM RON ro|RUS ru|SIN si|SLO SLK sk|"
    "SLV sl|SND sd|SNA sn|SOM so|SOT st|SPA es|SRP sr|SUN su|SWA sw|SWE sv|TAM ta|TEL te|TGK tg|TGL tl|THA th|"
    "TIR ti|TSN tn|TUK tk|TUR tr|TWI tw|UKR uk|URD ur|UZB uz|VIE vi|WEL CYM cy|WOL wo|XHO xh|YOR yo|ZUL zu"
)
_SPOKEN = {code: entry.split()[-1] for entry in _ISO639.split("|") for code in entry.split()[:-1]}

_PERSON_FIELDS = ("forename", "name", "birth_name", "date_of_birth", "sex_id", "nationalities", "height")
_TEXT_FIELDS = ("distinguishing_marks", "place_of_birth")
_EVENT = ("place", "date_of_event", "country")
_VICTIM = {
    "forename": "given_names",
    "name": "family_names",
    "date_of_birth": "date_of_birth",
    "sex_id": "sex",
    "nationalities": "nationalities",
    "height": "height_cm",
    "distinguishing_marks": "distinguishing_marks",
}
_PERSON = {
    "forename": "given_names",
    "name": "family_names",
    "birth_name": "aliases",
    "date_of_birth": "date_of_birth",
    "sex_id": "sex",
    "nationalities": "nationalities",
    "place_of_birth": "place_of_birth",
    "distinguishing_marks": "description",
}
_WHY_LOST = {
    "weight": "the shared schema has no weight",
    "eyes_colors_id": "the shared schema has no eye colour",
    "hairs_id": "the shared schema has no hair colour",
    "country_of_birth_id": "the shared schema has no country of birth",
    "father_forename": "the shared schema has no parents' names",
    "mother_forename": "the shared schema has no parents' names",
    "mother_name": "the shared schema has no parents' names",
    "_links": "links into the notices API are not carried",
    "_embedded": "images are not carried: a shared photo reference needs the image's SHA-256 digest",
    "birth_name": "a victim in an alert has no other names",
    "place_of_birth": "a victim in an alert has no place of birth",
    "height": "a person in case information has no height",
}
_READ = {*_PERSON_FIELDS, *_TEXT_FIELDS, *_EVENT, "entity_id", "notice_type", "arrest_warrants", "languages_spoken_ids"}
#: Fields read and either carried or reported where they are read.
_CONSUMED = _READ - set(_WHY_LOST)


def spoken_language(code: str) -> str | None:
    """The BCP 47 tag of an ISO 639-2 code as the notices API writes it (``"FRE"`` -> ``"fr"``), if known."""
    return _SPOKEN.get(code.upper())


def _safe(value: object) -> str:
    """``value`` as printable text (JSON unless text): lone surrogates escaped; what cannot be written, named."""
    try:
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    except (RecursionError, ValueError):  # nested deeper than the encoder goes, or an integer too long to write
        return f"<{type(value).__name__} too large or deeply nested to show>"
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _got(value: object) -> str:
    text = json.dumps(_safe(value[:80]), ensure_ascii=False) if isinstance(value, str) else _safe(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _clip(text: str, size: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= size else text[: size - 1] + "…"


def _parse(data: bytes, source: str) -> dict[str, Any]:
    """The notice as a JSON object, or one :class:`InputError` saying why it is not one."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(source, [Problem("", f"not UTF-8 text (byte {exc.start}: 0x{data[exc.start]:02x})")]) from None
    try:
        document: Any = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(
            source, [Problem(f"line {exc.lineno} column {exc.colno}", f"invalid JSON: {exc.msg}")]
        ) from None
    except RecursionError:
        raise InputError(source, [Problem("", "invalid JSON: nested too deeply")]) from None
    except ValueError as exc:  # an integer of thousands of digits
        raise InputError(source, [Problem("", f"invalid JSON: {exc}")]) from None
    if not isinstance(document, dict):
        raise InputError(source, [Problem("", "expected a JSON object (one notice)", type(document).__name__)])
    return document


class _Reader:
    """A notice's fields read one by one: values converted, problems and losses collected, nothing raised."""

    def __init__(self, doc: dict[str, Any], now: datetime) -> None:
        self.doc = doc
        self.now = now
        self.problems: list[Problem] = []
        self.lost: list[Loss] = []
        self.bad: set[str] = set()
        self.reported: set[str] = set()

    def problem(self, path: str, message: str, value: object = None) -> None:
        self.bad.add(re.split(r"[.\[]", path, maxsplit=1)[0])
        self.problems.append(Problem(path, message, None if value is None else _got(value)))

    def lose(self, path: str, value: object, reason: str) -> None:
        self.reported.add(re.split(r"[.\[]", path, maxsplit=1)[0])
        self.lost.append(loss(_safe(path), _safe(value), reason))

    def text(self, value: object, path: str) -> str | None:
        """Text, or None when absent or blank."""
        if value is None:
            return None
        if not isinstance(value, str):
            self.problem(path, "expected text", value)
            return None
        if _SURROGATE.search(value):
            self.problem(path, "not valid Unicode text (a lone surrogate escape)")
            return None
        return value if value.strip() else None

    def texts(self, key: str) -> list[str] | None:
        value = self.doc.get(key)
        if value is None:
            return None
        if not isinstance(value, list):
            self.problem(key, "expected a list of codes", value)
            return None
        items = [self.text(item, f"{key}[{i}]") for i, item in enumerate(value)]
        return [item for item in items if item is not None]

    def day(self, key: str) -> date | None:
        """A date written ``YYYY/MM/DD`` (as the API does) or ``YYYY-MM-DD``, not after today."""
        text = self.text(self.doc.get(key), key)
        if text is None:
            return None
        match = _DATE.fullmatch(text.strip())
        if match is None:
            if _YEAR.fullmatch(text.strip()):
                self.lose(key, text, "a year alone is not a date, and the shared schema has full dates only")
            else:
                self.problem(key, "expected a date YYYY/MM/DD or YYYY-MM-DD", text)
            return None
        try:
            day = date(int(match[1]), int(match[3]), int(match[4]))
        except ValueError as exc:
            self.problem(key, f"not a date: {exc}", text)
            return None
        if day > self.now.date():
            self.problem(key, "is in the future", text)
            return None
        return day

    def moment(self, key: str) -> datetime | None:
        """``date_of_event``: a date (read as 00:00 UTC of that day) or an ISO 8601 time with its zone."""
        text = self.text(self.doc.get(key), key)
        if text is None:
            return None
        if _DATE.fullmatch(text.strip()) or _YEAR.fullmatch(text.strip()):
            day = self.day(key)
            return None if day is None else datetime.combine(day, time(), UTC)
        try:
            when = datetime.fromisoformat(text.strip())
        except ValueError:
            when = None
        if when is None or when.tzinfo is None:
            self.problem(key, "expected a date YYYY/MM/DD, or a time in ISO 8601 with its zone", text)
            return None
        if when > self.now:
            self.problem(key, "is in the future", text)
            return None
        return when

    def height(self) -> int | None:
        value = self.doc.get("height")
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            self.problem("height", "expected a number of metres (e.g. 1.21)", value)
            return None
        if value == 0:
            self.lose("height", value, "0 stands for unknown in notices")
            return None
        if not 0.3 <= value <= 2.6:
            self.problem("height", "expected a height in metres between 0.30 and 2.60", value)
            return None
        return round(value * 100)

    def sex(self) -> Sex | None:
        text = self.text(self.doc.get("sex_id"), "sex_id")
        if text is None:
            return None
        if text.strip().upper() not in _SEX_IN:
            self.problem("sex_id", "expected F, M or U", text)
            return None
        return _SEX_IN[text.strip().upper()]

    def person(self) -> dict[str, Any]:
        """The person's fields that were read, by notice name."""
        found: dict[str, Any] = {
            "forename": self.text(self.doc.get("forename"), "forename"),
            "name": self.text(self.doc.get("name"), "name"),
            "birth_name": self.text(self.doc.get("birth_name"), "birth_name"),
            "date_of_birth": self.day("date_of_birth"),
            "sex_id": self.sex(),
            "nationalities": self.texts("nationalities"),
            "height": self.height(),
        }
        found.update({key: self.text(self.doc.get(key), key) for key in _TEXT_FIELDS})
        return {key: value for key, value in found.items() if value is not None}

    def event(self) -> dict[str, Any] | None:
        """Place, time and country of the disappearance: all three, or None with the ones given reported lost."""
        found = {
            "place": self.text(self.doc.get("place"), "place"),
            "date_of_event": self.moment("date_of_event"),
            "country": self.text(self.doc.get("country"), "country"),
        }
        if all(value is not None for value in found.values()):
            return found
        if not any(key in self.bad for key in _EVENT):
            missing = ", ".join(key for key, value in found.items() if value is None)
            for key, value in found.items():
                if value is not None:
                    self.lose(
                        key, self.doc[key], f"last seen needs place, date_of_event and country ({missing} missing)"
                    )
        return None

    def warrants(self) -> list[str]:
        """One summary line per arrest warrant."""
        value = self.doc.get("arrest_warrants")
        if value is None:
            return []
        if not isinstance(value, list):
            self.problem("arrest_warrants", "expected a list of arrest warrants", value)
            return []
        lines = []
        for i, item in enumerate(value):
            path = f"arrest_warrants[{i}]"
            if not isinstance(item, dict):
                self.problem(path, "expected an object with charge and issuing_country_id", item)
                continue
            country = self.text(item.get("issuing_country_id"), f"{path}.issuing_country_id")
            if country is not None and country.strip() not in COUNTRY_CODES:
                self.problem(f"{path}.issuing_country_id", "not an ISO 3166-1 alpha-2 country code", country)
            charge = self.text(item.get("charge"), f"{path}.charge")
            translation = self.text(item.get("charge_translation"), f"{path}.charge_translation")
            for key in sorted(set(item) - {"issuing_country_id", "charge", "charge_translation"}):
                self.lose(f"{path}.{key}", item[key], "not an arrest-warrant field this adapter knows")
            line = "Arrest warrant" + (f" issued by {country.strip()}" if country else "")
            line += (f": {' '.join(charge.split())}" if charge else "") + (
                f" (translation: {' '.join(translation.split())})" if translation else ""
            )
            lines.append(line)
        return lines

    def leftovers(self, taken: set[str]) -> None:
        """Report every field not carried: known ones with their reason, spoken languages, unknown ones."""
        for i, code in enumerate(self.texts("languages_spoken_ids") or []):
            tag = spoken_language(code.strip())
            why = f"speaks {tag}: " if tag else "no BCP 47 tag known for this code; "
            self.lose(f"languages_spoken_ids[{i}]", code, why + "the shared schema has no spoken languages")
        for key, value in self.doc.items():
            if key in taken or key in _CONSUMED or value is None or key in self.bad | self.reported:
                continue
            self.lose(key, value, _WHY_LOST.get(key, "not a notice field this adapter knows"))


def _kind(reader: _Reader) -> str:
    """``red`` or ``yellow``: ``notice_type`` when given, else red when there are arrest warrants."""
    warrants = reader.doc.get("arrest_warrants") is not None
    declared = reader.text(reader.doc.get("notice_type"), "notice_type")
    if declared is None:
        return "red" if warrants else "yellow"
    kind = declared.strip().lower()
    if kind not in ("red", "yellow"):
        reader.problem("notice_type", "expected red or yellow", declared)
        return "red" if warrants else "yellow"
    if kind == "yellow" and warrants:
        reader.problem("arrest_warrants", "a yellow notice has no arrest warrants (notice_type is yellow)")
    return kind


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


#: Why a shared field has no place in a notice (outbound); any other: "the notice format has no field for it".
_WHY_NOT = {
    "status": "a notice has no status: mind an Exercise or Test message",
    "sent_at": "a notice has no time of sending",
    "handling": "a notice has no handling code: keep the message's TLP and restrictions with the file",
    "issuer": "a notice does not name the authority that sent it",
    "alert_id": "a notice has no message identifier (its entity_id is the case id)",
    "info_id": "a notice has no message identifier (its entity_id is the case id)",
    "evaluation": "a notice has no 4x4 evaluation",
    "languages": "a notice does not say the language of its text",
    "headline": "a notice has no headline",
    "subject": "a notice has no subject line",
    "description": "a notice has no free-text description",
    "suspects": "a notice describes one person",
    "vehicles": "a notice has no vehicles",
    "clothing": "a notice has no clothing",
    "photo": "a notice links its images, it does not carry a reference and digest",
    "aliases": "a notice has one birth name, not aliases",
    "position": "a notice has no coordinates",
}


def _leftovers(record: BaseModel, taken: set[str], prefix: str) -> list[Loss]:
    """A loss for each field of ``record`` outside ``taken`` that holds something."""
    lost = []
    for name, info in type(record).model_fields.items():
        value = getattr(record, name)
        if name in taken or value is None or value == () or (not info.is_required() and value == info.default):
            continue
        lost.append(
            loss(prefix + name, _shown(record, name), _WHY_NOT.get(name, "the notice format has no field for it"))
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
            if value not in _SEX_OUT:
                lost.append(loss(prefix + shared, value.value, "notices write sex as F, M or U only"))
                continue
            value = _SEX_OUT[value]
        elif shared == "aliases":
            forename = getattr(record, "given_names", "") + " "
            if len(value) != 1 or not value[0].startswith(forename):
                lost.append(loss(prefix + shared, _shown(record, shared), _WHY_NOT["aliases"]))
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
        reader = _Reader(_parse(data, source), now)
        kind = _kind(reader)
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
            reader.leftovers(set(_VICTIM))
        else:
            model = CaseInformation
            body, paths = self._case(kind, person, event, case_id, reader.warrants())
            reader.leftovers(set(_PERSON))
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
            "victims": [{_VICTIM[key]: value for key, value in person.items() if key in _VICTIM}],
        }
        paths = {"case_id": "entity_id", **{f"victims[0].{shared}": key for key, shared in _VICTIM.items()}}
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
        entry = {_PERSON[key]: value for key, value in person.items() if key in _PERSON}
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
        paths |= {f"persons[0].person.{shared}": key for key, shared in _PERSON.items()}
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
                fields, victim_lost = _person_out(victim, _VICTIM, "victims[0].")
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
            fields, person_lost = _person_out(entry.person, _PERSON, f"persons[{i}].person.")
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
