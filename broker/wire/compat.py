"""Avro schema compatibility: can a reader schema read data written with a writer schema?

Implements the resolution rules of the Avro specification ("Schema Resolution") as a checker that reports
every break with the path of the field concerned, rather than failing on the first. A schema change is
accepted when every message type is compatible in both directions (backward: the new schema reads data
written with each released version; forward: each released version reads data written with the new
schema) with every released version kept under ``schemas/released/``, and the header (``op7.Envelope``) only
gains nullable fields appended at its end (:func:`header_problems`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from broker.wire.schemas import SchemaRegistry

__all__ = [
    "Incompatibility",
    "check_release",
    "check_tree",
    "header_problems",
    "incompatibilities",
    "released_versions",
]

_PROMOTIONS = {
    "int": {"int", "long", "float", "double"},
    "long": {"long", "float", "double"},
    "float": {"float", "double"},
    "string": {"string", "bytes"},
    "bytes": {"bytes", "string"},
}
_ENVELOPE = "op7.Envelope"
_PRIMITIVES = {"null", "boolean", "int", "long", "float", "double", "bytes", "string"}


@dataclass(frozen=True)
class Incompatibility:
    """One break: where (``Type.field.sub[]``), which direction, and why."""

    path: str
    problem: str
    direction: str = ""

    def __str__(self) -> str:
        prefix = f"{self.direction}: " if self.direction else ""
        return f"{prefix}{self.path}: {self.problem}"


def _names(schema: Any, out: dict[str, Any]) -> dict[str, Any]:
    """Every named type defined in ``schema`` (fastavro's parsed form has full names)."""
    if isinstance(schema, list):
        for branch in schema:
            _names(branch, out)
    elif isinstance(schema, dict):
        kind = schema.get("type")
        if kind in ("record", "error", "enum", "fixed") and "name" in schema:
            out.setdefault(schema["name"], schema)
        for field in schema.get("fields", ()):
            _names(field["type"], out)
        for key in ("items", "values"):
            if key in schema:
                _names(schema[key], out)
        if isinstance(kind, dict | list):
            _names(kind, out)
    return out


class _Checker:
    def __init__(self, reader: Any, writer: Any) -> None:
        self.reader_names = _names(reader, {})
        self.writer_names = _names(writer, {})
        self.seen: set[tuple[str, str]] = set()

    def resolve(self, schema: Any, names: dict[str, Any]) -> Any:
        if isinstance(schema, str) and schema not in _PRIMITIVES:
            return names.get(schema, schema)
        if isinstance(schema, dict) and isinstance(schema.get("type"), str) and schema["type"] in _PRIMITIVES:
            return schema  # primitive with a logical type
        if isinstance(schema, dict) and not isinstance(schema.get("type"), str):
            return self.resolve(schema["type"], names)
        return schema

    @staticmethod
    def kind(schema: Any) -> str:
        if isinstance(schema, list):
            return "union"
        if isinstance(schema, str):
            return schema
        return str(schema["type"])

    @staticmethod
    def describe(schema: Any) -> str:
        if isinstance(schema, list):
            return "union [" + ", ".join(_Checker.describe(b) for b in schema) + "]"
        if isinstance(schema, dict):
            return str(schema.get("name") or schema.get("logicalType") or schema["type"])
        return str(schema)

    def check(self, reader: Any, writer: Any, path: str) -> Iterator[Incompatibility]:
        reader = self.resolve(reader, self.reader_names)
        writer = self.resolve(writer, self.writer_names)
        if isinstance(writer, list):
            for branch in writer:
                problems = list(self.check(reader, branch, path))
                if problems:
                    yield from problems
            return
        if isinstance(reader, list):
            for branch in reader:
                if not list(self.check(branch, writer, path)):
                    return
            yield Incompatibility(
                path,
                f"writer type {self.describe(writer)} matches no branch of reader {self.describe(reader)}",
            )
            return
        rk, wk = self.kind(reader), self.kind(writer)
        if rk in _PRIMITIVES or wk in _PRIMITIVES:
            if rk not in _PROMOTIONS.get(wk, {wk}):
                yield Incompatibility(path, f"type changed from {self.describe(writer)} to {self.describe(reader)}")
            else:
                yield from self._logical(
                    reader if isinstance(reader, dict) else {},
                    writer if isinstance(writer, dict) else {},
                    path,
                )
            return
        if rk != wk:
            yield Incompatibility(
                path, f"type changed from {wk} {self.describe(writer)} to {rk} {self.describe(reader)}"
            )
            return
        if rk in ("record", "enum", "fixed") and not self._same_name(reader, writer):
            yield Incompatibility(
                path, f"named type renamed from {writer['name']} to {reader['name']} without an alias"
            )
            return
        if rk == "record":
            key = (reader["name"], writer["name"])
            if key in self.seen:
                return
            self.seen.add(key)
            yield from self._record(reader, writer, path)
        elif rk == "enum":
            missing = [s for s in writer["symbols"] if s not in reader["symbols"]]
            if missing and "default" not in reader:
                yield Incompatibility(
                    path, f"enum {reader['name']} lacks symbol(s) {', '.join(missing)} and has no default"
                )
        elif rk == "fixed":
            if reader["size"] != writer["size"]:
                yield Incompatibility(
                    path, f"fixed {reader['name']} size changed from {writer['size']} to {reader['size']}"
                )
        elif rk == "array":
            yield from self.check(reader["items"], writer["items"], path + "[]")
        elif rk == "map":
            yield from self.check(reader["values"], writer["values"], path + "{}")

    @staticmethod
    def _same_name(reader: dict[str, Any], writer: dict[str, Any]) -> bool:
        aliases = set(reader.get("aliases", ()))
        return bool(reader["name"] == writer["name"] or writer["name"] in aliases)

    @staticmethod
    def _logical(reader: dict[str, Any], writer: dict[str, Any], path: str) -> Iterator[Incompatibility]:
        # Parsing Canonical Form drops logical types, so a change would keep the fingerprint and change
        # the meaning of the bytes: never compatible.
        if reader.get("logicalType") != writer.get("logicalType"):
            yield Incompatibility(
                path, f"logical type changed from {writer.get('logicalType')} to {reader.get('logicalType')}"
            )
        elif reader.get("logicalType") == "decimal":
            for attr in ("scale", "precision"):
                if reader.get(attr) != writer.get(attr):
                    yield Incompatibility(path, f"decimal {attr} changed from {writer.get(attr)} to {reader.get(attr)}")

    def _record(self, reader: dict[str, Any], writer: dict[str, Any], path: str) -> Iterator[Incompatibility]:
        written = {f["name"]: f for f in writer["fields"]}
        for field in reader["fields"]:
            names = [field["name"], *field.get("aliases", ())]
            source = next((written[n] for n in names if n in written), None)
            where = f"{path}.{field['name']}"
            if source is None:
                if "default" not in field:
                    yield Incompatibility(where, "field is read but not written, and the reader has no default")
                continue
            yield from self.check(field["type"], source["type"], where)


def incompatibilities(reader: Any, writer: Any, path: str) -> list[Incompatibility]:
    """Every reason why data written with ``writer`` cannot be read with ``reader`` (parsed schemas)."""
    return list(_Checker(reader, writer).check(reader, writer, path))


def released_versions(directory: Path) -> list[Path]:
    """The released snapshots under ``directory/released/``, oldest first (numeric order)."""
    root = directory / "released"
    if not root.is_dir():
        return []
    return sorted(
        (p for p in root.iterdir() if p.is_dir()),
        key=lambda p: [int(x) if x.isdigit() else x for x in p.name.split(".")],
    )


def check_release(current: SchemaRegistry, released: SchemaRegistry, version: str) -> list[Incompatibility]:
    """Compare the current tree with one released version, both directions, every message type."""
    problems = header_problems(current.get(_ENVELOPE).parsed, released.get(_ENVELOPE).parsed, version)
    for name in released.message_types:
        if name not in current:
            problems.append(Incompatibility(name, "message type removed", f"against release {version}"))
            continue
        new, old = current.get(name).parsed, released.get(name).parsed
        for problem in incompatibilities(new, old, name):
            problems.append(Incompatibility(problem.path, problem.problem, f"backward (new reads release {version})"))
        for problem in incompatibilities(old, new, name):
            problems.append(Incompatibility(problem.path, problem.problem, f"forward (release {version} reads new)"))
    return problems


def header_problems(new: Any, old: Any, version: str) -> list[Incompatibility]:
    """Why the header schema ``new`` cannot follow the released ``old`` within frame format version 1.

    A header carries no schema id: a reader takes the header schema that consumes exactly its bytes
    (docs/PROTOCOL.md section 3). That stays unambiguous, and old frames readable, only if the released fields stay
    at the start, each one read both ways as before, and every field added is appended, nullable (a union with null
    first) and null by default: a writer that leaves them null writes the released bytes.
    """
    where = f"against release {version}"
    problems = [Incompatibility(p.path, p.problem, where) for p in incompatibilities(new, old, _ENVELOPE)]
    problems += [Incompatibility(p.path, p.problem, where) for p in incompatibilities(old, new, _ENVELOPE)]
    kept = [f["name"] for f in new["fields"][: len(old["fields"])]]
    if kept != [f["name"] for f in old["fields"]]:
        problems.append(Incompatibility(_ENVELOPE, "the released header fields must stay first, in their order", where))
        return problems
    for added in new["fields"][len(old["fields"]) :]:
        branches = added["type"]
        if not (isinstance(branches, list) and branches[0] == "null" and added.get("default", ...) is None):
            problems.append(
                Incompatibility(
                    f"{_ENVELOPE}.{added['name']}",
                    "a field added to the header must be a union with null first, null by default",
                    where,
                )
            )
    return problems


def check_tree(directory: Path) -> tuple[SchemaRegistry, list[str], list[Incompatibility]]:
    """Check ``directory`` against every release under it; returns the registry, versions and all breaks."""
    current = SchemaRegistry(directory, include_released=False)
    versions = released_versions(directory)
    problems: list[Incompatibility] = []
    for version in versions:
        problems.extend(check_release(current, SchemaRegistry(version, include_released=False), version.name))
    return current, [v.name for v in versions], problems
