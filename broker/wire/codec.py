"""Model <-> Avro bytes: schemaless binary encoding, the schema identified by fingerprint in the envelope."""

from __future__ import annotations

import io
from typing import Any

from fastavro import schemaless_reader, schemaless_writer
from pydantic import ValidationError

from broker.errors import DecodeError, SchemaError
from broker.models import MESSAGE_MODELS, Message
from broker.models.handling import WIRE
from broker.models.inputs import first_problem
from broker.wire.schemas import Schema, SchemaRegistry, default_registry

__all__ = ["decode", "decode_datum", "encode", "encode_datum"]


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
    return schema, encode_datum(schema, message.model_dump(mode="python", context=WIRE))


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
