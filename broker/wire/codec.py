"""Model <-> Avro bytes: schemaless binary encoding of payloads (the schema identified by fingerprint in the header)
and of headers (written with the oldest header schema that holds them, read with the one that fits, §3)."""

from __future__ import annotations

import io
from functools import lru_cache
from typing import Any

from fastavro import schemaless_reader, schemaless_writer
from pydantic import BaseModel, ValidationError

from broker.errors import ConfigError, DecodeError, SchemaError
from broker.models import MESSAGE_MODELS, Envelope, Message
from broker.models.handling import WIRE
from broker.models.inputs import first_problem
from broker.wire.schemas import Schema, SchemaRegistry, default_registry

__all__ = ["decode", "decode_datum", "encode", "encode_datum", "read_header", "write_header"]

_ENVELOPE = "op7.Envelope"


def encode_datum(schema: Schema, datum: Any) -> bytes:
    """Avro binary encoding of ``datum`` with ``schema``."""
    buf = io.BytesIO()
    try:
        schemaless_writer(buf, schema.parsed, datum)
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise SchemaError(f"cannot encode as {schema.name}: {exc}") from exc
    return buf.getvalue()


def decode_datum(writer: Schema, data: bytes, reader: Schema | None = None) -> Any:
    """Decode Avro binary written with ``writer``, resolved to ``reader`` (Avro schema resolution)."""
    buf = io.BytesIO(data)
    try:
        reader_schema = None if reader is None or reader.fingerprint == writer.fingerprint else reader.parsed
        datum = schemaless_reader(buf, writer.parsed, reader_schema)
    except Exception as exc:  # fastavro raises many types on garbage; all mean one thing here.
        raise DecodeError(f"bytes do not decode as {writer.name}: {exc.__class__.__name__}: {exc}") from exc
    if buf.tell() != len(data):
        raise DecodeError(f"{len(data) - buf.tell()} trailing bytes after the {writer.name} datum")
    return datum


def encode(message: Message, registry: SchemaRegistry | None = None) -> tuple[Schema, bytes]:
    """Encode a payload model with the current schema of its type; returns the schema used and the bytes."""
    schema = (registry or default_registry()).get(message.avro_name)
    # The wire context: the one dump that keeps what stays out of others (a forwarded original's content key).
    datum = message.model_dump(mode="python", context=WIRE)
    # The model is validated: its optional records name their union branch rather than have the writer validate
    # them again against each branch to find it.
    return schema, encode_datum(schema, schema.tag_unions(datum))


def decode(message_type: str, fingerprint: bytes, data: bytes, registry: SchemaRegistry | None = None) -> Message:
    """Decode payload bytes written with the schema ``fingerprint`` into the model of ``message_type``."""
    registry = registry or default_registry()
    model = MESSAGE_MODELS.get(message_type)
    if model is None:
        raise DecodeError(f"unknown message type {message_type!r}", reason="unknown-type")
    try:
        writer = registry.by_fingerprint(fingerprint)
    except SchemaError as exc:
        raise DecodeError(str(exc), reason="unknown-schema") from exc
    if writer.name != message_type:
        raise DecodeError(
            f"schema {fingerprint.hex()[:16]} is {writer.name}, not {message_type}", reason="unknown-schema"
        )
    datum = decode_datum(writer, data, registry.get(message_type))
    try:
        return model.model_validate(datum)
    except ValidationError as exc:
        raise DecodeError(f"{message_type} fails validation: {first_problem(exc)}", reason="invalid-content") from exc


def write_header(envelope: Envelope, registry: SchemaRegistry) -> bytes:
    """The header of ``envelope``, written with the oldest header schema that holds every field it sets (§3): a
    header without a network is the bytes release 1 wrote, which every reader of format version 1 reads."""
    for schema, lacks in _header_writers(registry):
        if all(getattr(envelope, name) is None for name in lacks):
            # The datum from the fields as they are (what model_dump gives, at a fraction of its cost); the sender
            # and key id, in the frame's prefix, are not in the schema and so not written.
            datum = dict(envelope.__dict__)
            for name in _HEADER_RECORDS:
                datum[name] = _dumped(datum[name])
            return encode_datum(schema, schema.tag_unions(datum))
    raise ConfigError(f"no {_ENVELOPE} schema holds this header")  # pragma: no cover - the current one holds all


#: The header fields that hold records (or arrays of them); every other field's value is written as it is.
_HEADER_RECORDS = ("handling", "legal_basis", "sealed")


@lru_cache(maxsize=16)
def _header_writers(registry: SchemaRegistry) -> tuple[tuple[Schema, tuple[str, ...]], ...]:
    """The header schemas, oldest (fewest fields) first, each with the header fields it lacks: worked out once per
    registry (its schemas do not change once loaded) rather than on every send."""
    fields = [name for name in Envelope.model_fields if name not in ("sender", "key_id")]
    oldest_first = sorted(registry.versions(_ENVELOPE), key=lambda s: len(s.parsed["fields"]))
    return tuple((s, tuple(n for n in fields if n not in _names(s))) for s in oldest_first)


def _names(schema: Schema) -> set[str]:
    return {f["name"] for f in schema.parsed["fields"]}


def _dumped(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump()
    if isinstance(value, tuple):
        return tuple(_dumped(item) for item in value)
    return value


def read_header(header: bytes, registry: SchemaRegistry | None = None) -> dict[str, Any]:
    """The header's fields, read with the header schema that consumes exactly its bytes (§3); ``undecodable``.

    A header carries no schema id: the header schemas differ only by nullable fields appended at the end, so at
    most one of them reads the bytes to their last byte (a shorter one leaves bytes, a longer one runs out).
    Fields a shorter schema lacks read as their default (null).
    """
    readers = _header_readers(registry or default_registry())
    start = _last_fit[0] if _last_fit[0] < len(readers) else 0
    errors: dict[int, DecodeError] = {}
    for index in (start, *(i for i in range(len(readers)) if i != start)):
        schema, lacks = readers[index]
        try:
            datum: dict[str, Any] = decode_datum(schema, header)
        except DecodeError as exc:
            errors[index] = exc
            continue
        _last_fit[0] = index
        datum.update(lacks)
        return datum
    raise errors[0]  # what the current header schema finds wrong


@lru_cache(maxsize=16)
def _header_readers(registry: SchemaRegistry) -> tuple[tuple[Schema, dict[str, Any]], ...]:
    """The header schemas as ``SchemaRegistry.versions`` orders them, each with the defaults of the current fields
    it lacks: what Avro's resolution would give them, faster than resolving (the schema gate, broker.wire.compat,
    lets the header gain only fields with a default)."""
    schemas = registry.versions(_ENVELOPE)
    fields = schemas[0].parsed["fields"]
    return tuple((s, {f["name"]: f.get("default") for f in fields if f["name"] not in _names(s)}) for s in schemas)


#: Which of the header schemas (their index in ``SchemaRegistry.versions``) read the last header: tried first, since
#: the headers a node reads are nearly all written with one schema, and a failed try costs a decoding error. Only
#: the order of the tries: at most one schema reads a header to its last byte.
_last_fit = [0]
