"""Two agencies exchange a mutual legal assistance request with the op7 command (embedded transport)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, cli_of, run_op7, trusting_homes

EXAMPLES = ROOT / "examples"
#: The authority and 24/7 contact each node's inbox watch signs its receipts and reminders with.
CONTACT = {
    "FR.GN": ("--agency", "Gendarmerie nationale", "--desk", "CORG", "--phone", "+33140000000"),
    "ES.PN": ("--agency", "Policia Nacional", "--desk", "Sala del 091", "--phone", "+34910000000"),
}


@pytest.fixture
def op7(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("OP7_EMBEDDED_PATH", str(tmp_path / "shared.db"))
    return cli_of(trusting_homes(tmp_path, {"fr": "FR.GN", "es": "ES.PN"}))


def test_request_receipt_answer_and_history_with_the_cli(op7: Any) -> None:
    sent = op7("fr", "send", "MutualLegalAssistanceRequest", str(EXAMPLES / "mla-request.json"), "--seal", "--json")
    assert sent.returncode == 0, sent.stderr
    request_id = json.loads(sent.stdout)["message_id"]

    watched = op7("es", "inbox", "watch", "--as", "ES.PN", "--timeout", "2", *CONTACT["ES.PN"])
    assert watched.returncode == 0, watched.stderr
    assert f"MutualLegalAssistanceRequest from FR.GN case FR-GN-2026-000142 id {request_id}" in watched.stdout
    assert op7("fr", "inbox", "watch", "--as", "FR.GN", "--timeout", "2", *CONTACT["FR.GN"]).returncode == 0
    shown = op7("fr", "exchanges", "show", request_id[:13], "--as", "FR.GN")
    assert "[delivered]" in shown.stdout and "signed receipt from ES.PN" in shown.stdout

    answered = op7(
        "es", "reply", request_id, "MutualLegalAssistanceResponse", str(EXAMPLES / "mla-response.json"), "--as", "ES.PN"
    )
    assert answered.returncode == 0, answered.stderr
    assert op7("fr", "inbox", "watch", "--as", "FR.GN", "--timeout", "2", *CONTACT["FR.GN"]).returncode == 0
    history = json.loads(op7("fr", "exchanges", "show", request_id, "--as", "FR.GN", "--json").stdout)
    request = next(h for h in history if h["message_id"] == request_id)
    assert request["state"] == "answered"
    assert [e["state"] for e in request["events"]] == ["sent", "delivered", "answered"]
    assert any(h["message_type"] == "op7.mla.MutualLegalAssistanceResponse" for h in history)
    listed = json.loads(op7("es", "exchanges", "list", "--as", "ES.PN", "--case", "FR-GN-2026-000142", "--json").stdout)
    assert {r["state"] for r in listed if r["message_id"] == request_id} == {"answered"}
    assert op7("fr", "exchanges", "list", "--as", "FR.GN", "--overdue").stdout.startswith("no exchanges overdue")


def test_quarantine_list_and_show(op7: Any, tmp_path: Path) -> None:
    stranger = tmp_path / "stranger"
    assert run_op7(stranger, "keys", "new", "BR.PF").returncode == 0
    data = json.loads((EXAMPLES / "mla-request.json").read_text())
    data["issuer"]["node"] = data["requesting_authority"]["node"] = "BR.PF"
    path = tmp_path / "request.json"
    path.write_text(json.dumps(data))
    # The stranger knows ES.PN (it may send to it, sealed: TLP:RED); ES.PN does not know the stranger.
    assert run_op7(stranger, "keys", "trust", str(tmp_path / "es" / "keys" / "ES.PN.pub")).returncode == 0
    assert run_op7(stranger, "send", "MutualLegalAssistanceRequest", str(path)).returncode == 0
    assert op7("es", "inbox", "watch", "--as", "ES.PN", "--timeout", "2", *CONTACT["ES.PN"]).returncode == 0
    listed = op7("es", "quarantine", "list", "--as", "ES.PN")
    assert "unknown-sender" in listed.stdout and "unknown sender BR.PF" in listed.stdout
    shown = json.loads(op7("es", "quarantine", "show", "1", "--as", "ES.PN").stdout)
    assert shown["reason"] == "unknown-sender" and shown["value"]
    assert op7("es", "quarantine", "show", "9", "--as", "ES.PN").returncode == 1
