"""A network authority runs the directory with the op7 command; nodes follow it (embedded transport)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import EXAMPLE_ALERT, run_op7


@pytest.fixture
def net(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    monkeypatch.setenv("OP7_EMBEDDED_PATH", str(tmp_path / "shared.db"))
    homes = {name: tmp_path / name for name in ("authority", "fr", "ops")}

    def op7(home: str, *args: str) -> Any:
        return run_op7(homes[home], *args)

    for node in ("NL.NA1", "NL.NA2", "NL.NA3"):
        assert op7("authority", "keys", "new", node).returncode == 0
    assert op7("fr", "keys", "new", "FR.GN").returncode == 0
    draft = str(tmp_path / "directory.json")
    cards = [str(homes["authority"] / "keys" / f"NL.NA{i}.pub") for i in (1, 2, 3)]
    result = op7(
        "authority",
        "directory",
        "create",
        draft,
        "--network",
        "op7-test",
        "--threshold",
        "2",
        *[a for c in cards for a in ("--authority", c)],
    )
    assert result.returncode == 0, result.stderr
    result = op7(
        "authority",
        "directory",
        "add-node",
        draft,
        str(homes["fr"] / "keys" / "FR.GN.pub"),
        "--agency",
        "Gendarmerie nationale",
        "--role",
        "NationalNode",
        "--allow",
        "KidnappingAlert",
    )
    assert result.returncode == 0, result.stderr
    return {"op7": op7, "draft": draft, "homes": homes}


def test_unsigned_or_under_signed_directories_are_refused(net: dict[str, Any]) -> None:
    op7, draft = net["op7"], net["draft"]
    assert op7("ops", "directory", "anchor", draft).returncode == 0
    refused = op7("ops", "directory", "install", draft)
    assert refused.returncode == 1
    assert "0 valid authority signature(s); 2 are required" in refused.stderr
    assert op7("authority", "directory", "sign", draft, "--as", "NL.NA1").returncode == 0
    assert "1 valid authority signature(s)" in op7("ops", "directory", "verify", draft).stderr
    assert op7("authority", "directory", "sign", draft, "--as", "NL.NA3").returncode == 0
    ok = op7("ops", "directory", "install", draft)
    assert ok.returncode == 0, ok.stderr
    assert "valid: network op7-test version 1" in ok.stdout


def test_nodes_follow_the_directory_and_a_revocation(net: dict[str, Any]) -> None:
    op7, draft, homes = net["op7"], net["draft"], net["homes"]
    for authority in ("NL.NA1", "NL.NA2"):
        assert op7("authority", "directory", "sign", draft, "--as", authority).returncode == 0
    assert op7("ops", "directory", "anchor", draft).returncode == 0
    assert op7("authority", "directory", "anchor", draft).returncode == 0
    published = op7("authority", "directory", "publish", draft)
    assert published.returncode == 0, published.stderr
    assert "published to op7.directory" in published.stdout

    assert op7("fr", "alert", "send", str(EXAMPLE_ALERT)).returncode == 0
    heard = op7("ops", "listen", "--as", "NL.NCC", "--json", "--timeout", "3")
    assert heard.returncode == 0, heard.stderr
    (line,) = heard.stdout.splitlines()
    assert json.loads(line)["envelope"]["sender"] == "FR.GN"
    assert (homes["ops"] / "directory" / "0000000001.json").exists()  # followed from the topic and kept

    key_id = json.loads((homes["fr"] / "keys" / "FR.GN.pub").read_text())["key_id"]
    assert (
        op7("authority", "directory", "revoke-key", draft, "FR.GN", key_id, "--reason", "laptop lost").returncode == 0
    )
    for authority in ("NL.NA2", "NL.NA3"):
        assert op7("authority", "directory", "sign", draft, "--as", authority).returncode == 0
    assert op7("authority", "directory", "publish", draft).returncode == 0
    # The listener learns version 2 from the topic (a long-running one would simply see it arrive).
    assert op7("ops", "listen", "--as", "NL.NCC", "--timeout", "2").returncode == 0
    kept = homes["ops"] / "directory" / "0000000002.json"
    assert op7("ops", "directory", "show", str(kept)).stdout.count('"version": 2') == 1
    assert op7("fr", "alert", "send", str(EXAMPLE_ALERT)).returncode == 0
    refused = op7("ops", "listen", "--as", "NL.NCC", "--timeout", "3")
    assert refused.stdout == ""
    assert "was revoked at" in refused.stderr and "laptop lost" in refused.stderr
    listed = op7("ops", "keys", "list", "--json")
    assert json.loads(listed.stdout) == [{"node": "FR.GN", "key_id": key_id, "state": "revoked"}]


def test_a_type_the_directory_does_not_allow_is_refused(net: dict[str, Any]) -> None:
    op7, draft = net["op7"], net["draft"]
    for authority in ("NL.NA1", "NL.NA2"):
        op7("authority", "directory", "sign", draft, "--as", authority)
    op7("ops", "directory", "anchor", draft)
    assert op7("ops", "directory", "install", draft).returncode == 0
    sent = op7("fr", "send", "CaseInformation", str(EXAMPLE_ALERT.parent / "case-information.json"))
    assert sent.returncode == 0
    refused = op7("ops", "listen", "--timeout", "3")
    assert "FR.GN is not allowed to send op7.case.CaseInformation" in refused.stderr


def test_a_revocation_time_is_an_instant_with_its_zone_or_an_offset(net: dict[str, Any]) -> None:
    op7, draft, homes = net["op7"], net["draft"], net["homes"]
    key_id = json.loads((homes["fr"] / "keys" / "FR.GN.pub").read_text())["key_id"]
    revoke = ("authority", "directory", "revoke-key", draft, "FR.GN", key_id, "--reason", "laptop lost")
    for bad in ("yesterday", "2026-12-01T10:00:00"):
        refused = op7(*revoke, "--at", bad)
        assert refused.returncode == 1, refused.stderr
        assert f"op7: error: --at {bad}: give a time with its zone" in refused.stderr
        assert "Traceback" not in refused.stderr and "internal error" not in refused.stderr
    assert op7(*revoke, "--at=-2h").returncode == 0
    shown = json.loads(op7("authority", "directory", "show", draft).stdout)
    (entry,) = [k for n in shown["nodes"] for k in n["signing_keys"] if k["key_id"] == key_id]
    assert entry["revoked_at"] is not None and entry["revocation_reason"] == "laptop lost"
