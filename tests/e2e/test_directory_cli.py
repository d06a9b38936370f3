"""A network authority runs the directory with the op7 command; nodes follow it (embedded transport)."""

from __future__ import annotations

import json
import shutil
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from broker.clock import SystemClock
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
    assert (
        "directory version 1 refused (no version held yet, anchor of version 1): 0 valid signature(s) by the "
        "authorities of the anchor, 2 required (threshold 2 of 3 keys; signed by none of them; 2 more needed from"
    ) in refused.stderr
    assert op7("authority", "directory", "sign", draft, "--as", "NL.NA1").returncode == 0
    assert "1 valid signature(s) by the authorities of the anchor" in op7("ops", "directory", "verify", draft).stderr
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
    # FR.GN holds the directory too: what it signs names the network (a frame naming none is refused there).
    assert op7("fr", "directory", "anchor", draft).returncode == 0
    assert op7("fr", "directory", "install", draft).returncode == 0

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
    for home in ("ops", "fr"):
        op7(home, "directory", "anchor", draft)
        assert op7(home, "directory", "install", draft).returncode == 0
    # The sender under the directory refuses first (a receiver's refusal: tests/unit/test_directory.py).
    sent = op7("fr", "send", "CaseInformation", str(EXAMPLE_ALERT.parent / "case-information.json"))
    assert sent.returncode == 1
    assert "FR.GN is not allowed to send op7.case.CaseInformation" in sent.stderr
    # A sender on its own trust store is not of the network: what it signs names none, and is refused as such.
    (net["homes"]["fr"] / "anchor.json").unlink()
    assert op7("fr", "send", "CaseInformation", str(EXAMPLE_ALERT.parent / "case-information.json")).returncode == 0
    refused = op7("ops", "listen", "--timeout", "3")
    assert "names no network; this node is on network 'op7-test' (quarantined)" in refused.stderr


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


def _signed_copy(net: dict[str, Any], source: str, name: str, *edit: str, signers: tuple[str, ...]) -> str:
    """A copy of ``source`` edited by ``op7 directory EDIT...`` (the next version) and signed by ``signers``."""
    target = str(Path(net["draft"]).with_name(name))
    shutil.copyfile(source, target)
    op7 = net["op7"]
    if edit:
        result = op7("authority", "directory", edit[0], target, *edit[1:])
        assert result.returncode == 0, result.stderr
    for authority in signers:
        assert op7("authority", "directory", "sign", target, "--as", authority).returncode == 0
    return target


def test_a_version_is_installed_only_after_the_one_before(net: dict[str, Any]) -> None:
    op7, homes = net["op7"], net["homes"]
    pair = ("NL.NA1", "NL.NA2")
    v1 = _signed_copy(net, net["draft"], "v1.json", signers=pair)
    v2 = _signed_copy(net, v1, "v2.json", "renew", signers=pair)
    v3 = _signed_copy(net, v2, "v3.json", "renew", signers=pair)
    assert op7("ops", "directory", "anchor", v1).returncode == 0
    assert op7("ops", "directory", "install", v1).returncode == 0
    refused = op7("ops", "directory", "install", v3)
    assert refused.returncode == 1
    assert f"op7: refused: {v3}: directory version 3 refused (version 1 held): version 2 must come first" in (
        refused.stderr
    )
    assert sorted(p.name for p in (homes["ops"] / "directory").iterdir()) == ["0000000001.json"]
    assert op7("ops", "directory", "install", v2).returncode == 0
    installed = op7("ops", "directory", "install", v3)
    assert installed.returncode == 0, installed.stderr
    assert "valid: network op7-test version 3, 2 signature(s), thresholds of version 2 and of version 3 met" in (
        installed.stdout
    )


def test_a_handover_needs_the_outgoing_and_the_incoming_authorities(net: dict[str, Any]) -> None:
    op7, homes = net["op7"], net["homes"]
    for node in ("NL.NB1", "NL.NB2"):
        assert op7("authority", "keys", "new", node).returncode == 0
    v1 = _signed_copy(net, net["draft"], "v1.json", signers=("NL.NA1", "NL.NA2"))
    incoming = [a for n in ("NL.NB1", "NL.NB2") for a in ("--authority", str(homes["authority"] / "keys" / f"{n}.pub"))]
    v2 = _signed_copy(net, v1, "v2.json", "authorities", "--threshold", "2", *incoming, signers=("NL.NA1", "NL.NA3"))
    assert op7("ops", "directory", "anchor", v1).returncode == 0
    assert op7("ops", "directory", "install", v1).returncode == 0
    refused = op7("ops", "directory", "install", v2)
    assert refused.returncode == 1
    assert (
        "directory version 2 refused (version 1 held): 0 valid signature(s) by the authorities of version 2 itself, "
        "2 required (threshold 2 of 2 keys; signed by none of them; 2 more needed from"
    ) in refused.stderr
    op7("authority", "directory", "sign", v2, "--as", "NL.NB1")
    assert "1 valid signature(s) by the authorities of version 2 itself" in op7("ops", "directory", "verify", v2).stderr
    op7("authority", "directory", "sign", v2, "--as", "NL.NB2")
    assert op7("ops", "directory", "install", v2).returncode == 0
    # From now on the outgoing authorities alone sign nothing this node takes.
    v3 = _signed_copy(net, v2, "v3.json", "renew", signers=("NL.NA1", "NL.NA2"))
    refused = op7("ops", "directory", "install", v3)
    assert "0 valid signature(s) by the authorities of version 2 held, 2 required" in refused.stderr


def test_an_expired_directory_verifies_nothing(net: dict[str, Any]) -> None:
    op7, draft = net["op7"], net["draft"]
    for bad in ("0s", "-1d", "soon"):
        refused = op7("authority", "directory", "renew", draft, "--expires-in", bad)
        assert refused.returncode == 1 and "op7: error: " in refused.stderr, refused.stderr
        assert "Traceback" not in refused.stderr
    # Long enough for the set-up below on a loaded machine; the test then waits for it to pass.
    assert op7("authority", "directory", "renew", draft, "--expires-in", "45s").returncode == 0
    expires_at = datetime.fromisoformat(json.loads(op7("authority", "directory", "show", draft).stdout)["expires_at"])
    for authority in ("NL.NA1", "NL.NA2"):
        assert op7("authority", "directory", "sign", draft, "--as", authority).returncode == 0
    assert op7("ops", "directory", "anchor", draft).returncode == 0
    assert op7("ops", "directory", "install", draft).returncode == 0
    assert op7("fr", "alert", "send", str(EXAMPLE_ALERT)).returncode == 0
    assert SystemClock().now() < expires_at, "the set-up took longer than the directory's lifetime"
    time.sleep(max(0.0, (expires_at - SystemClock().now()).total_seconds()) + 0.5)
    when = f"{expires_at:%Y-%m-%dT%H:%M:%SZ}"
    refused = op7("ops", "listen", "--timeout", "3")
    assert refused.stdout == ""
    assert f"the network directory held (version 1) expired at {when}" in refused.stderr
    assert "directory-expired" in refused.stderr
    verified = op7("ops", "directory", "verify", draft)
    assert verified.returncode == 1
    assert f"directory held (version 1) expired at {when}; nothing is verified with it until the network " in (
        verified.stderr
    )
    # The authorities renew it: version 2 is in force again.
    assert op7("authority", "directory", "renew", draft, "--expires-in", "30d").returncode == 0
    for authority in ("NL.NA1", "NL.NA2"):
        assert op7("authority", "directory", "sign", draft, "--as", authority).returncode == 0
    assert op7("ops", "directory", "install", draft).returncode == 0


def test_a_follower_takes_versions_published_out_of_order(net: dict[str, Any], tmp_path: Path) -> None:
    op7, homes = net["op7"], net["homes"]
    pair = ("NL.NA1", "NL.NA2")
    v1 = _signed_copy(net, net["draft"], "v1.json", signers=pair)
    v2 = _signed_copy(net, v1, "v2.json", "renew", signers=pair)
    v3 = _signed_copy(net, v2, "v3.json", "renew", signers=pair)
    second = run_op7(tmp_path / "authority2", "directory", "anchor", v1)
    assert second.returncode == 0
    for home in ("authority", "ops"):
        assert op7(home, "directory", "anchor", v1).returncode == 0
    assert op7("authority", "directory", "publish", v1).returncode == 0
    assert op7("authority", "directory", "install", v2).returncode == 0  # kept, not yet published
    assert op7("authority", "directory", "publish", v3).returncode == 0
    # The follower's refusal is told without -v too (a node stuck on an old directory must not be silent).
    told = op7("ops", "listen", "--timeout", "2")
    assert "refused a directory from" in told.stderr and "version 2 must come first" in told.stderr
    waiting = op7("ops", "listen", "-v", "--timeout", "2")
    assert "directory version 3 waits for version 2 (version 1 held)" in waiting.stderr
    kept = homes["ops"] / "directory"
    assert sorted(p.name for p in kept.iterdir()) == ["0000000001.json"]
    assert run_op7(tmp_path / "authority2", "directory", "install", v1).returncode == 0
    assert run_op7(tmp_path / "authority2", "directory", "publish", v2).returncode == 0
    assert op7("ops", "listen", "--timeout", "2").returncode == 0
    assert sorted(p.name for p in kept.iterdir()) == [f"{v:010d}.json" for v in (1, 2, 3)]
