"""A notice-style JSON document read for :mod:`adapters.notice_json`: parsed (:func:`parse_notice`), its kind told
(:func:`notice_kind`), and its fields read one by one (:class:`NoticeReader`): names, dates, heights, sex codes,
the place of the event, arrest warrants, and the losses of what is not carried.
"""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, date, datetime, time
from typing import Any

from adapters.base import Loss, loss
from adapters.notice_codes import CONSUMED, EVENT, SEX_IN, TEXT_FIELDS, WHY_LOST, spoken_language
from broker.errors import InputError, Problem
from broker.models import Sex
from broker.models._iso import COUNTRY_CODES

__all__ = ["NoticeReader", "notice_kind", "parse_notice"]

_DATE = re.compile(r"([0-9]{4})([/-])([0-9]{2})\2([0-9]{2})")
_YEAR = re.compile(r"[0-9]{4}")
_SURROGATE = re.compile("[\ud800-\udfff]")


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


def parse_notice(data: bytes, source: str) -> dict[str, Any]:
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


class NoticeReader:
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
        if text.strip().upper() not in SEX_IN:
            self.problem("sex_id", "expected F, M or U", text)
            return None
        return SEX_IN[text.strip().upper()]

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
        found.update({key: self.text(self.doc.get(key), key) for key in TEXT_FIELDS})
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
        if not any(key in self.bad for key in EVENT):
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
            if key in taken or key in CONSUMED or value is None or key in self.bad | self.reported:
                continue
            self.lose(key, value, WHY_LOST.get(key, "not a notice field this adapter knows"))


def notice_kind(reader: NoticeReader) -> str:
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
