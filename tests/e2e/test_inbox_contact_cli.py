"""``op7 inbox watch`` signs receipts and reminders, which go to foreign authorities, with the node's real name and
24/7 contact: the network directory's entry, else the options; never an invented one."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, run_op7

MLA_REQUEST = ROOT / "examples" / "mla-request.json"


def test_without_a_directory_or_the_options_it_refuses_to_start_and_names_them(tmp_path: Path) -> None:
    home = tmp_path / "fr"
    assert run_op7(home, "keys", "new", "FR.GN").returncode == 0
    # An unreachable cluster: the missing options are named before anything is reached.
    refused = run_op7(home, "inbox", "watch", "--as", "FR.GN", "--timeout", "1", bootstrap="127.0.0.1:1")
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert "FR.GN signs receipts and reminders with its authority's name and 24/7 contact" in refused.stderr
    assert "no network directory lists it: give --agency NAME --desk DESK --phone +E164" in refused.stderr
    partial = run_op7(home, "inbox", "watch", "--as", "FR.GN", "--agency", "Gendarmerie nationale", "--timeout", "1")
    assert partial.returncode == 1 and "give --desk DESK --phone +E164" in partial.stderr
    bad = run_op7(home, "inbox", "watch", "--as", "FR.GN", "--agency", "GN", "--desk", "CORG", "--phone", "112")
    assert bad.returncode == 1 and "--agency/--desk/--phone" in bad.stderr and "phone" in bad.stderr


@pytest.fixture(params=["embedded", pytest.param("kafka", marks=pytest.mark.kafka)])
def net(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """FR.GN and ES.PN in a network directory of one authority; ES.PN's entry has a 24/7 contact, FR.GN's none."""
    bootstrap = request.getfixturevalue("kafka_bootstrap") if request.param == "kafka" else None
    monkeypatch.setenv("OP7_TOPIC_PREFIX", f"op7t{uuid.uuid4().hex[:10]}")
    monkeypatch.setenv("OP7_EMBEDDED_PATH", str(tmp_path / "shared.db"))
    homes = {name: tmp_path / name for name in ("authority", "fr", "es")}

    def op7(who: str, *args: str) -> Any:
        result = run_op7(homes[who], *args, bootstrap=bootstrap)
        assert "Traceback" not in result.stderr, result.stderr
        return result

    for who, node in (("authority", "NL.NA1"), ("fr", "FR.GN"), ("es", "ES.PN")):
        assert op7(who, "keys", "new", node).returncode == 0
    draft = tmp_path / "directory.json"
    authority_card = str(homes["authority"] / "keys" / "NL.NA1.pub")
    created = op7(
        "authority",
        "directory",
        "create",
        str(draft),
        "--network",
        "op7-test",
        "--threshold",
        "1",
        "--authority",
        authority_card,
    )
    assert created.returncode == 0, created.stderr
    add = ("authority", "directory", "add-node", str(draft))
    fr_card, es_card = (str(homes[who] / "keys" / f"{node}.pub") for who, node in (("fr", "FR.GN"), ("es", "ES.PN")))
    # ES.PN is listed with its 24/7 desk; FR.GN with its agency only.
    es_contact = ("--desk", "Sala del 091", "--phone", "+34910000000")
    half = op7(*add, es_card, "--agency", "Policia Nacional", "--role", "NationalNode", "--desk", "Sala del 091")
    assert half.returncode == 1 and "needs both --desk and --phone" in half.stderr
    bad = op7(*add, es_card, "--agency", "Policia Nacional", "--role", "NationalNode", "--desk", "S", "--phone", "1")
    assert bad.returncode == 1 and "phone" in bad.stderr
    for card, agency, more in ((fr_card, "Gendarmerie nationale", ()), (es_card, "Policia Nacional", es_contact)):
        added = op7(*add, card, "--agency", agency, "--role", "NationalNode", *more)
        assert added.returncode == 0, added.stderr
    assert op7("authority", "directory", "sign", str(draft), "--as", "NL.NA1").returncode == 0
    for who in ("fr", "es"):
        assert op7(who, "directory", "anchor", str(draft)).returncode == 0
        installed = op7(who, "directory", "install", str(draft))
        assert installed.returncode == 0, installed.stderr
    return op7


def test_receipts_are_signed_with_the_directory_contact(net: Any) -> None:
    op7 = net
    sent = op7("fr", "send", "MutualLegalAssistanceRequest", str(MLA_REQUEST), "--seal", "--json")
    assert sent.returncode == 0, sent.stderr
    watched = op7("es", "inbox", "watch", "--as", "ES.PN", "--timeout", "2")
    assert watched.returncode == 0, watched.stderr
    assert "MutualLegalAssistanceRequest from FR.GN" in watched.stdout

    heard = op7("fr", "listen", "--as", "FR.GN", "--topic", "inbox", "--group", "check", "--json", "--timeout", "3")
    assert heard.returncode == 0, heard.stderr
    receipts = [m["message"] for m in map(json.loads, heard.stdout.splitlines()) if "Receipt" in str(m["envelope"])]
    assert receipts and receipts[0]["issuer"] == {
        "node": "ES.PN",
        "name": "Policia Nacional",
        "contact": {"desk": "Sala del 091", "phone": "+34910000000", "email": None},
    }
    assert "duty desk" not in heard.stdout and "+10000000000" not in heard.stdout

    # FR.GN's entry has its agency but no contact: only the contact options are asked for.
    refused = op7("fr", "inbox", "watch", "--as", "FR.GN", "--timeout", "1")
    assert refused.returncode == 1
    assert "the network directory lists no 24/7 contact for it: give --desk DESK --phone +E164" in refused.stderr
    given = op7("fr", "inbox", "watch", "--as", "FR.GN", "--timeout", "1", "--desk", "CORG", "--phone", "+33140000000")
    assert given.returncode == 0, given.stderr
