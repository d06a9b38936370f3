"""The records of a CSV export, as the CSV adapter (:mod:`adapters.csv_mapping`) reads them: the file decoded, split
into records (each with the line it starts on and its own text), the header checked against the mapping, and the
cells' text made printable for reports.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass

from adapters.csv_mapping_file import CsvMapping
from broker.errors import Problem

__all__ = ["BLANK", "UNDECODED", "Row", "decode", "readable", "rows", "shown"]

#: Undecodable bytes of the file, kept as surrogate escapes: refused cell by cell.
UNDECODED = re.compile("[\udc80-\udcff]")
#: What the shared model strips from text (Unicode White_Space): a cell blank here is a field empty there.
BLANK = "".join(chr(c) for c in range(0x3001) if chr(c).isspace() and not 0x1C <= c <= 0x1F)
#: csv.field_size_limit is the process's: one reader at a time lifts it.
_FIELD_LIMIT = threading.Lock()


@dataclass(frozen=True)
class Row:
    """A record of the file: the line it starts on, its cells by column name (or why it cannot be read), its text."""

    line: int
    cells: tuple[tuple[str, str], ...] = ()
    problems: tuple[Problem, ...] = ()
    raw: str = ""


def decode(data: bytes, encoding: str) -> tuple[str, Problem | None]:
    """The text of a file, or the problem refusing it whole (a BOM against the encoding, or undecodable)."""
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
    bounded by :data:`adapters.csv_mapping.MAX_CELL` afterwards, record by record."""
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


def rows(text: str, mapping: CsvMapping) -> Iterator[Row]:
    """Each record after the header as a :class:`Row`: its cells by column name, or what refuses it (or the file)."""
    try:
        records = _parse(text, mapping.delimiter)
    except csv.Error as exc:  # not expected once the field limit is lifted: a whole-file error all the same
        yield Row(0, problems=(Problem("", f"not readable as CSV: {exc}"),))
        return
    header: list[str] | None = None
    for line, row, raw in records:
        if not any(cell.strip(BLANK) for cell in row):
            continue
        if header is None:
            header = [cell.strip(BLANK) or f"(column {i})" for i, cell in enumerate(row, 1)]
            problems = _header_problems(header, mapping)
            if problems:
                yield Row(line, problems=tuple(problems))
                return
        elif len(row) != len(header):
            yield Row(line, problems=(Problem("", f"{len(row)} cells, where the header has {len(header)}"),))
        else:
            cells = tuple((name, cell.strip(BLANK)) for name, cell in zip(header, row, strict=True))
            yield Row(line, cells, raw=raw.rstrip("\r\n"))
    if header is None:
        yield Row(0, problems=(Problem("", "no header line: the file is empty"),))


def _header_problems(header: list[str], mapping: CsvMapping) -> list[Problem]:
    # Named by position: a name that cannot be read, or is there twice, cannot name its column.
    problems = [
        Problem(f"(column {i})", f"undecodable bytes in the header: not {mapping.encoding} text", shown(name))
        for i, name in enumerate(header, 1)
        if UNDECODED.search(name)
    ]
    problems += [
        Problem(f"(column {i})", "a second column of that name", shown(name))
        for i, name in enumerate(header, 1)
        if name in header[: i - 1]
    ]
    missing = [c.name for c in mapping.columns if c.to and c.name not in header]
    problems += [Problem(name, "a column of the mapping, missing from the header") for name in missing]
    if missing and len(header) == 1:
        problems.append(Problem("", f"the header has a single column: is the delimiter {mapping.delimiter!r} right?"))
    return problems


def readable(text: str) -> str:
    """``text`` with undecodable bytes written ``\\xNN``: printable anywhere."""
    return UNDECODED.sub(lambda m: f"\\x{ord(m.group()) - 0xDC00:02x}", text)


def shown(text: str) -> str:
    """``text`` as a problem shows a value: quoted, printable, 60 characters at most."""
    shown = json.dumps(readable(text), ensure_ascii=False)
    return shown if len(shown) <= 60 else shown[:57] + "..."
