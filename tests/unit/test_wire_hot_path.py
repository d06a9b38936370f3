"""What the sending path's shortcuts rely on: they write the same bytes as the plain way they replace."""

from __future__ import annotations

import io
import uuid
from datetime import timedelta
from typing import Any

import pytest
from fastavro import schemaless_writer

from broker.errors import SchemaError
from broker.models import Contact, Envelope, KidnappingAlert, LegalBasis, new_message_id
from broker.models.alert import RansomDemand
from broker.models.handling import WIRE
from broker.wire.codec import encode_datum, write_header
from broker.wire.envelope import NodeIdentity, build, parse_frame, read_header
from broker.wire.schemas import Schema, SchemaRegistry, default_registry
from broker.wire.signing import EncryptionKey
from tests.conftest import EXAMPLES, example, now

_NAMED = ("record", "error", "enum", "fixed")


def _plain(schema: Schema, datum: Any) -> bytes:
    """The bytes fastavro writes when it chooses each union branch itself."""
    out = io.BytesIO()
    schemaless_writer(out, schema.parsed, datum)
    return out.getvalue()


def _definitions(node: Any, found: dict[str, Any]) -> dict[str, Any]:
    """Every named type a parsed schema defines, by full name."""
    if isinstance(node, dict):
        if node.get("type") in _NAMED:
            found[node["name"]] = node
        for value in node.values():
            _definitions(value, found)
    elif isinstance(node, list):
        for item in node:
            _definitions(item, found)
    return found


def _optional_records(schema: Any, named: dict[str, Any], datum: Any, visit: Any) -> Any:
    """``datum`` with ``visit(type name, value)`` in place of each value of a union of null and a named type."""
    if isinstance(schema, str):
        return _optional_records(named[schema], named, datum, visit) if schema in named else datum
    if isinstance(schema, list):
        branch = next(b for b in schema if b != "null")
        name = branch if isinstance(branch, str) else branch.get("name")
        if name in named:
            datum = visit(name, datum)
        return None if datum is None else _optional_records(branch, named, datum, visit)
    if isinstance(schema.get("type"), dict | list):
        return _optional_records(schema["type"], named, datum, visit)
    if schema["type"] == "record":
        fields = {f["name"]: f["type"] for f in schema["fields"]}
        return {k: _optional_records(fields[k], named, v, visit) if k in fields else v for k, v in datum.items()}
    if schema["type"] == "array":
        return [_optional_records(schema["items"], named, item, visit) for item in datum]
    return datum


def _examples() -> list[tuple[Schema, dict[str, Any]]]:
    registry = default_registry()
    out = []
    for type_name in EXAMPLES:
        message = example(type_name)
        out.append((registry.get(message.avro_name), message.model_dump(mode="python", context=WIRE)))
    return out


def test_the_installed_fastavro_honours_tuple_notation() -> None:
    """A tag names the branch: a wrong name is refused, not ignored (the compiled writer reads the tags)."""
    schema = default_registry().get("op7.alert.KidnappingAlert")
    datum = example("KidnappingAlert").model_dump(mode="python", context=WIRE)
    tagged = schema.tag_unions(datum)
    assert isinstance(tagged["last_seen"], tuple) and tagged["last_seen"][0] == "op7.alert.LastSeen"
    with pytest.raises(SchemaError, match="not found"):
        encode_datum(schema, {**tagged, "last_seen": ("op7.alert.Nope", tagged["last_seen"][1])})


def test_tagged_unions_write_the_plain_writers_bytes_for_every_example() -> None:
    """Each example as it is, with every optional record absent, and with every optional record present (filled
    from a value of its type found in any example)."""
    examples = _examples()
    pool: dict[str, Any] = {}

    def collect(name: str, value: Any) -> Any:
        if value is not None:
            pool.setdefault(name, value)
        return value

    for schema, datum in examples:
        _optional_records(schema.parsed, _definitions(schema.parsed, {}), datum, collect)
    # The two optional records no example has.
    pool["op7.Contact"] = Contact(desk="Duty desk", phone="+33100000000", email="desk@example.org").model_dump()
    pool["op7.alert.RansomDemand"] = RansomDemand(demand=None, channel="Telephone").model_dump()
    every: set[str] = set()
    for schema, datum in examples:
        _optional_records(schema.parsed, _definitions(schema.parsed, {}), datum, lambda name, v: every.add(name) or v)
    assert every <= pool.keys(), every - pool.keys()
    filled = absent = 0
    for schema, datum in examples:
        full = _optional_records(
            schema.parsed, _definitions(schema.parsed, {}), datum, lambda name, value: value or pool.get(name)
        )
        empty = _optional_records(schema.parsed, _definitions(schema.parsed, {}), datum, lambda name, value: None)
        filled += full != datum
        absent += empty != datum
        for variant in (datum, full, empty):
            assert encode_datum(schema, schema.tag_unions(variant)) == _plain(schema, variant), schema.name
    assert filled and absent  # the variants do differ from the examples


def test_tagging_leaves_the_dump_alone() -> None:
    schema, datum = _examples()[0]
    before = repr(datum)
    schema.tag_unions(datum)
    assert repr(datum) == before


def _reference_header(envelope: Envelope, registry: SchemaRegistry) -> bytes:
    """How a header was written before: the model's dump, the oldest schema that holds it found by search."""
    datum = envelope.model_dump(exclude={"sender", "key_id"})
    for schema in sorted(registry.versions("op7.Envelope"), key=lambda s: len(s.parsed["fields"])):
        names = {f["name"] for f in schema.parsed["fields"]}
        if all(value is None for name, value in datum.items() if name not in names):
            return _plain(schema, {name: value for name, value in datum.items() if name in names})
    raise AssertionError("no header schema")


def test_headers_built_from_the_fields_are_the_dumps_bytes(fr: NodeIdentity, alert: KidnappingAlert) -> None:
    registry = default_registry()
    seal = {"ES.PN": EncryptionKey.generate().public, "DE.BKA": EncryptionKey.generate().public}
    request = example("MutualLegalAssistanceRequest")
    envelopes = [
        build(fr, alert, now=now())[0],
        build(NodeIdentity(fr.node_id, fr.key, network="exercise"), alert, now=now())[0],
        build(fr, request, now=now(), recipients=tuple(seal), seal_to=seal, conversation_id="conv-1")[0],
        build(fr, alert, now=now(), recipients=("ES.PN",), in_reply_to=new_message_id(now()))[0],
    ]
    basis = LegalBasis.model_validate({"instrument": "Reciprocity", "reference": "Exchange of letters"})
    envelopes.append(envelopes[0].model_copy(update={"legal_basis": (basis,), "case_id": None, "network": "prod"}))
    envelopes.append(envelopes[0].model_copy(update={"expires_at": now() + timedelta(hours=6)}))
    assert envelopes[2].sealed is not None and envelopes[2].legal_basis
    for envelope in envelopes:
        header = write_header(envelope, registry)
        assert header == _reference_header(envelope, registry)
        datum = read_header(header, registry)
        assert Envelope.model_validate({**datum, "sender": envelope.sender, "key_id": envelope.key_id}) == envelope


def test_a_frames_header_is_what_write_header_gives(fr: NodeIdentity, alert: KidnappingAlert) -> None:
    envelope, frame = build(fr, alert, now=now())
    assert parse_frame(frame).header == _reference_header(envelope, default_registry())


def test_a_message_id_is_a_uuidv7_of_its_millisecond() -> None:
    instant = now()
    ids = [new_message_id(instant) for _ in range(256)]
    assert len(set(ids)) == len(ids)
    bits = [uuid.UUID(i).int for i in ids]
    for text, value in zip(ids, bits, strict=True):
        parsed = uuid.UUID(text)
        assert str(parsed) == text and parsed.version == 7 and parsed.variant == uuid.RFC_4122
        assert value >> 80 == int(instant.timestamp() * 1000)
    # Every bit but the version and the variant is random: each is seen as 0 and as 1.
    fixed = (0xF << 76) | (0x3 << 62) | (((1 << 48) - 1) << 80)
    varying = [b for b in range(128) if not fixed >> b & 1]
    assert len(varying) == 74
    assert all(any(v >> b & 1 for v in bits) and not all(v >> b & 1 for v in bits) for b in varying)
