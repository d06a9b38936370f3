"""What `op7 send` and `op7 reply` refuse before anything leaves, with one home per node (embedded transport)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import EXAMPLE_ALERT, ROOT, cli_of, trusting_homes

EXAMPLES = ROOT / "examples"
CONTACT = {
    "FR.GN": ("--agency", "Gendarmerie nationale", "--desk", "CORG", "--phone", "+33140000000"),
    "ES.PN": ("--agency", "Policia Nacional", "--desk", "Sala del 091", "--phone", "+34910000000"),
}


@pytest.fixture
def op7(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """FR.GN and ES.PN, each in its own home, each trusting the other's key card."""
    monkeypatch.setenv("OP7_EMBEDDED_PATH", str(tmp_path / "shared.db"))
    homes = trusting_homes(tmp_path, {"fr": "FR.GN", "es": "ES.PN"})
    return cli_of({**homes, "authority": tmp_path / "authority"})


def _with(tmp_path: Path, name: str, **changes: Any) -> str:
    data = json.loads((EXAMPLES / name).read_text()) | changes
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return str(path)


def test_a_mistyped_recipient_is_refused_naming_it(op7: Any, tmp_path: Path) -> None:
    data = json.loads((EXAMPLES / "collaboration-request.json").read_text())
    data["requested_authority"]["node"] = "DE.BKA"
    path = tmp_path / "typo.json"
    path.write_text(json.dumps(data))
    refused = op7("fr", "send", "CollaborationRequest", str(path))
    assert refused.returncode == 1
    assert "unknown recipient DE.BKA: not in the trust store" in refused.stderr
    to = op7("fr", "send", "CaseInformation", str(EXAMPLES / "case-information.json"), "--to", "DE.BKA")
    assert to.returncode == 1 and "unknown recipient DE.BKA" in to.stderr
    assert op7("fr", "exchanges", "list", "--as", "FR.GN").stdout.startswith("no exchanges")


def test_a_red_request_is_sealed_and_its_answer_goes_back_sealed_by_reply_only(op7: Any) -> None:
    sent = op7("fr", "send", "MutualLegalAssistanceRequest", str(EXAMPLES / "mla-request.json"), "--json")
    assert sent.returncode == 0, sent.stderr
    assert json.loads(sent.stdout)["sealed"] is True  # TLP:RED: sealed to ES.PN without --seal
    # The answer is not published to every subscriber: `op7 send` refuses it and names the command that answers.
    to_all = op7("es", "send", "MutualLegalAssistanceResponse", str(EXAMPLES / "mla-response.json"))
    assert to_all.returncode == 1
    assert "answers a request" in to_all.stderr and "op7 reply ID MutualLegalAssistanceResponse" in to_all.stderr
    assert op7("es", "inbox", "watch", "--as", "ES.PN", "--timeout", "2", *CONTACT["ES.PN"]).returncode == 0
    request_id = json.loads(sent.stdout)["message_id"]
    answered = op7(
        "es", "reply", request_id, "MutualLegalAssistanceResponse", str(EXAMPLES / "mla-response.json"), "--as", "ES.PN"
    )
    assert answered.returncode == 0, answered.stderr
    assert answered.stdout.rstrip().endswith("to FR.GN (sealed)")


def test_an_answer_of_another_kind_does_not_answer_a_request(op7: Any) -> None:
    sent = op7("fr", "send", "CollaborationRequest", str(EXAMPLES / "collaboration-request.json"), "--json")
    assert sent.returncode == 0, sent.stderr
    request_id = json.loads(sent.stdout)["message_id"]
    assert op7("es", "inbox", "watch", "--as", "ES.PN", "--timeout", "2", *CONTACT["ES.PN"]).returncode == 0
    mla = str(EXAMPLES / "mla-response.json")
    wrong = op7("es", "reply", request_id, "MutualLegalAssistanceResponse", mla, "--as", "ES.PN")
    assert wrong.returncode == 1
    assert "MutualLegalAssistanceResponse does not answer a CollaborationRequest" in wrong.stderr
    listed = json.loads(op7("es", "exchanges", "list", "--as", "ES.PN", "--json").stdout)
    assert [r["state"] for r in listed if r["message_id"] == request_id] == ["received"]
    right = str(EXAMPLES / "collaboration-response.json")
    assert op7("es", "reply", request_id, "CollaborationResponse", right, "--as", "ES.PN").returncode == 0
    assert op7("fr", "inbox", "watch", "--as", "FR.GN", "--timeout", "2", *CONTACT["FR.GN"]).returncode == 0
    listed = json.loads(op7("fr", "exchanges", "list", "--as", "FR.GN", "--json").stdout)
    assert [r["state"] for r in listed if r["message_id"] == request_id] == ["answered"]


def test_own_revoked_key_and_a_type_not_allowed_are_refused_before_sending(op7: Any, tmp_path: Path) -> None:
    homes = op7.homes
    for node in ("NL.NA1", "NL.NA2", "NL.NA3"):
        assert op7("authority", "keys", "new", node).returncode == 0
    draft = str(tmp_path / "directory.json")
    cards = [a for i in (1, 2, 3) for a in ("--authority", str(homes["authority"] / "keys" / f"NL.NA{i}.pub"))]
    create = ("directory", "create", draft, "--network", "op7-test", "--threshold", "2", *cards)
    assert op7("authority", *create).returncode == 0
    fr_card = str(homes["fr"] / "keys" / "FR.GN.pub")
    node = ("--agency", "GN", "--role", "NationalNode", "--allow", "KidnappingAlert")
    added = op7("authority", "directory", "add-node", draft, fr_card, *node)
    assert added.returncode == 0, added.stderr

    def install(*signers: str) -> None:
        for authority in signers:
            assert op7("authority", "directory", "sign", draft, "--as", authority).returncode == 0
        installed = op7("fr", "directory", "install", draft)
        assert installed.returncode == 0, installed.stderr

    assert op7("fr", "directory", "anchor", draft).returncode == 0
    install("NL.NA1", "NL.NA2")
    case = op7("fr", "send", "CaseInformation", str(EXAMPLES / "case-information.json"))
    assert case.returncode == 1
    assert "FR.GN cannot send CaseInformation" in case.stderr and "(type-not-allowed)" in case.stderr
    assert op7("fr", "alert", "send", str(EXAMPLE_ALERT)).returncode == 0  # allowed, key valid

    key_id = json.loads(Path(fr_card).read_text())["key_id"]
    revoke = ("directory", "revoke-key", draft, "FR.GN", key_id, "--reason", "laptop lost")
    assert op7("authority", *revoke).returncode == 0
    install("NL.NA2", "NL.NA3")
    revoked = op7("fr", "alert", "send", str(EXAMPLE_ALERT))
    assert revoked.returncode == 1
    assert f"FR.GN cannot send KidnappingAlert signed with key {key_id}" in revoked.stderr
    assert "laptop lost" in revoked.stderr and "(key-revoked)" in revoked.stderr
