"""docs/PROTOCOL.md cannot drift from schemas/ and tests/vectors/: generated parts are checked, tables compared."""

from __future__ import annotations

import re
import subprocess
import sys

from broker.wire.schemas import default_registry
from tests.conftest import ROOT

DOC = ROOT / "docs" / "PROTOCOL.md"


def _section(title: str) -> str:
    text = DOC.read_text(encoding="utf-8")
    start = text.index(title)
    end = text.find("\n## ", start + len(title))
    return text[start : end if end != -1 else len(text)]


def test_generated_parts_match_the_schemas_and_vectors() -> None:
    check = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen-protocol"), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert check.returncode == 0, check.stdout + check.stderr


def test_every_fingerprint_in_the_document_is_a_current_schema() -> None:
    registry = default_registry()
    current = {registry.get(name).fingerprint_hex for name in registry.message_types}
    current |= {schema.fingerprint_hex for schema in registry.versions("op7.Envelope")}  # every header version (3)
    written = set(re.findall(r"`([0-9a-f]{64})`", DOC.read_text(encoding="utf-8")))
    assert written - current == set(), "stale fingerprints in PROTOCOL.md"
    assert registry.get("op7.Envelope").fingerprint_hex in _section("## 3. Header")
    assert current <= written


def test_the_catalogue_lists_every_message_type_with_its_topic() -> None:
    registry = default_registry()
    rows = re.findall(r"^\| `(op7\.[A-Za-z.]+)` \| ([a-z]+) \|", _section("## 8. Message catalogue"), re.M)
    assert sorted(rows) == sorted((name, registry.topic_of(name)) for name in registry.message_types)


def test_the_header_table_lists_every_envelope_field() -> None:
    fields = [f["name"] for f in default_registry().get("op7.Envelope").parsed["fields"]]
    listed = re.findall(r"^\| `([a-z_]+)` +\|", _section("## 3. Header"), re.M)
    assert listed == fields


def test_the_refusal_reasons_of_the_vectors_are_documented() -> None:
    import json

    reasons = {
        json.loads(p.read_text())["expected"].get("reason")
        for p in (ROOT / "tests" / "vectors").rglob("*.json")
        if p.name not in ("keys.json", "rfc8032-ed25519.json")
    } - {None}
    documented = set(re.findall(r"`([a-z][a-z-]+)`", _section("## 6. Refusal and quarantine")))
    assert reasons <= documented
