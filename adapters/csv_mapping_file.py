"""The mapping file of the CSV adapter (:mod:`adapters.csv_mapping` documents it), read and checked whole.

:func:`load_mapping` checks the keys, the field paths against the shared model, codes and constants against its
types, date formats, the time zone and the required fields nothing feeds: one :class:`ConfigError` lists every
problem, as ``FILE: KEY: what``. The result is a :class:`CsvMapping` of :class:`Column` entries.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path
from typing import Any, cast
from zoneinfo import ZoneInfo

from pydantic import TypeAdapter, ValidationError

from adapters.model_paths import (
    Leaf,
    Step,
    annotation_at,
    bare_type,
    leaf_at,
    overlap,
    parse_path,
    path_text,
    record_type,
)
from broker.errors import ConfigError
from broker.models import MESSAGE_MODELS, Message, message_model
from broker.models.inputs import problems_from

__all__ = ["Column", "CsvMapping", "load_mapping"]

_TOP_KEYS = {"message_type", "delimiter", "encoding", "timezone", "constants", "columns"}
_COLUMN_KEYS = {"to", "values", "date_format", "split", "ignore"}
#: Fed by the adapter's settings (issuer, handling, status) or the time of sending, not by the export.
_ENVELOPE = {"status", "sent_at", "handling", "issuer"}
#: Relative times in constants are checked against some instant; which one does not matter.
_CHECKING = {"now": datetime(2000, 1, 1, tzinfo=UTC)}
_SAMPLE = datetime(2025, 12, 31, 14, 5, 9, tzinfo=UTC)


@dataclass(frozen=True)
class Column:
    """One column of the export: the shared field it feeds and how its cells are written, or why it is left out."""

    name: str
    to: str = ""
    steps: tuple[Step, ...] = ()
    leaf: Leaf | None = None
    values: Mapping[str, Any] = field(default_factory=dict)
    #: JSON of a shared value -> its (first) local code, for writing.
    codes: Mapping[str, str] = field(default_factory=dict)
    date_format: str | None = None
    example: str = ""
    split: str | None = None
    ignore: str = ""


@dataclass(frozen=True)
class CsvMapping:
    """A checked mapping file."""

    file: str
    model: type[Message]
    delimiter: str
    encoding: str
    zone: ZoneInfo | None
    constants: Mapping[str, Any]
    #: JSON of each constant's shared value, to recognise it in a received message.
    constant_json: Mapping[str, str]
    columns: tuple[Column, ...]


def load_mapping(path: Path, model: type[Message] | None = None) -> CsvMapping:
    """Read and check a mapping file; one :class:`ConfigError` lists every problem (``FILE: KEY: what``)."""
    file = str(path)
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{file}: cannot read the mapping file: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{file}: not a TOML file: {exc}") from None
    problems: list[str] = [
        f"{k}: unknown key (known: {', '.join(sorted(_TOP_KEYS))})" for k in sorted(document.keys() - _TOP_KEYS)
    ]
    model = _model_of(document.get("message_type"), model, problems)
    delimiter = _text_setting(document, "delimiter", ",", problems)
    if len(delimiter) != 1 or delimiter in "\r\n\"'":
        problems.append(f"delimiter: one character other than a quote or line break, not {delimiter!r}")
    encoding = _encoding(_text_setting(document, "encoding", "utf-8", problems), problems)
    zone = _zone(document.get("timezone"), problems)
    constants: dict[str, Any] = {}
    constant_json: dict[str, str] = {}
    columns: tuple[Column, ...] = ()
    if model is not None:
        constants, constant_json = _constants(model, document.get("constants", {}), problems)
        columns = _columns(model, document.get("columns"), problems)
        # A faulty column still feeds its field: one problem about it, not a second one about the field.
        targets = [spec.get("to") for spec in _tables(document.get("columns"))]
        targets += [path for path, _ in _flatten(document.get("constants"), "")]
        problems += _unfed(model, [steps for to in targets if isinstance(to, str) and (steps := parse_path(to))])
    if problems or model is None:
        raise ConfigError("\n".join(f"{file}: {p}" for p in problems))
    return CsvMapping(file, model, delimiter, encoding, zone, constants, constant_json, columns)


def _tables(value: Any) -> list[dict[str, Any]]:
    return [spec for spec in value.values() if isinstance(spec, dict)] if isinstance(value, dict) else []


def _model_of(name: Any, given: type[Message] | None, problems: list[str]) -> type[Message] | None:
    if name is None:
        if given is None:
            problems.append("message_type: required (the shared type of every row, e.g. KidnappingAlert)")
        return given
    try:
        model = message_model(str(name))
    except KeyError:
        known = ", ".join(full.rsplit(".", 1)[1] for full in MESSAGE_MODELS)
        problems.append(f"message_type: {name!r} is not a shared message type ({known})")
        return None
    if given is not None and given is not model:
        problems.append(f"message_type: {name!r}, but the adapter was asked for {given.__name__}")
    return model


def _text_setting(document: Mapping[str, Any], key: str, default: str, problems: list[str]) -> str:
    value = document.get(key, default)
    if not isinstance(value, str):
        problems.append(f"{key}: a string, not {value!r}")
        return default
    return value


def _encoding(name: str, problems: list[str]) -> str:
    # Line numbers and the BOM check count bytes as ASCII: UTF-16 and the like are refused here, not misread.
    try:
        ascii_compatible = "a;,\n".encode(name) == b"a;,\n" and b"a;,\n".decode(name) == "a;,\n"
    except (LookupError, ValueError):
        ascii_compatible = False
    if not ascii_compatible:
        problems.append(f"encoding: {name!r} is not an ASCII-compatible text encoding (e.g. utf-8, latin-1, cp1252)")
        return "utf-8"
    return name


def _zone(name: Any, problems: list[str]) -> ZoneInfo | None:
    if name is None:
        return None
    try:
        return ZoneInfo(str(name))
    except (KeyError, ValueError, OSError):  # ZoneInfoNotFoundError is a KeyError
        problems.append(f"timezone: {name!r} is not an IANA time zone (e.g. Europe/Madrid, America/Mexico_City)")
        return None


def _constants(model: type[Message], table: Any, problems: list[str]) -> tuple[dict[str, Any], dict[str, str]]:
    if not isinstance(table, dict):
        problems.append("constants: a table of shared field = value")
        return {}, {}
    values, shown = {}, {}
    for path, value in _flatten(table, ""):
        where = f"constants.{path}"
        leaf = leaf_at(model, path, where, problems)
        if leaf is None:
            continue
        value = [value] if leaf.many and not isinstance(value, list) else value
        checked = _check(leaf.annotation, value, where, problems)
        if checked is not None:
            values[path] = value
            shown[path] = json.dumps(TypeAdapter(leaf.annotation).dump_python(checked, mode="json"))
    return values, shown


def _flatten(table: Any, prefix: str) -> Iterator[tuple[str, Any]]:
    """``(dotted path, value)`` of a table of tables."""
    for key, value in table.items() if isinstance(table, dict) else ():
        path = f"{prefix}.{key}" if prefix else key
        if isinstance(value, dict):
            yield from _flatten(value, path)
        else:
            yield path, value


def _columns(model: type[Message], table: Any, problems: list[str]) -> tuple[Column, ...]:
    if not isinstance(table, dict) or not table:
        problems.append("columns: required, a table per column of the export ([columns.NAME] to = ...)")
        return ()
    columns = tuple(c for name, spec in table.items() if (c := _column(model, name, spec, problems)) is not None)
    for i, column in enumerate(columns):
        for other in columns[:i]:
            if column.to and other.to and overlap(column.to, other.to):
                problems.append(f"columns.{column.name}.to: {column.to} is already fed by columns.{other.name}")
    return columns


def _column(model: type[Message], name: str, spec: Any, problems: list[str]) -> Column | None:
    where = f"columns.{name}"
    if not isinstance(spec, dict) or not name:
        problems.append(f"{where}: a table with to = FIELD or ignore = REASON")
        return None
    before = len(problems)
    problems += [
        f"{where}.{k}: unknown key (known: {', '.join(sorted(_COLUMN_KEYS))})"
        for k in sorted(spec.keys() - _COLUMN_KEYS)
    ]
    if "ignore" in spec:
        if not isinstance(spec["ignore"], str) or not spec["ignore"].strip() or len(spec) > 1:
            problems.append(f"{where}.ignore: the reason it is left out, alone (no to, values, ...)")
        return Column(name, ignore=str(spec["ignore"]))
    to = spec.get("to")
    leaf = leaf_at(model, to, f"{where}.to", problems) if isinstance(to, str) else None
    if not isinstance(to, str):
        problems.append(f"{where}: to = FIELD (the shared field it feeds) or ignore = REASON")
    values, codes = _values(leaf, spec.get("values"), f"{where}.values", problems)
    date_format, example = _date_format(leaf, spec.get("date_format"), f"{where}.date_format", problems)
    split = spec.get("split")
    if split is not None and (not isinstance(split, str) or not split or (leaf is not None and not leaf.many)):
        problems.append(f"{where}.split: a non-empty separator, for a list field only")
    if values and date_format:
        problems.append(f"{where}: values or date_format, not both")
    if leaf is None or len(problems) > before:
        return None
    steps = parse_path(cast(str, to)) or ()
    return Column(name, cast(str, to), steps, leaf, values, codes, date_format, example, split)


def _values(leaf: Leaf | None, table: Any, where: str, problems: list[str]) -> tuple[dict[str, Any], dict[str, str]]:
    if table is None:
        return {}, {}
    if not isinstance(table, dict) or not table:
        problems.append(f"{where}: a table of local code = shared value")
        return {}, {}
    codes: dict[str, str] = {}
    for code, value in table.items():
        checked = _check(leaf.item, value, where, problems) if leaf is not None else None
        if checked is not None and leaf is not None:
            codes.setdefault(json.dumps(TypeAdapter(leaf.item).dump_python(checked, mode="json")), code)
    return dict(table), codes


def _date_format(leaf: Leaf | None, fmt: Any, where: str, problems: list[str]) -> tuple[str | None, str]:
    if fmt is None:
        return None, ""
    if not isinstance(fmt, str) or (leaf is not None and leaf.kind not in ("date", "datetime")):
        problems.append(f"{where}: a strptime format, for a date or time field only")
        return None, ""
    # A good format reads back what it writes: that refuses unknown directives and formats missing a part.
    day_only = leaf is None or leaf.kind == "date"
    try:
        example = _SAMPLE.strftime(fmt)
        back: datetime | None = datetime.strptime(example, fmt)
    except (ValueError, re.error):
        example, back = "", None
    wanted = (_SAMPLE.date(),) if day_only else (_SAMPLE.date(), _SAMPLE.hour, _SAMPLE.minute)
    got = None if back is None else (back.date(),) if day_only else (back.date(), back.hour, back.minute)
    if got != wanted:
        parts = "day, month and year" if day_only else "day, month, year, hours and minutes"
        problems.append(f"{where}: {fmt!r} is not a strptime format giving the {parts} (e.g. %d.%m.%Y %H:%M)")
        return None, ""
    return fmt, example


def _check(annotation: Any, value: Any, where: str, problems: list[str]) -> Any:
    """``value`` validated as ``annotation``, or None with the problem recorded."""
    try:
        return TypeAdapter(annotation).validate_python(value, context=_CHECKING)
    except ValidationError as exc:
        base = bare_type(annotation)
        if isinstance(base, type) and issubclass(base, Enum):
            names = ", ".join(str(m.value) for m in base)
            problems.append(f"{where}: {value!r} is not a {base.__name__} ({names})")
        else:
            problems.append(f"{where}: {value!r}: {problems_from(exc)[0]}")
        return None


def _unfed(model: type[Message], fed: list[tuple[Step, ...]]) -> list[str]:
    """Required fields of the message, and of every record a path enters, that nothing feeds."""
    problems = []
    for prefix in sorted({steps[:i] for steps in fed for i in range(len(steps))}, key=path_text):
        record = record_type(annotation_at(model, prefix))
        if record is None or (prefix and prefix[0] in _ENVELOPE):  # the settings may give the rest
            continue
        for name, info in record.model_fields.items():
            if not info.is_required() or (not prefix and name in _ENVELOPE):
                continue
            if not any(steps[: len(prefix) + 1] == (*prefix, name) for steps in fed):
                where = path_text((*prefix, name))
                problems.append(f"{where}: {record.__name__} requires it, but no column or constant feeds it")
    return problems
