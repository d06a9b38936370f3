from __future__ import annotations

import json

import pytest

from broker.errors import DecodeError, SchemaError
from broker.models import MESSAGE_MODELS, KidnappingAlert
from broker.wire.codec import decode, encode
from broker.wire.schemas import SchemaRegistry, default_registry, schema_dir


def test_alert_round_trips_through_avro(alert: KidnappingAlert) -> None:
    schema, data = encode(alert)
    assert schema.name == "op7.alert.KidnappingAlert"
    assert decode(schema.name, schema.fingerprint, data) == alert


def test_encoding_is_deterministic(alert: KidnappingAlert) -> None:
    assert encode(alert)[1] == encode(KidnappingAlert.model_validate(alert.model_dump()))[1]


def test_every_message_model_has_a_schema() -> None:
    registry = default_registry()
    assert set(MESSAGE_MODELS) == set(registry.message_types)


def test_fingerprint_is_sha256_of_canonical_form() -> None:
    import hashlib

    schema = default_registry().get("op7.alert.KidnappingAlert")
    assert schema.fingerprint == hashlib.sha256(schema.canonical.encode()).digest()
    # The canonical form is self-contained: named types from other files are inlined.
    assert '"name":"op7.Handling"' in schema.canonical
    assert "doc" not in json.loads(schema.canonical)


def test_fingerprint_ignores_docs_and_whitespace(tmp_path: object) -> None:
    from pathlib import Path

    out = Path(str(tmp_path))
    for f in schema_dir().glob("*.avsc"):
        data = json.loads(f.read_text())
        if isinstance(data, dict):
            data["doc"] = "changed documentation"
        (out / f.name).write_text(json.dumps(data, indent=7))
    copy = SchemaRegistry(out)
    name = "op7.alert.KidnappingAlert"
    assert copy.get(name).fingerprint == default_registry().get(name).fingerprint


@pytest.mark.parametrize("garbage", [b"", b"\x00", b"\xff" * 40])
def test_garbage_payload_is_a_decode_error(garbage: bytes) -> None:
    schema = default_registry().get("op7.alert.KidnappingAlert")
    with pytest.raises(DecodeError):
        decode(schema.name, schema.fingerprint, garbage)


def test_trailing_bytes_are_refused(alert: KidnappingAlert) -> None:
    schema, data = encode(alert)
    with pytest.raises(DecodeError, match="trailing"):
        decode(schema.name, schema.fingerprint, data + b"\x00")


def test_unknown_fingerprint_and_type(alert: KidnappingAlert) -> None:
    schema, data = encode(alert)
    with pytest.raises(DecodeError) as info:
        decode(schema.name, b"\x00" * 32, data)
    assert info.value.reason == "unknown-schema"
    with pytest.raises(DecodeError) as info:
        decode("op7.Nope", schema.fingerprint, data)
    assert info.value.reason == "unknown-type"


def test_schema_registry_reports_unresolvable_references(tmp_path: object) -> None:
    from pathlib import Path

    out = Path(str(tmp_path))
    (out / "a.avsc").write_text(json.dumps({"type": "record", "name": "A", "fields": [{"name": "b", "type": "B"}]}))
    with pytest.raises(SchemaError, match="unknown type B"):
        SchemaRegistry(out)
    (out / "a.avsc").write_text("{not json")
    with pytest.raises(SchemaError, match=r"a\.avsc"):
        SchemaRegistry(out)


def test_a_field_defined_twice_is_refused(tmp_path: object) -> None:
    from pathlib import Path

    out = Path(str(tmp_path))
    record = {"type": "record", "name": "A", "fields": [{"name": "x", "type": "int"}, {"name": "x", "type": "int"}]}
    (out / "a.avsc").write_text(json.dumps(record))
    with pytest.raises(SchemaError, match="record A has the field 'x' twice"):
        SchemaRegistry(out)
