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

import contextlib
import copy
import csv
import io
import json
from collections.abc import Iterator, Mapping
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

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
from adapters.csv_mapping_file import Column, CsvMapping, load_mapping
from adapters.csv_rows import BLANK, UNDECODED, Row, decode, readable, rows, shown
from adapters.model_paths import get, overlap, parse_path, put
from broker.errors import ConfigError, InputError, Problem
from broker.models import MESSAGE_MODELS, Message
from broker.models._types import relative_offset
from broker.models.inputs import validate_outgoing

__all__ = ["CsvMapping", "CsvMappingAdapter", "load_mapping"]

#: Longest cell read (characters): the csv module's default limit, a record with a longer one is refused.
MAX_CELL = 131_072
#: What a spreadsheet runs as a formula when it starts a cell (OWASP, "CSV injection").
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _listed(names: Mapping[str, Any]) -> str:
    keys = list(names)
    return ", ".join(keys[:12]) + (", ..." if len(keys) > 12 else "")


def _guarded(cell: str) -> str:
    """``cell`` as a spreadsheet will not run it: after a quote if it starts (past any quotes) like a formula."""
    return "'" + cell if cell.lstrip("'").startswith(FORMULA_START) else cell


def _unguarded(cell: str) -> str:
    """The value of a cell written by :func:`_guarded` (or by an export that guards its cells the same way)."""
    return cell[1:] if cell.startswith("'") and cell.lstrip("'").startswith(FORMULA_START) else cell


def _time(text: str, column: Column, zone: ZoneInfo | None) -> Any:
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
        text, problem = decode(data, self.mapping.encoding)
        if problem is not None:
            yield InputError(source, [problem])
            return
        for row in rows(text, self.mapping):
            where = f"{source} line {row.line}" if row.line else source
            yield InputError(where, list(row.problems)) if row.problems else self._record(row, where, envelope, now)

    def _envelope(self) -> dict[str, Any]:
        settings = self.settings
        fed = [c.to for c in self.mapping.columns if c.to] + list(self.mapping.constants)
        if "issuer" not in settings and any(overlap(path, "issuer") for path in fed):
            settings = {**settings, "issuer": {}}  # the mapping gives the issuer itself
        fields = envelope_fields(settings, self.name)
        fields["issuer"] = {k: v for k, v in fields["issuer"].items() if v is not None}
        return fields

    def _record(
        self, row: Row, where: str, envelope: dict[str, Any], now: datetime
    ) -> Translation[Message] | InputError:
        data = copy.deepcopy(envelope)
        for path, value in self.mapping.constants.items():
            put(data, parse_path(path) or (), copy.deepcopy(value))
        problems: list[Problem] = []
        failed: list[str] = []
        lost: list[Loss] = []
        for name, cell in row.cells:
            column = self._by_name.get(name)
            if not cell:
                continue
            if column is None or not column.to:
                reason = column.ignore if column else "unmapped column: the mapping has no entry for it"
                lost.append(loss(readable(name), readable(cell), reason))
                continue
            try:
                put(data, column.steps, self._value(column, cell))
            except ValueError as exc:
                problems.append(Problem(name, str(exc), shown(cell)))
                failed.append(column.to)
        try:
            message = validate_outgoing(self.mapping.model, data, where, now=now)
        except InputError as exc:
            cells = dict(row.cells)
            # A field whose cell was already refused is missing from the message: not a second problem.
            problems += [self._local(p, cells) for p in exc.problems if not any(overlap(p.path, f) for f in failed)]
            return InputError(where, problems)
        if problems:
            return InputError(where, problems)
        # The row's own bytes: read again, it is recognised as the same record (and sent as the same message).
        record = row.raw.encode(self.mapping.encoding, "surrogateescape")
        return Translation(message, where, tuple(lost), record=record)

    def _value(self, column: Column, cell: str) -> Any:
        if UNDECODED.search(cell):
            raise ValueError(f"undecodable bytes: not {self.mapping.encoding} text")
        if len(cell) > MAX_CELL:
            raise ValueError(f"longer than {MAX_CELL} characters")
        cell = _unguarded(cell)
        parts = [part.strip(BLANK) for part in cell.split(column.split)] if column.split else [cell]
        values = [self._one(column, part) for part in parts if part]
        return values if column.leaf is not None and column.leaf.many else values[0]

    def _one(self, column: Column, text: str) -> Any:
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
            return Problem(column.name + rest, message, problem.got if rest else (shown(cell) if cell else None))
        if any(overlap(path, constant) for constant in self.mapping.constants):
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
            self._cell(c, get(as_json, c.steps), get(native, c.steps), lost) if c.to else "" for c in mapping.columns
        ]
        lost += _unheld(message.model_dump(mode="json", exclude_defaults=True), mapping)
        out = io.StringIO()
        writer = csv.writer(out, delimiter=mapping.delimiter, lineterminator="\r\n")
        writer.writerow([c.name for c in mapping.columns])
        writer.writerow(row)
        return Rendered(out.getvalue().encode(mapping.encoding, "replace"), "text/csv", ".csv", tuple(lost))

    def _cell(self, column: Column, value: Any, native: Any, lost: list[Loss]) -> str:
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

    def _text(self, column: Column, item: Any, raw: Any) -> str | None:
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
