"""A flat CSV export of a local system, read and written through a declarative TOML mapping: no code per system.

The mapping says which column feeds which shared field, how local codes, dates and lists are written, and what the
export does not carry (a complete one: ``examples/adapters/csv/alerts.toml``)::

    message_type = "KidnappingAlert"    # the shared type of every row, by short name (required)
    delimiter = ";"                      # one character; default ","
    encoding = "cp1252"                  # an ASCII-compatible codec; default "utf-8" (a UTF-8 BOM is accepted)
    timezone = "Europe/Madrid"           # the zone of times written without one; without it they are refused

    [constants]                          # shared fields set on every row; a column feeding the same field wins
    msg_type = "Alert"
    languages = ["es"]
    "last_seen.country" = "ES"           # a path is quoted, or nested: [constants.last_seen]

    [columns.expediente]                 # a column of the export, by its header name
    to = "case_id"                       # the shared field it feeds: dots for nesting, [0] for a list item
    [columns.sexo]
    to = "victims[0].sex"
    values = { H = "Male", M = "Female", D = "Unknown" }   # local code -> shared value; other codes are refused
    [columns.fecha_desaparicion]
    to = "last_seen.at"
    date_format = "%d.%m.%Y %H:%M"       # strptime/strftime; the mapping's time zone unless the format has %z
    [columns.nacionalidades]
    to = "victims[0].nationalities"      # a list field: one value per cell, or several with split
    split = "|"
    [columns.observaciones_internas]
    ignore = "internal remarks, not for other countries"   # a reasoned omission, still reported as a loss

Issuer, handling and status come from the adapter's settings (:func:`adapters.base.envelope_fields`) unless a
constant or column feeds them. The mapping is checked whole when the adapter is built (keys, field paths against the
shared model, codes and constants against its types, formats, zones, required fields nothing feeds): one
:class:`ConfigError` lists every problem, as ``FILE: KEY: what``.

Reading: the first non-blank line is the header (a mapped column missing from it refuses the file); each later
non-blank line is one record, translated or refused on its own: :class:`InputError` from ``FILE line N``, each
problem naming the column and its value. Empty cells are "not given"; cells of unmapped or ignored columns are
losses. Undecodable bytes and cells over :data:`MAX_CELL` characters refuse their row only. A time the clocks
skipped is refused, an ambiguous one (clocks going back) is the first of the two. Without ``date_format`` a time
may be ISO 8601, or relative to the time of sending (``-35m``) as in op7's JSON.

Writing: the same mapping backwards, a header line and one row (a shared value listed under several local codes is
written as the first); shared fields no column holds are losses. A cell a spreadsheet would run as a formula (its
first character, past any single quotes, one of ``= + - @``, tab, carriage return) is written after one more single
quote, which reading takes off again.
"""

from __future__ import annotations

import codecs
import contextlib
import copy
import csv
import io
import itertools
import json
import re
import threading
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from enum import Enum
from pathlib import Path
from types import UnionType
from typing import Annotated, Any, Union, cast, get_args, get_origin
from zoneinfo import ZoneInfo

from pydantic import AwareDatetime, BaseModel, TypeAdapter, ValidationError
from pydantic.fields import FieldInfo

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
from broker.models import MESSAGE_MODELS, Message, message_model
from broker.models._types import relative_offset
from broker.models.inputs import problems_from, validate_outgoing

__all__ = ["CsvMapping", "CsvMappingAdapter", "load_mapping"]

Step = str | int
#: Longest cell read (characters): the csv module's default limit, a record with a longer one is refused.
MAX_CELL = 131_072
#: What a spreadsheet runs as a formula when it starts a cell (OWASP, "CSV injection").
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_TOP_KEYS = {"message_type", "delimiter", "encoding", "timezone", "constants", "columns"}
_COLUMN_KEYS = {"to", "values", "date_format", "split", "ignore"}
#: Fed by the adapter's settings (issuer, handling, status) or the time of sending, not by the export.
_ENVELOPE = {"status", "sent_at", "handling", "issuer"}
_STEP = re.compile(r"(?:^|\.)([a-z_][a-z0-9_]*)|\[(\d{1,2})\]")
_UNDECODED = re.compile("[\udc80-\udcff]")
#: What the shared model strips from text (Unicode White_Space): a cell blank here is a field empty there.
_BLANK = "".join(chr(c) for c in range(0x3001) if chr(c).isspace() and not 0x1C <= c <= 0x1F)
#: csv.field_size_limit is the process's: one reader at a time lifts it.
_FIELD_LIMIT = threading.Lock()
#: Relative times in constants are checked against some instant; which one does not matter.
_CHECKING = {"now": datetime(2000, 1, 1, tzinfo=UTC)}
_SAMPLE = datetime(2025, 12, 31, 14, 5, 9, tzinfo=UTC)


@dataclass(frozen=True)
class _Leaf:
    """The shared field a path ends at: its type with constraints, that of one value, and what it holds."""

    annotation: Any
    item: Any
    many: bool
    kind: str  # "datetime", "date", "enum" or "value"


@dataclass(frozen=True)
class _Column:
    name: str
    to: str = ""
    steps: tuple[Step, ...] = ()
    leaf: _Leaf | None = None
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
    columns: tuple[_Column, ...]


# --- the mapping file -----------------------------------------------------------------------------------------


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
    columns: tuple[_Column, ...] = ()
    if model is not None:
        constants, constant_json = _constants(model, document.get("constants", {}), problems)
        columns = _columns(model, document.get("columns"), problems)
        # A faulty column still feeds its field: one problem about it, not a second one about the field.
        targets = [spec.get("to") for spec in _tables(document.get("columns"))]
        targets += [path for path, _ in _flatten(document.get("constants"), "")]
        problems += _unfed(model, [steps for to in targets if isinstance(to, str) and (steps := _parse_path(to))])
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
        leaf = _leaf_at(model, path, where, problems)
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


def _columns(model: type[Message], table: Any, problems: list[str]) -> tuple[_Column, ...]:
    if not isinstance(table, dict) or not table:
        problems.append("columns: required, a table per column of the export ([columns.NAME] to = ...)")
        return ()
    columns = tuple(c for name, spec in table.items() if (c := _column(model, name, spec, problems)) is not None)
    for i, column in enumerate(columns):
        for other in columns[:i]:
            if column.to and other.to and _overlap(column.to, other.to):
                problems.append(f"columns.{column.name}.to: {column.to} is already fed by columns.{other.name}")
    return columns


def _column(model: type[Message], name: str, spec: Any, problems: list[str]) -> _Column | None:
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
        return _Column(name, ignore=str(spec["ignore"]))
    to = spec.get("to")
    leaf = _leaf_at(model, to, f"{where}.to", problems) if isinstance(to, str) else None
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
    steps = _parse_path(cast(str, to)) or ()
    return _Column(name, cast(str, to), steps, leaf, values, codes, date_format, example, split)


def _values(leaf: _Leaf | None, table: Any, where: str, problems: list[str]) -> tuple[dict[str, Any], dict[str, str]]:
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


def _date_format(leaf: _Leaf | None, fmt: Any, where: str, problems: list[str]) -> tuple[str | None, str]:
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
        base = _bare(annotation)
        if isinstance(base, type) and issubclass(base, Enum):
            names = ", ".join(str(m.value) for m in base)
            problems.append(f"{where}: {value!r} is not a {base.__name__} ({names})")
        else:
            problems.append(f"{where}: {value!r}: {problems_from(exc)[0]}")
        return None


def _unfed(model: type[Message], fed: list[tuple[Step, ...]]) -> list[str]:
    """Required fields of the message, and of every record a path enters, that nothing feeds."""
    problems = []
    for prefix in sorted({steps[:i] for steps in fed for i in range(len(steps))}, key=_path_text):
        record = _record(_annotation_at(model, prefix))
        if record is None or (prefix and prefix[0] in _ENVELOPE):  # the settings may give the rest
            continue
        for name, info in record.model_fields.items():
            if not info.is_required() or (not prefix and name in _ENVELOPE):
                continue
            if not any(steps[: len(prefix) + 1] == (*prefix, name) for steps in fed):
                where = _path_text((*prefix, name))
                problems.append(f"{where}: {record.__name__} requires it, but no column or constant feeds it")
    return problems


# --- field paths ----------------------------------------------------------------------------------------------


def _parse_path(text: str) -> tuple[Step, ...] | None:
    steps: list[Step] = []
    end = 0
    for match in _STEP.finditer(text):
        if match.start() != end:
            return None
        steps.append(match.group(1) if match.group(1) is not None else int(match.group(2)))
        end = match.end()
    return tuple(steps) if end == len(text) and steps and isinstance(steps[0], str) else None


def _path_text(steps: tuple[Step, ...]) -> str:
    return "".join(f"[{s}]" if isinstance(s, int) else (f".{s}" if i else s) for i, s in enumerate(steps))


def _overlap(a: str, b: str) -> bool:
    return a == b or a.startswith((b + ".", b + "[")) or b.startswith((a + ".", a + "["))


def _bare(annotation: Any) -> Any:
    """The type under ``Annotated`` and ``| None``."""
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation = get_args(annotation)[0]
        elif (
            origin in (Union, UnionType) and len(args := [a for a in get_args(annotation) if a is not type(None)]) == 1
        ):
            annotation = args[0]
        else:
            return annotation


def _bare_item(annotation: Any) -> Any:
    """The item type of a ``tuple[X, ...]`` field (with its constraints), or None."""
    bare = _bare(annotation)
    args = get_args(bare)
    return args[0] if get_origin(bare) is tuple and len(args) == 2 and args[1] is Ellipsis else None


def _annotation(info: FieldInfo) -> Any:
    return cast(Any, Annotated)[(info.annotation, *info.metadata)] if info.metadata else info.annotation


def _record(annotation: Any) -> type[BaseModel] | None:
    bare = _bare(annotation)
    return bare if isinstance(bare, type) and issubclass(bare, BaseModel) else None


def _annotation_at(model: type[BaseModel], steps: tuple[Step, ...]) -> Any:
    """The annotation of the field at ``steps`` (the model at the root), or None where the path leaves the schema."""
    current: Any = model
    for step in steps:
        if isinstance(step, int):
            current = _bare_item(current)
        else:
            record = _record(current)
            current = _annotation(record.model_fields[step]) if record and step in record.model_fields else None
        if current is None:
            return None
    return current


def _leaf_at(model: type[BaseModel], path: str, where: str, problems: list[str]) -> _Leaf | None:
    steps = _parse_path(path)
    if steps is None:
        problems.append(f"{where}: {path!r} is not a field path (e.g. victims[0].given_names; indexes up to 99)")
        return None
    for i, step in enumerate(steps):
        if _annotation_at(model, steps[: i + 1]) is None:
            parent, above = _annotation_at(model, steps[:i]), _path_text(steps[:i])
            record = _record(parent)
            if _bare_item(parent) is not None:
                why = f"{above} is a list: give an item ({above}[0])"
            elif record is None or isinstance(step, int):
                why = f"{above} is not a list" if isinstance(step, int) else f"{above} has no fields"
            else:
                why = f"{record.__name__} has no field {step!r} (it has: {', '.join(record.model_fields)})"
            problems.append(f"{where}: {path!r}: {why}")
            return None
    annotation = _annotation_at(model, steps)
    item = _bare_item(annotation)
    record = _record(item if item is not None else annotation)
    if record is not None:
        problems.append(f"{where}: {path!r} holds {record.__name__} records: map their fields one by one")
        return None
    return _Leaf(
        annotation, item if item is not None else annotation, item is not None, _kind(_bare(item or annotation))
    )


def _kind(base: Any) -> str:
    if base is AwareDatetime or (isinstance(base, type) and issubclass(base, datetime)):
        return "datetime"
    if isinstance(base, type) and issubclass(base, date):
        return "date"
    return "enum" if isinstance(base, type) and issubclass(base, Enum) else "value"


def _put(tree: dict[str, Any], steps: tuple[Step, ...], value: Any) -> None:
    """Set ``value`` at ``steps``, making the records and lists on the way (list gaps are left empty)."""
    node: Any = tree
    for step, after in itertools.pairwise(steps):
        empty: Any = [] if isinstance(after, int) else {}
        if isinstance(step, int):
            node.extend({} for _ in range(step + 1 - len(node)))
            if not isinstance(node[step], type(empty)):
                node[step] = empty
        elif not isinstance(node.get(step), type(empty)):
            node[step] = empty
        node = node[step]
    last = steps[-1]
    if isinstance(last, int):
        node.extend(None for _ in range(last + 1 - len(node)))
    node[last] = value


def _get(tree: Any, steps: tuple[Step, ...]) -> Any:
    for step in steps:
        if isinstance(step, int):
            tree = tree[step] if isinstance(tree, list | tuple) and step < len(tree) else None
        else:
            tree = tree.get(step) if isinstance(tree, dict) else None
    return tree


# --- reading and writing cells --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Row:
    """A record of the file: the line it starts on, its cells by column name (or why it cannot be read), its text."""

    line: int
    cells: tuple[tuple[str, str], ...] = ()
    problems: tuple[Problem, ...] = ()
    raw: str = ""


def _decode(data: bytes, encoding: str) -> tuple[str, Problem | None]:
    if data.startswith(codecs.BOM_UTF8):
        if codecs.lookup(encoding).name not in ("utf-8", "utf-8-sig"):
            return "", Problem("", f"the file starts with a UTF-8 byte order mark, but the mapping says {encoding}")
        data = data[len(codecs.BOM_UTF8) :]
    try:
        # Undecodable bytes stay as escapes, refused cell by cell: the other rows still go through.
        return data.decode(encoding, "surrogateescape"), None
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        return "", Problem(f"line {line}", f"not {encoding} text: {exc.reason}")


def _parse(text: str, delimiter: str) -> list[tuple[int, list[str], str]]:
    """Every record of ``text``: the line it starts on, its cells, its text. The csv module's field limit is lifted
    meanwhile (its error would leave the reader inside a quoted field, reading the rest as records); cells are
    bounded by :data:`MAX_CELL` afterwards, record by record."""
    lines = io.StringIO(text, newline="").readlines()  # split as the reader splits them
    reader = csv.reader(lines, delimiter=delimiter)
    records = []
    with _FIELD_LIMIT:
        previous = csv.field_size_limit(max(csv.field_size_limit(), len(text) + 1))
        try:
            start = 0
            for row in reader:
                records.append((start + 1, row, "".join(lines[start : reader.line_num])))
                start = reader.line_num
        finally:
            csv.field_size_limit(previous)
    return records


def _rows(text: str, mapping: CsvMapping) -> Iterator[_Row]:
    try:
        records = _parse(text, mapping.delimiter)
    except csv.Error as exc:  # not expected once the field limit is lifted: a whole-file error all the same
        yield _Row(0, problems=(Problem("", f"not readable as CSV: {exc}"),))
        return
    header: list[str] | None = None
    for line, row, raw in records:
        if not any(cell.strip(_BLANK) for cell in row):
            continue
        if header is None:
            header = [cell.strip(_BLANK) or f"(column {i})" for i, cell in enumerate(row, 1)]
            problems = _header_problems(header, mapping)
            if problems:
                yield _Row(line, problems=tuple(problems))
                return
        elif len(row) != len(header):
            yield _Row(line, problems=(Problem("", f"{len(row)} cells, where the header has {len(header)}"),))
        else:
            cells = tuple((name, cell.strip(_BLANK)) for name, cell in zip(header, row, strict=True))
            yield _Row(line, cells, raw=raw.rstrip("\r\n"))
    if header is None:
        yield _Row(0, problems=(Problem("", "no header line: the file is empty"),))


def _header_problems(header: list[str], mapping: CsvMapping) -> list[Problem]:
    # Named by position: a name that cannot be read, or is there twice, cannot name its column.
    problems = [
        Problem(f"(column {i})", f"undecodable bytes in the header: not {mapping.encoding} text", _shown(name))
        for i, name in enumerate(header, 1)
        if _UNDECODED.search(name)
    ]
    problems += [
        Problem(f"(column {i})", "a second column of that name", _shown(name))
        for i, name in enumerate(header, 1)
        if name in header[: i - 1]
    ]
    missing = [c.name for c in mapping.columns if c.to and c.name not in header]
    problems += [Problem(name, "a column of the mapping, missing from the header") for name in missing]
    if missing and len(header) == 1:
        problems.append(Problem("", f"the header has a single column: is the delimiter {mapping.delimiter!r} right?"))
    return problems


def _readable(text: str) -> str:
    """``text`` with undecodable bytes written ``\\xNN``: printable anywhere."""
    return _UNDECODED.sub(lambda m: f"\\x{ord(m.group()) - 0xDC00:02x}", text)


def _shown(text: str) -> str:
    shown = json.dumps(_readable(text), ensure_ascii=False)
    return shown if len(shown) <= 60 else shown[:57] + "..."


def _listed(names: Mapping[str, Any]) -> str:
    keys = list(names)
    return ", ".join(keys[:12]) + (", ..." if len(keys) > 12 else "")


def _guarded(cell: str) -> str:
    """``cell`` as a spreadsheet will not run it: after a quote if it starts (past any quotes) like a formula."""
    return "'" + cell if cell.lstrip("'").startswith(FORMULA_START) else cell


def _unguarded(cell: str) -> str:
    """The value of a cell written by :func:`_guarded` (or by an export that guards its cells the same way)."""
    return cell[1:] if cell.startswith("'") and cell.lstrip("'").startswith(FORMULA_START) else cell


def _time(text: str, column: _Column, zone: ZoneInfo | None) -> Any:
    if relative_offset(text) is not None:
        return text
    if column.date_format:
        try:
            parsed = datetime.strptime(text, column.date_format)
        except ValueError:
            raise ValueError(f"not a time written {column.date_format} (e.g. {column.example})") from None
    else:
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            return text  # the shared model says what is wrong with it
    if parsed.tzinfo is not None:
        return parsed
    if zone is None:
        raise ValueError("a time without a zone, and the mapping sets no timezone")
    return _localise(parsed, zone)


def _localise(naive: datetime, zone: ZoneInfo) -> datetime:
    """``naive`` as a time in ``zone``; a time the clocks skipped is refused, an ambiguous one is the first."""
    aware = naive.replace(tzinfo=zone)
    try:
        back = aware.astimezone(UTC).astimezone(zone)
    except OverflowError:
        raise ValueError("out of the range of dates") from None
    if back.replace(tzinfo=None) != naive:
        raise ValueError(f"does not exist in {zone.key}: the clocks went forward over it")
    return aware


def _leaves(tree: Any, prefix: str) -> Iterator[tuple[str, Any]]:
    """The values of a dumped message by field path; lists of records item by item, other lists whole."""
    if isinstance(tree, dict):
        for key, value in tree.items():
            yield from _leaves(value, f"{prefix}.{key}" if prefix else key)
    elif isinstance(tree, list) and any(isinstance(item, dict) for item in tree):
        for i, item in enumerate(tree):
            yield from _leaves(item, f"{prefix}[{i}]")
    elif tree is not None and tree != [] and tree != "":
        yield prefix, tree


_NOT_HELD = "no column of the mapping holds it"


def _unheld(tree: dict[str, Any], mapping: CsvMapping) -> list[Loss]:
    """The shared fields of a message no column writes (a value equal to the mapping's constant is implied)."""
    fed = {c.to for c in mapping.columns if c.to}
    lost = []
    for path, value in _leaves(tree, ""):
        if path in fed or mapping.constant_json.get(path) == json.dumps(value):
            continue
        if isinstance(value, list) and any(f.startswith(path + "[") for f in fed):
            lost += [loss(f"{path}[{i}]", v, _NOT_HELD) for i, v in enumerate(value) if f"{path}[{i}]" not in fed]
        else:
            lost.append(
                loss(path, json.dumps(value, ensure_ascii=False) if isinstance(value, list) else value, _NOT_HELD)
            )
    return lost


# --- the adapter ----------------------------------------------------------------------------------------------


class CsvMappingAdapter(InboundAdapter[Message], OutboundAdapter):
    """A flat CSV export read row by row, and a received message written as one row, through a mapping file."""

    name = "csv"
    summary = "a flat CSV export of a local system, through a declarative TOML mapping (setting: mapping = FILE)"
    message_types = tuple(MESSAGE_MODELS)
    setting_names = (*COMMON_SETTINGS, "mapping")

    def __init__(self, model: type[Message] | None = None, /, settings: Mapping[str, Any] | None = None) -> None:
        super().__init__(model, settings=settings)
        where = self.settings.get("mapping")
        if not isinstance(where, str | Path) or not str(where):
            raise ConfigError(f"adapter {self.name!r}: set mapping = the path of its TOML mapping file")
        self.mapping = load_mapping(Path(where), model)
        self.model = self.mapping.model
        self._by_name = {c.name: c for c in self.mapping.columns}

    def translate(self, data: bytes, source: str, *, now: datetime) -> Translation[Message]:
        """The file's only row; :class:`InputError` if it has another number of rows."""
        results = list(self.translate_all(data, source, now=now))
        only = results[0] if len(results) == 1 else None
        if isinstance(only, InputError):
            raise only
        if only is None:
            raise InputError(source, [Problem("", f"expected exactly one data row, found {len(results)}")])
        return only

    def translate_all(self, data: bytes, source: str, *, now: datetime) -> Iterator[Translation[Message] | InputError]:
        envelope = self._envelope()
        text, problem = _decode(data, self.mapping.encoding)
        if problem is not None:
            yield InputError(source, [problem])
            return
        for row in _rows(text, self.mapping):
            where = f"{source} line {row.line}" if row.line else source
            yield InputError(where, list(row.problems)) if row.problems else self._record(row, where, envelope, now)

    def _envelope(self) -> dict[str, Any]:
        settings = self.settings
        fed = [c.to for c in self.mapping.columns if c.to] + list(self.mapping.constants)
        if "issuer" not in settings and any(_overlap(path, "issuer") for path in fed):
            settings = {**settings, "issuer": {}}  # the mapping gives the issuer itself
        fields = envelope_fields(settings, self.name)
        fields["issuer"] = {k: v for k, v in fields["issuer"].items() if v is not None}
        return fields

    def _record(
        self, row: _Row, where: str, envelope: dict[str, Any], now: datetime
    ) -> Translation[Message] | InputError:
        data = copy.deepcopy(envelope)
        for path, value in self.mapping.constants.items():
            _put(data, _parse_path(path) or (), copy.deepcopy(value))
        problems: list[Problem] = []
        failed: list[str] = []
        lost: list[Loss] = []
        for name, cell in row.cells:
            column = self._by_name.get(name)
            if not cell:
                continue
            if column is None or not column.to:
                reason = column.ignore if column else "unmapped column: the mapping has no entry for it"
                lost.append(loss(_readable(name), _readable(cell), reason))
                continue
            try:
                _put(data, column.steps, self._value(column, cell))
            except ValueError as exc:
                problems.append(Problem(name, str(exc), _shown(cell)))
                failed.append(column.to)
        try:
            message = validate_outgoing(self.mapping.model, data, where, now=now)
        except InputError as exc:
            cells = dict(row.cells)
            # A field whose cell was already refused is missing from the message: not a second problem.
            problems += [self._local(p, cells) for p in exc.problems if not any(_overlap(p.path, f) for f in failed)]
            return InputError(where, problems)
        if problems:
            return InputError(where, problems)
        # The row's own bytes: read again, it is recognised as the same record (and sent as the same message).
        record = row.raw.encode(self.mapping.encoding, "surrogateescape")
        return Translation(message, where, tuple(lost), record=record)

    def _value(self, column: _Column, cell: str) -> Any:
        if _UNDECODED.search(cell):
            raise ValueError(f"undecodable bytes: not {self.mapping.encoding} text")
        if len(cell) > MAX_CELL:
            raise ValueError(f"longer than {MAX_CELL} characters")
        cell = _unguarded(cell)
        parts = [part.strip(_BLANK) for part in cell.split(column.split)] if column.split else [cell]
        values = [self._one(column, part) for part in parts if part]
        return values if column.leaf is not None and column.leaf.many else values[0]

    def _one(self, column: _Column, text: str) -> Any:
        if column.values:
            if text not in column.values:
                raise ValueError(f"not a code of columns.{column.name}.values ({_listed(column.values)})")
            return column.values[text]
        kind = column.leaf.kind if column.leaf is not None else "value"
        if kind == "datetime":
            return _time(text, column, self.mapping.zone)
        if kind == "date" and column.date_format and relative_offset(text) is None:
            try:
                return datetime.strptime(text, column.date_format).date()
            except ValueError:
                raise ValueError(f"not a date written {column.date_format} (e.g. {column.example})") from None
        return text

    def _local(self, problem: Problem, cells: dict[str, str]) -> Problem:
        """A problem of the shared model, named by the column (or constant) that fed the field."""
        path = problem.path
        for column in self.mapping.columns:
            if not column.to or not (path == column.to or path.startswith((column.to + ".", column.to + "["))):
                continue
            cell = cells.get(column.name, "")
            if not cell and path in self.mapping.constants:
                break
            rest = path[len(column.to) :]
            message = "required, but the cell is empty" if problem.message == "Field required" else problem.message
            return Problem(column.name + rest, message, problem.got if rest else (_shown(cell) if cell else None))
        if any(_overlap(path, constant) for constant in self.mapping.constants):
            return Problem(f"constants.{path}", problem.message, problem.got)
        empty = [c.name for c in self.mapping.columns if c.to and path and c.to.startswith((path + ".", path + "["))]
        if empty:
            return Problem(path, f"{problem.message} (its columns are empty: {', '.join(empty)})", problem.got)
        return problem

    def render(self, message: Message, *, message_id: str, sender: str) -> Rendered:
        """``message`` as a header line and one row, in the mapping's delimiter and encoding (the message id and
        sender, not fields of the message, have no column)."""
        mapping = self.mapping
        if type(message) is not mapping.model:
            raise ConfigError(f"{mapping.file}: maps {mapping.model.__name__} messages, not {type(message).__name__}")
        as_json, native = message.model_dump(mode="json"), message.model_dump()
        lost: list[Loss] = []
        row = [
            self._cell(c, _get(as_json, c.steps), _get(native, c.steps), lost) if c.to else "" for c in mapping.columns
        ]
        lost += _unheld(message.model_dump(mode="json", exclude_defaults=True), mapping)
        out = io.StringIO()
        writer = csv.writer(out, delimiter=mapping.delimiter, lineterminator="\r\n")
        writer.writerow([c.name for c in mapping.columns])
        writer.writerow(row)
        return Rendered(out.getvalue().encode(mapping.encoding, "replace"), "text/csv", ".csv", tuple(lost))

    def _cell(self, column: _Column, value: Any, native: Any, lost: list[Loss]) -> str:
        if value is None or value == []:
            return ""
        many = column.leaf is not None and column.leaf.many
        items = list(zip(value, native, strict=True)) if many else [(value, native)]
        if many and not column.split and len(items) > 1:
            reason = f"columns.{column.name} holds one value (it has no split)"
            lost += [loss(f"{column.to}[{i}]", item, reason) for i, (item, _) in enumerate(items[1:], 1)]
            items = items[:1]
        texts = []
        for i, (item, raw) in enumerate(items):
            text = self._text(column, item, raw)
            if text is None:
                where = f"{column.to}[{i}]" if many else column.to
                lost.append(loss(where, item, f"columns.{column.name}.values has no local code for it"))
            else:
                texts.append(text)
        cell = (column.split or "").join(texts)
        cell = _guarded(cell)
        try:
            cell.encode(self.mapping.encoding)
        except UnicodeEncodeError:
            lost.append(loss(column.to, cell, f"{self.mapping.encoding} cannot write all of it: written with '?'"))
        return cell

    def _text(self, column: _Column, item: Any, raw: Any) -> str | None:
        if column.values:
            return column.codes.get(json.dumps(item))
        fmt = column.date_format
        if isinstance(raw, datetime):
            when: datetime = raw
            with contextlib.suppress(OverflowError):  # at the end of year 9999: left in UTC
                when = raw.astimezone(self.mapping.zone or UTC)
            return when.strftime(fmt) if fmt else when.isoformat()
        if isinstance(raw, date):
            return raw.strftime(fmt) if fmt else raw.isoformat()
        if isinstance(item, bool):
            return "true" if item else "false"
        return str(item)
