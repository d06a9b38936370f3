"""People read a message with ``op7 show``: every field labelled, sealed content only with the addressee's keys,
and a message named by the end of its id (UUIDv7 ids share their start within a minute)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from broker.config import Home
from broker.wire.envelope import build
from tests.conftest import ROOT, cli_of, example, now, trusting_homes

EXAMPLES = ROOT / "examples"
ES_CONTACT = ("--agency", "Policia Nacional", "--desk", "Sala del 091", "--phone", "+34910000000")


@pytest.fixture
def op7(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("OP7_EMBEDDED_PATH", str(tmp_path / "shared.db"))
    return cli_of(trusting_homes(tmp_path, {"fr": "FR.GN", "es": "ES.PN"}))


def _send_request(op7: Any) -> str:
    sent = op7("fr", "send", "MutualLegalAssistanceRequest", str(EXAMPLES / "mla-request.json"), "--seal", "--json")
    assert sent.returncode == 0, sent.stderr
    return str(json.loads(sent.stdout)["message_id"])


def test_the_addressee_reads_a_sealed_request_field_by_field(op7: Any) -> None:
    request_id = _send_request(op7)
    watched = op7("es", "inbox", "watch", "--as", "ES.PN", "--timeout", "2", *ES_CONTACT)
    assert watched.returncode == 0, watched.stderr
    # The duty desk reads what is asked as it arrives, without --json.
    assert f"MutualLegalAssistanceRequest from FR.GN case FR-GN-2026-000142 id {request_id}" in watched.stdout
    assert "    Facts: A child was abducted in Lyon" in watched.stdout
    assert "    Requesting authority: Gendarmerie nationale (FR.GN)" in watched.stdout

    shown = op7("es", "show", request_id[-12:], "--as", "ES.PN")
    assert shown.returncode == 0, shown.stderr
    text = shown.stdout
    assert text.startswith("MutualLegalAssistanceRequest case FR-GN-2026-000142 [Exercise, TLP:RED]")
    assert f"id {request_id}" in text and "from FR.GN to ES.PN" in text and "sealed, signature verified" in text
    assert "Requested authority: Policia Nacional (ES.PN); Sala del 091, +34910000000" in text
    assert "Facts: A child was abducted in Lyon" in text
    assert "- Kind: TelecommunicationsData" in text and "        - +33612345678" in text
    assert "Urgency: LifeThreatening" in text and "Confidentiality required: yes" in text
    assert "Deadline: " in text and ("(in 5 h" in text or "(in 6 h" in text)

    as_json = json.loads(op7("es", "show", request_id, "--as", "ES.PN", "--json").stdout)
    assert as_json["verified"] is True and as_json["message"]["urgency"] == "LifeThreatening"


def test_the_sender_sees_the_signed_header_of_what_it_sealed(op7: Any) -> None:
    request_id = _send_request(op7)
    shown = op7("fr", "show", request_id, "--as", "FR.GN")
    assert shown.returncode == 0, shown.stderr
    assert "from FR.GN to ES.PN" in shown.stdout
    assert "content sealed to ES.PN: not readable with this node's keys" in shown.stdout
    assert "Facts" not in shown.stdout


def test_ids_are_found_by_their_end_and_an_ambiguous_start_names_the_matches(op7: Any) -> None:
    ids = [_send_request(op7) for _ in range(3)]
    # UUIDv7: the first eight hex digits are the time, the same for messages sent within about a minute.
    start = ids[0][:8]
    if all(i.startswith(start) for i in ids):
        ambiguous = op7("fr", "exchanges", "show", start, "--as", "FR.GN")
        assert ambiguous.returncode == 1
        assert f"{start!r} matches 3 exchanges" in ambiguous.stderr and ids[1] in ambiguous.stderr
    for message_id in ids:
        shown = op7("fr", "exchanges", "show", message_id[-8:], "--as", "FR.GN")
        assert shown.returncode == 0, shown.stderr
        assert shown.stdout.startswith(message_id)
    bad = op7("fr", "exchanges", "show", "x'; drop", "--as", "FR.GN")
    assert bad.returncode == 1 and "not a message id" in bad.stderr


def test_a_frame_file_is_verified_and_shown(op7: Any, tmp_path: Path) -> None:
    alert = example("KidnappingAlert")
    _, frame = build(Home(op7.homes["fr"]).identity("FR.GN"), alert, now=now())
    path = tmp_path / "alert.op7"
    path.write_bytes(frame)
    shown = op7("es", "show", str(path))
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.startswith("KidnappingAlert case FR-GN-2026-000142")
    assert "Headline: Child abducted in Lyon" in shown.stdout and "not sealed, signature verified" in shown.stdout

    tampered = tmp_path / "tampered.op7"
    tampered.write_bytes(frame.replace(b"Lyon", b"Lyom", 1))
    refused = op7("es", "show", str(tampered))
    assert refused.returncode == 1 and "signature" in refused.stderr

    not_a_frame = tmp_path / "alert.json"
    not_a_frame.write_text("{}")
    refused = op7("es", "show", str(not_a_frame))
    assert refused.returncode == 1 and f"{not_a_frame}: not an op7 frame" in refused.stderr
