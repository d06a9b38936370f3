"""Homes as a user sets them up, one OP7_HOME per node on one machine: they meet on the user's embedded file, keep
their state per network, and refuse what would go wrong quietly (a home that is a file, a key under two ids, a key
without its passphrase)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import EXAMPLE_ALERT, ROOT, run_op7

#: What inbox watch signs its receipts with (its defaults are placeholders).
CONTACT = ("--agency", "Gendarmerie nationale", "--desk", "FR.GN 24/7 desk", "--phone", "+33140000000")


def test_two_homes_meet_on_the_users_embedded_file(tmp_path: Path, user_data: Path) -> None:
    """The README's flow with two homes and no OP7_EMBEDDED_PATH: FR.GN's alert reaches NL.NCC's listener."""
    fr, nl = tmp_path / "fr", tmp_path / "nl"
    assert run_op7(fr, "keys", "new", "FR.GN").returncode == 0
    assert run_op7(nl, "keys", "new", "NL.NCC").returncode == 0
    assert run_op7(nl, "keys", "trust", str(fr / "keys" / "FR.GN.pub")).returncode == 0
    sent = run_op7(fr, "alert", "send", str(EXAMPLE_ALERT), "--json")
    assert sent.returncode == 0, sent.stderr
    heard = run_op7(nl, "alerts", "listen", "--json", "--count", "1", "--timeout", "10", "--group", "NL.NCC")
    assert heard.returncode == 0, heard.stderr
    (line,) = heard.stdout.splitlines()
    assert json.loads(line)["envelope"]["message_id"] == json.loads(sent.stdout)["message_id"]
    # One file per machine user, where the user's data goes; none in the homes.
    shared = user_data / "op7" / "embedded.db"
    assert shared.is_file() and not list(tmp_path.rglob("embedded.db"))
    shown = json.loads(run_op7(nl, "config", "show", "--json").stdout)
    assert shown["embedded_path"] == str(shared)


def test_embedded_path_chooses_another_network(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fr, nl = tmp_path / "fr", tmp_path / "nl"
    assert run_op7(fr, "keys", "new", "FR.GN").returncode == 0
    assert run_op7(nl, "keys", "trust", str(fr / "keys" / "FR.GN.pub")).returncode == 0
    monkeypatch.setenv("OP7_EMBEDDED_PATH", str(tmp_path / "exercise.db"))
    assert run_op7(fr, "alert", "send", str(EXAMPLE_ALERT)).returncode == 0
    monkeypatch.delenv("OP7_EMBEDDED_PATH")
    heard = run_op7(nl, "alerts", "listen", "--json", "--timeout", "1", "--group", "NL.NCC")
    assert heard.returncode == 0 and heard.stdout == ""


def test_a_home_that_is_a_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "home"
    path.write_text("not a folder")
    for args in (("keys", "list"), ("--home", str(path), "keys", "list")):
        result = run_op7(tmp_path if args[0] == "--home" else path, *args)
        assert result.returncode == 1
        assert f"op7: error: home {path}: a file, not a folder; OP7_HOME (or --home)" in result.stderr
        assert result.stdout == "" and "Traceback" not in result.stderr


def test_trusting_a_key_under_a_second_node_id_is_refused(tmp_path: Path) -> None:
    es, nl = tmp_path / "es", tmp_path / "nl"
    assert run_op7(es, "keys", "new", "ES.PN").returncode == 0
    assert run_op7(nl, "keys", "trust", str(es / "keys" / "ES.PN.pub")).returncode == 0
    card = json.loads((es / "keys" / "ES.PN.pub").read_text())
    edited = tmp_path / "FR.GN.pub"
    edited.write_text(json.dumps({**card, "node": "FR.GN"}))
    refused = run_op7(nl, "keys", "trust", str(edited))
    assert refused.returncode == 1
    assert f"op7: error: {edited}: key {card['key_id']} of FR.GN is already trusted as ES.PN" in refused.stderr
    listed = json.loads(run_op7(nl, "keys", "list", "--json").stdout)
    assert [entry["node"] for entry in listed] == ["ES.PN"]
    assert run_op7(nl, "keys", "trust", str(es / "keys" / "ES.PN.pub")).returncode == 0  # the same card again is fine
    forced = run_op7(nl, "keys", "trust", str(edited), "--force")
    assert forced.returncode == 0 and "op7: warning:" in forced.stderr and "already trusted as ES.PN" in forced.stderr


def test_key_passphrase_errors_name_the_file_and_the_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OP7_KEY_PASSPHRASE", "s3cret-passphrase")
    assert run_op7(tmp_path, "keys", "new", "FR.GN").returncode == 0
    key = tmp_path / "keys" / "FR.GN.key"
    monkeypatch.delenv("OP7_KEY_PASSPHRASE")
    missing = run_op7(tmp_path, "alert", "send", str(EXAMPLE_ALERT))
    assert missing.returncode == 1
    assert f"op7: error: {key}: the private key is encrypted and OP7_KEY_PASSPHRASE is not set" in missing.stderr
    monkeypatch.setenv("OP7_KEY_PASSPHRASE", "wrong")
    wrong = run_op7(tmp_path, "alert", "send", str(EXAMPLE_ALERT))
    assert wrong.returncode == 1
    assert (
        f"op7: error: {key}: cannot decrypt the private key with the passphrase in OP7_KEY_PASSPHRASE" in wrong.stderr
    )


def _homes(tmp_path: Path) -> tuple[Path, Path]:
    fr, es = tmp_path / "fr", tmp_path / "es"
    for home, node in ((fr, "FR.GN"), (es, "ES.PN")):
        assert run_op7(home, "keys", "new", node).returncode == 0
    assert run_op7(fr, "keys", "trust", str(es / "keys" / "ES.PN.pub")).returncode == 0
    assert run_op7(es, "keys", "trust", str(fr / "keys" / "FR.GN.pub")).returncode == 0
    return fr, es


def test_exchange_state_is_kept_per_network(tmp_path: Path) -> None:
    fr, _ = _homes(tmp_path)
    request = str(ROOT / "examples" / "mla-request.json")
    sent = run_op7(fr, "send", "MutualLegalAssistanceRequest", request, "--json")
    assert sent.returncode == 0, sent.stderr
    request_id = json.loads(sent.stdout)["message_id"]
    listed = run_op7(fr, "exchanges", "list", "--as", "FR.GN", "--json")
    assert [e["message_id"] for e in json.loads(listed.stdout)] == [request_id]
    # An exercise network on the same file: its own state, without the request.
    other = run_op7(fr, "--topic-prefix", "op7-exercise", "exchanges", "list", "--as", "FR.GN", "--json")
    assert other.returncode == 0 and json.loads(other.stdout or "[]") == []
    named = {p.name: json.loads((p / "network.json").read_text()) for p in (fr / "state").iterdir()}
    assert sorted((n["transport"], n["topic_prefix"]) for n in named.values()) == [
        ("embedded", "op7"),
        ("embedded", "op7-exercise"),
    ]
    assert all(name.startswith(f"embedded-{n['topic_prefix']}-") for name, n in named.items())


@pytest.mark.kafka
def test_a_request_sent_on_embedded_is_not_resent_on_kafka(tmp_path: Path, kafka_bootstrap: str, unique: str) -> None:
    fr, _ = _homes(tmp_path)
    prefix = ("--topic-prefix", f"op7-t{unique}")
    request = str(ROOT / "examples" / "mla-request.json")
    sent = run_op7(fr, *prefix, "send", "MutualLegalAssistanceRequest", request, "--json")
    assert sent.returncode == 0, sent.stderr
    request_id = json.loads(sent.stdout)["message_id"]
    # Past the first resend (30 s after sending), a watcher on Kafka resends nothing of the embedded network.
    watched = run_op7(
        fr, *prefix, "inbox", "watch", "--as", "FR.GN", *CONTACT, "--timeout", "33", "--tick", "1",
        bootstrap=kafka_bootstrap,
    )  # fmt: skip
    assert watched.returncode == 0, watched.stderr
    assert "resent" not in watched.stdout and request_id not in watched.stdout
    on_kafka = run_op7(fr, *prefix, "exchanges", "list", "--as", "FR.GN", "--json", bootstrap=kafka_bootstrap)
    assert json.loads(on_kafka.stdout or "[]") == []
    on_embedded = run_op7(fr, *prefix, "exchanges", "list", "--as", "FR.GN", "--json")
    assert [e["message_id"] for e in json.loads(on_embedded.stdout)] == [request_id]


@pytest.mark.kafka
def test_another_cluster_at_the_same_address_does_not_get_this_networks_exchanges(
    tmp_path: Path, kafka_bootstrap: str, unique: str
) -> None:
    fr, _ = _homes(tmp_path)
    prefix = ("--topic-prefix", f"op7-t{unique}")
    watch = (*prefix, "inbox", "watch", "--as", "FR.GN", *CONTACT, "--timeout", "1")
    assert run_op7(fr, *watch, bootstrap=kafka_bootstrap).returncode == 0
    (label,) = (fr / "state").glob("kafka-*/network.json")
    described = json.loads(label.read_text())
    assert described["cluster_id"] and described["address"] == kafka_bootstrap.lower()
    # The same address now reaches another cluster (a trial broker, a tunnel to another network).
    label.write_text(json.dumps({**described, "cluster_id": "another-cluster"}))
    refused = run_op7(fr, *watch, bootstrap=kafka_bootstrap)
    assert refused.returncode == 1
    assert f"now reaches the Kafka cluster {described['cluster_id']}, but the state in" in refused.stderr
    assert "is about cluster another-cluster" in refused.stderr and "Traceback" not in refused.stderr
