"""Schema evolution: the compatibility check against released versions, and decoding across versions."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from broker.errors import DecodeError
from broker.models import KidnappingAlert
from broker.wire.codec import decode, decode_datum, encode_datum
from broker.wire.compat import check_tree
from broker.wire.schemas import SchemaRegistry, schema_dir

ALERT = "op7.alert.KidnappingAlert"


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A copy of the schema tree whose current state is released as version 1."""
    root = tmp_path / "schemas"
    root.mkdir()
    for f in schema_dir().glob("*.avsc"):
        shutil.copy(f, root / f.name)
    (root / "released" / "1").mkdir(parents=True)
    for f in root.glob("*.avsc"):
        shutil.copy(f, root / "released" / "1" / f.name)
    return root


def edit(root: Path, filename: str, change: Callable[[Any], None]) -> None:
    path = root / filename
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data, indent=2))


def fields(record: dict[str, Any]) -> list[dict[str, Any]]:
    return record["fields"]  # type: ignore[no-any-return]


def field(record: dict[str, Any], name: str) -> dict[str, Any]:
    return next(f for f in fields(record) if f["name"] == name)


def breaks(root: Path) -> list[str]:
    return [str(p) for p in check_tree(root)[2]]


def test_the_shipped_tree_is_compatible_with_its_releases() -> None:
    _, versions, problems = check_tree(schema_dir())
    assert versions, "at least one released version is kept under schemas/released/"
    assert problems == []


def test_optional_field_with_default_is_compatible(tree: Path) -> None:
    edit(
        tree,
        "alert.avsc",
        lambda d: fields(d).append({"name": "hotline", "type": ["null", "string"], "default": None}),
    )
    assert breaks(tree) == []


def test_new_field_without_default_breaks_backward(tree: Path) -> None:
    edit(tree, "alert.avsc", lambda d: fields(d).append({"name": "hotline", "type": "string"}))
    assert breaks(tree) == [
        f"backward (new reads release 1): {ALERT}.hotline: field is read but not written, and the reader has no default"
    ]


def test_removed_required_field_breaks_forward(tree: Path) -> None:
    edit(tree, "alert.avsc", lambda d: fields(d).remove(field(d, "headline")))
    assert breaks(tree) == [
        f"forward (release 1 reads new): {ALERT}.headline: field is read but not written, and the reader has no default"
    ]


def test_nested_type_change_names_the_nested_field(tree: Path) -> None:
    def change(d: Any) -> None:
        victim = field(d, "victims")["type"]["items"]
        field(victim, "height_cm")["type"] = ["null", "string"]

    edit(tree, "alert.avsc", change)
    problems = breaks(tree)
    assert len(problems) == 2
    assert all(f"{ALERT}.victims[].height_cm" in p for p in problems)
    assert any(p.startswith("backward") and "matches no branch" in p for p in problems)


def test_promotion_is_one_way(tree: Path) -> None:
    def change(d: Any) -> None:
        victim = field(d, "victims")["type"]["items"]
        field(victim, "height_cm")["type"] = ["null", "long"]

    edit(tree, "alert.avsc", change)
    problems = breaks(tree)
    assert len(problems) == 1 and problems[0].startswith("forward")


def test_removed_enum_symbol_without_default_breaks(tree: Path) -> None:
    edit(tree, "alert.avsc", lambda d: field(d, "msg_type")["type"]["symbols"].remove("Cancel"))
    problems = breaks(tree)
    assert problems == [
        f"backward (new reads release 1): {ALERT}.msg_type: enum op7.alert.AlertMessageType lacks "
        "symbol(s) Cancel and has no default"
    ]


def test_added_enum_symbol_is_fine_only_with_a_reader_default(tree: Path) -> None:
    edit(tree, "alert.avsc", lambda d: field(d, "severity")["type"]["symbols"].append("Critical"))
    assert breaks(tree) == []  # Severity has a default: old readers map Critical to Unknown
    edit(tree, "alert.avsc", lambda d: field(d, "msg_type")["type"]["symbols"].append("Test"))
    assert any("forward" in p and "lacks symbol(s) Test" in p for p in breaks(tree))


def test_the_header_only_gains_nullable_fields_at_its_end(tree: Path) -> None:
    """A header carries no schema id (PROTOCOL.md 3): released fields stay first, added ones are null by default."""
    edit(tree, "envelope.avsc", lambda d: fields(d).append({"name": "x", "type": ["null", "int"], "default": None}))
    assert breaks(tree) == []
    edit(tree, "envelope.avsc", lambda d: fields(d).append({"name": "y", "type": "int", "default": 0}))
    assert any("op7.Envelope.y" in p and "union with null first, null by default" in p for p in breaks(tree))
    edit(tree, "envelope.avsc", lambda d: fields(d).pop())
    edit(tree, "envelope.avsc", lambda d: fields(d).insert(0, fields(d).pop()))
    assert any("released header fields must stay first" in p for p in breaks(tree))


def test_changed_envelope_and_removed_type_are_breaks(tree: Path) -> None:
    edit(tree, "envelope.avsc", lambda d: field(d, "created_at").update(type="string"))
    (tree / "report.avsc").unlink()
    problems = breaks(tree)
    assert any("op7.Envelope.created_at" in p and "type changed" in p for p in problems)
    assert any("op7.report.NationalReport: message type removed" in p for p in problems)


def test_compatible_versions_decode_across_versions(tree: Path, alert: KidnappingAlert) -> None:
    """An older writer read by the newer reader, and a newer writer read by an older node."""
    edit(
        tree,
        "alert.avsc",
        lambda d: fields(d).append({"name": "hotline", "type": ["null", "string"], "default": None}),
    )
    newer = SchemaRegistry(tree)  # current tree + released writer schemas
    older = SchemaRegistry(tree / "released" / "1")
    datum = alert.model_dump()

    old_bytes = encode_datum(older.get(ALERT), datum)
    writer = newer.by_fingerprint(older.get(ALERT).fingerprint)  # released writer schemas are known
    resolved = decode_datum(writer, old_bytes, newer.get(ALERT))
    assert resolved["hotline"] is None  # filled from the reader's default
    assert KidnappingAlert.model_validate({k: v for k, v in resolved.items() if k != "hotline"}) == alert

    new_writer = newer.get(ALERT)
    new_bytes = encode_datum(new_writer, {**datum, "hotline": "+33100000000"})
    with pytest.raises(DecodeError) as info:
        decode(ALERT, new_writer.fingerprint, new_bytes, older)
    assert info.value.reason == "unknown-schema"
    older.learn(new_writer.definition)
    assert decode(ALERT, new_writer.fingerprint, new_bytes, older) == alert  # hotline dropped by resolution
    assert decode_datum(new_writer, new_bytes)["hotline"] == "+33100000000"


def test_logical_type_change_is_a_break_even_though_the_fingerprint_is_unchanged(tree: Path) -> None:
    edit(tree, "alert.avsc", lambda d: field(d, "sent_at")["type"].update(logicalType="timestamp-millis"))
    assert SchemaRegistry(tree).get(ALERT).fingerprint == SchemaRegistry(tree / "released" / "1").get(ALERT).fingerprint
    problems = breaks(tree)
    assert len(problems) == 2
    assert all("sent_at: logical type changed" in p for p in problems)
