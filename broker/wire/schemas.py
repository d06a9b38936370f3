"""The shared Avro schema: loading ``schemas/``, named-type registry, fingerprints.

Every ``.avsc`` file is parsed once into one registry of named types (a file may hold one schema or a list
of named types). A schema's identity is the SHA-256 of its Parsing Canonical Form with every named type
inlined, so separate national registries that hold the same schema agree on its fingerprint without
sharing any registry-local number.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import cache, cached_property
from importlib import resources
from pathlib import Path
from typing import Any

from fastavro.schema import SchemaParseException, UnknownType, parse_schema, to_parsing_canonical_form

from broker.errors import SchemaError

__all__ = ["Schema", "SchemaRegistry", "default_registry", "schema_dir"]

#: Schema attribute that marks a record as a message type and names its topic (without prefix).
TOPIC_ATTRIBUTE = "op7.topic"


def schema_dir() -> Path:
    """Where the shipped schemas are: inside the wheel, or at the top of a source checkout."""
    packaged = resources.files("broker") / "_schemas"
    if packaged.is_dir():
        return Path(str(packaged))
    source = Path(__file__).resolve().parents[2] / "schemas"
    if source.is_dir():
        return source
    raise SchemaError("the op7 schemas are not installed: neither broker/_schemas nor ./schemas exists")


@dataclass(frozen=True)
class Schema:
    """One self-contained schema: its full name, parsed form, canonical form and fingerprint."""

    name: str
    parsed: Any
    canonical: str
    fingerprint: bytes
    #: The self-contained schema as JSON text, with docs and logical types: what peers exchange.
    definition: str

    @property
    def fingerprint_hex(self) -> str:
        return self.fingerprint.hex()

    @cached_property
    def tag_unions(self) -> Callable[[Any], Any]:
        """A datum of this schema (a model's dump) with each value of a union whose one non-null branch is a named
        type given as fastavro's tuple notation, ``(full name, value)``: the writer then takes that branch instead
        of validating the value against each branch to choose one. The bytes written are the same."""
        return _union_tagger(self.parsed, _named_types(self.parsed, {})) or _same


_NAMED = ("record", "error", "enum", "fixed")
Tagger = Callable[[Any], Any]


def _same(datum: Any) -> Any:
    return datum


def _named_types(node: Any, found: dict[str, Any]) -> dict[str, Any]:
    """Every named type defined in a parsed schema, by full name (a parsed schema defines each at first use)."""
    if isinstance(node, list):
        for branch in node:
            _named_types(branch, found)
    elif isinstance(node, dict):
        if node.get("type") in _NAMED:
            found[node["name"]] = node
        for child in (*(f["type"] for f in node.get("fields", ())), node.get("items"), node.get("values")):
            _named_types(child, found)
        if isinstance(node.get("type"), dict | list):
            _named_types(node["type"], found)
    return found


def _union_tagger(node: Any, named: Mapping[str, Any], memo: dict[str, Tagger | None] | None = None) -> Tagger | None:
    """What :attr:`Schema.tag_unions` does for ``node``; None where there is no such union inside."""
    memo = {} if memo is None else memo
    if isinstance(node, str):
        if node not in named:
            return None  # a primitive type
        if node not in memo:
            memo[node] = None  # a recursive reference finds no tagger: its values are left to the writer
            memo[node] = _union_tagger(named[node], named, memo)
        return memo[node]
    if isinstance(node, list):
        return _union_branch(node, named, memo)
    kind = node["type"]
    if isinstance(kind, dict | list):
        return _union_tagger(kind, named, memo)
    if kind in ("record", "error"):
        fields = [(f["name"], _union_tagger(f["type"], named, memo)) for f in node["fields"]]
        return _record_tagger([(name, tag) for name, tag in fields if tag is not None])
    if kind in ("array", "map"):
        inner = _union_tagger(node["items" if kind == "array" else "values"], named, memo)
        if inner is None:
            return None
        if kind == "array":
            return lambda items: [inner(item) for item in items]
        return lambda values: {key: inner(value) for key, value in values.items()}
    return None


def _union_branch(union: list[Any], named: Mapping[str, Any], memo: dict[str, Tagger | None]) -> Tagger | None:
    """Tags the value of a union whose one non-null branch is a named type; None for any other union."""
    branches = [branch for branch in union if branch != "null"]
    if len(branches) != 1:
        return None
    (branch,) = branches
    if isinstance(branch, str) and branch in named:
        name = branch
    elif isinstance(branch, dict) and branch.get("type") in _NAMED:
        name = branch["name"]
    else:
        return None  # a primitive: choosing it costs the writer one type check
    inner = _union_tagger(branch, named, memo)
    if inner is None:
        return lambda value: None if value is None else (name, value)
    return lambda value: None if value is None else (name, inner(value))


def _record_tagger(fields: list[tuple[str, Tagger]]) -> Tagger | None:
    if not fields:
        return None

    def tag(record: Any) -> Any:
        record = dict(record)  # the dump's own dict, but never rely on that
        for name, tagger in fields:
            if name in record:
                record[name] = tagger(record[name])
        return record

    return tag


def _strip_fastavro_keys(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _strip_fastavro_keys(v) for k, v in node.items() if not k.startswith("__")}
    if isinstance(node, list):
        return [_strip_fastavro_keys(v) for v in node]
    return node


def _duplicate_field(node: Any) -> tuple[str, str] | None:
    """The first (record, field) that a record defines twice; fastavro accepts them silently."""
    if isinstance(node, list):
        return next((d for d in map(_duplicate_field, node) if d), None)
    if not isinstance(node, dict):
        return None
    names = [f.get("name") for f in node.get("fields", ())]
    for name in names:
        if names.count(name) > 1:
            return str(node.get("name")), str(name)
    children = [f.get("type") for f in node.get("fields", ())] + [node.get(k) for k in ("type", "items", "values")]
    return next((d for d in map(_duplicate_field, children) if d), None)


def _inline(node: Any, named: Mapping[str, Any], seen: set[str]) -> Any:
    """Replace references to named types by their definition at first use, as Avro's canonical form needs."""
    if isinstance(node, str):
        if node in named and node not in seen:
            return _inline(copy.deepcopy(named[node]), named, seen)
        return node
    if isinstance(node, list):
        return [_inline(v, named, seen) for v in node]
    if isinstance(node, dict):
        if node.get("type") in ("record", "error", "enum", "fixed") and "name" in node:
            seen.add(node["name"])
        out = dict(node)
        if "type" in out:
            out["type"] = _inline(out["type"], named, seen)
        if "fields" in out:
            out["fields"] = [dict(f, type=_inline(f["type"], named, seen)) for f in out["fields"]]
        if "items" in out:
            out["items"] = _inline(out["items"], named, seen)
        if "values" in out:
            out["values"] = _inline(out["values"], named, seen)
        return out
    return node


def _make_schema(name: str, definition: Any, named: Mapping[str, Any]) -> Schema:
    inlined = _inline(definition, named, set())
    parsed = parse_schema(inlined, _write_hint=False)
    canonical = to_parsing_canonical_form(parsed)
    fingerprint = hashlib.sha256(canonical.encode()).digest()
    return Schema(name, parse_schema(inlined), canonical, fingerprint, json.dumps(inlined, separators=(",", ":")))


class SchemaRegistry:
    """Every schema in one folder, by full name and by fingerprint."""

    def __init__(self, directory: Path, *, include_released: bool = True) -> None:
        self.directory = directory
        self._named: dict[str, Any] = {}
        self._topics: dict[str, str] = {}
        self._load()
        self._by_name: dict[str, Schema] = {}
        self._by_fingerprint: dict[bytes, Schema] = {}
        for name in self._named:
            schema = _make_schema(name, self._named[name], self._named)
            self._by_name[name] = schema
            self._by_fingerprint[schema.fingerprint] = schema
        #: Each name's schemas, this tree's first, then each released one that differs (oldest release first).
        self._versions: dict[str, list[Schema]] = {name: [schema] for name, schema in self._by_name.items()}
        if include_released:
            # Writer schemas of released versions, so that older messages decode through Avro resolution.
            released = directory / "released"
            for version in sorted(released.iterdir()) if released.is_dir() else ():
                for schema in SchemaRegistry(version, include_released=False):
                    self._by_fingerprint.setdefault(schema.fingerprint, schema)
                    known = self._versions.setdefault(schema.name, [])
                    if all(schema.fingerprint != s.fingerprint for s in known):
                        known.append(schema)

    def _load(self) -> None:
        pending: dict[Path, Any] = {}
        for path in sorted(self.directory.glob("*.avsc")):
            try:
                pending[path] = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise SchemaError(f"{path}: cannot read schema: {exc}") from exc
        for path, raw in pending.items():
            duplicate = _duplicate_field(raw)
            if duplicate:
                raise SchemaError(f"{path}: record {duplicate[0]} has the field {duplicate[1]!r} twice")
        # Files reference each other's named types; parse until no file makes progress.
        registry: dict[str, Any] = {}
        while pending:
            progress = False
            errors: dict[Path, str] = {}
            for path, raw in list(pending.items()):
                trial = dict(registry)
                try:
                    parsed = parse_schema(raw, named_schemas=trial, _write_hint=False)
                except UnknownType as exc:
                    errors[path] = f"unknown type {exc.name}"
                    continue
                except (SchemaParseException, ValueError, TypeError, KeyError) as exc:
                    raise SchemaError(f"{path}: invalid Avro schema: {exc}") from exc
                registry.update(trial)
                for top in parsed if isinstance(parsed, list) else [parsed]:
                    if isinstance(top, dict) and TOPIC_ATTRIBUTE in top:
                        self._topics[top["name"]] = top[TOPIC_ATTRIBUTE]
                del pending[path]
                progress = True
            if not progress:
                detail = "; ".join(f"{p.name}: {e}" for p, e in errors.items())
                raise SchemaError(f"schemas in {self.directory} cannot be resolved: {detail}")
        self._named = {name: _strip_fastavro_keys(s) for name, s in registry.items()}

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def __iter__(self) -> Iterator[Schema]:
        return iter(self._by_name.values())

    def get(self, name: str) -> Schema:
        try:
            return self._by_name[name]
        except KeyError:
            raise SchemaError(f"no schema named {name!r} in {self.directory}") from None

    def versions(self, name: str) -> tuple[Schema, ...]:
        """The schemas of ``name``: this tree's first, then each released one that differs.

        What a reader tries in turn on a record that carries no schema id (the header, docs/PROTOCOL.md section 3).
        """
        self.get(name)
        return tuple(self._versions[name])

    def by_fingerprint(self, fingerprint: bytes) -> Schema:
        try:
            return self._by_fingerprint[fingerprint]
        except KeyError:
            raise SchemaError(f"unknown schema fingerprint {fingerprint.hex()}") from None

    def learn(self, schema_json: str) -> Schema:
        """Accept a self-contained writer schema (e.g. a newer version announced by a peer) for decoding.

        ``schema_json`` is the full schema (:attr:`Schema.definition`, logical types included), not its
        canonical form, which drops logical types. It is used only as a writer schema, found by its
        fingerprint; the reader schemas stay this tree's.
        """
        try:
            definition = json.loads(schema_json)
            parsed = parse_schema(definition, _write_hint=False)
        except (ValueError, TypeError, KeyError, SchemaParseException, UnknownType) as exc:
            raise SchemaError(f"not a self-contained Avro schema: {exc}") from exc
        if not isinstance(parsed, dict) or "name" not in parsed:
            raise SchemaError("a writer schema must be a named record")
        schema = _make_schema(parsed["name"], _strip_fastavro_keys(parsed), {})
        self._by_fingerprint.setdefault(schema.fingerprint, schema)
        return schema

    @property
    def message_types(self) -> list[str]:
        """Full names of the records that can travel as a message payload."""
        return sorted(self._topics)

    def topic_of(self, message_type: str) -> str:
        """The topic (without prefix) a message type travels on, from its schema's ``op7.topic``."""
        try:
            return self._topics[message_type]
        except KeyError:
            raise SchemaError(f"{message_type!r} is not a message type") from None


@cache
def default_registry() -> SchemaRegistry:
    """The registry of the schemas shipped with this installation (parsed once per process)."""
    return SchemaRegistry(schema_dir())
