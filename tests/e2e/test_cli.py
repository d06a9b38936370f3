"""The op7 command as a user runs it: real processes, the embedded transport in a temporary home."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import EXAMPLE_ALERT, ROOT, run_op7

EXAMPLES_DIR = ROOT / "examples"


def op7(home: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return run_op7(home, *args, timeout=timeout)  # type: ignore[no-any-return]


def test_demo_shows_the_lifecycle_verified(tmp_path: Path) -> None:
    result = op7(tmp_path, "demo")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for msg_type in ("Alert", "Update", "AllClear"):
        assert f"NL.NCC  <- verified {msg_type}" in out
    assert "bad-signature" in out
    assert "Lifecycle complete" in out
    assert "Traceback" not in result.stderr


def test_keys_send_listen_through_a_shared_embedded_file(tmp_path: Path) -> None:
    assert op7(tmp_path, "keys", "new", "FR.GN").returncode == 0
    sent = op7(tmp_path, "alert", "send", str(EXAMPLE_ALERT), "--json")
    assert sent.returncode == 0, sent.stderr
    listened = op7(tmp_path, "alerts", "listen", "--json", "--count", "1", "--group", "NL.NCC")
    assert listened.returncode == 0, listened.stderr
    line: dict[str, Any] = json.loads(listened.stdout.splitlines()[0])
    assert line["verified"] is True
    assert line["envelope"]["sender"] == "FR.GN"
    assert line["envelope"]["message_id"] == json.loads(sent.stdout)["message_id"]
    assert line["alert"]["case_id"] == "FR-GN-2026-000142"
    human = op7(tmp_path, "alerts", "listen", "--count", "1", "--group", "ES.PN")
    assert "case FR-GN-2026-000142 from FR.GN [EXERCISE]" in human.stdout
    # The group committed its offset: nothing new for NL.NCC.
    again = op7(tmp_path, "alerts", "listen", "--json", "--timeout", "1", "--group", "NL.NCC")
    assert again.returncode == 0 and again.stdout == ""


def test_listen_reports_untrusted_senders_on_stderr(tmp_path: Path) -> None:
    other = tmp_path / "other"
    assert op7(other, "keys", "new", "FR.GN").returncode == 0
    assert op7(tmp_path, "keys", "new", "ES.PN").returncode == 0  # a trust store that does not know FR.GN
    assert op7(other, "alert", "send", str(EXAMPLE_ALERT)).returncode == 0
    # The same embedded file (the user's one), a different trust store: the receiver does not know FR.GN.
    result = op7(tmp_path, "alerts", "listen", "--timeout", "1")
    assert result.returncode == 0
    assert result.stdout == ""
    assert "unknown sender FR.GN" in result.stderr and "quarantined" in result.stderr


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "missing.json: file not found"),
        ('{"case_id": ', "line 1 column 13: invalid JSON"),
        ("[1, 2]", "expected a JSON object"),
    ],
)
def test_bad_files_get_one_clear_line(tmp_path: Path, content: str | None, expected: str) -> None:
    path = tmp_path / "missing.json"
    if content is not None:
        path.write_text(content)
    result = op7(tmp_path, "alert", "send", str(path))
    assert result.returncode == 1
    assert expected in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_fields_are_all_listed_with_file_and_path(tmp_path: Path) -> None:
    data = json.loads(EXAMPLE_ALERT.read_text())
    data["victims"][0]["height_cm"] = 900
    data["last_seen"]["position"]["longitude"] = "east"
    data["status"] = "Real"
    path = tmp_path / "alert.json"
    path.write_text(json.dumps(data))
    assert op7(tmp_path, "keys", "new", "FR.GN").returncode == 0
    result = op7(tmp_path, "alert", "send", str(path))
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 3
    assert f"op7: error: {path}: victims[0].height_cm: Input should be less than or equal to 260 (got 900)" in lines
    assert any("last_seen.position.longitude" in line and '"east"' in line for line in lines)
    assert any(line.startswith(f"op7: error: {path}: status:") for line in lines)
    assert "Traceback" not in result.stderr


def test_sending_without_a_key_says_how_to_make_one(tmp_path: Path) -> None:
    result = op7(tmp_path, "alert", "send", str(EXAMPLE_ALERT))
    assert result.returncode == 1
    assert "op7 keys new FR.GN" in result.stderr


def test_unreachable_kafka_is_one_line_and_the_alert_waits_in_the_outbox(tmp_path: Path) -> None:
    assert op7(tmp_path, "keys", "new", "FR.GN").returncode == 0
    result = op7(tmp_path, "--bootstrap", "127.0.0.1:1", "alert", "send", str(EXAMPLE_ALERT))
    assert result.returncode == 75  # EX_TEMPFAIL: kept, to be sent again
    [line] = [line for line in result.stderr.splitlines() if "WARNING" not in line]
    assert line.startswith("op7: pending: KidnappingAlert ") and "(case FR-GN-2026-000142)" in line
    assert "out of reach" in line and "127.0.0.1:1" in line and "kept in the outbox" in line
    assert "Traceback" not in result.stderr
    listed = op7(tmp_path, "--bootstrap", "127.0.0.1:1", "outbox", "list", "--as", "FR.GN", "--json")
    [kept] = json.loads(listed.stdout)
    assert kept["message_id"] in line and kept["state"] == "pending" and kept["topic"] == "op7.alerts"
    table = op7(tmp_path, "--bootstrap", "127.0.0.1:1", "outbox", "list", "--as", "FR.GN")
    assert kept["message_id"] in table.stdout and "pending" in table.stdout
    wrong = op7(tmp_path, "--bootstrap", "127.0.0.1:1", "outbox", "drop", "--as", "FR.GN", "no-such-id")
    assert wrong.returncode == 1 and "not in the outbox: no-such-id" in wrong.stderr
    dropped = op7(tmp_path, "--bootstrap", "127.0.0.1:1", "outbox", "drop", "--as", "FR.GN", kept["message_id"])
    assert dropped.returncode == 0 and "dropped 1 copy" in dropped.stdout
    empty = op7(tmp_path, "--bootstrap", "127.0.0.1:1", "outbox", "list", "--as", "FR.GN")
    assert "nothing waits in the outbox of FR.GN" in empty.stdout


def test_send_any_type_addresses_requests_to_the_requested_authority(tmp_path: Path) -> None:
    for node in ("FR.GN", "ES.PN"):  # the addressee must be known (its key card trusted) to send to it
        assert op7(tmp_path, "keys", "new", node).returncode == 0
    result = op7(tmp_path, "send", "MutualLegalAssistanceRequest", str(EXAMPLES_DIR / "mla-request.json"), "--json")
    assert result.returncode == 0, result.stderr
    sent = json.loads(result.stdout)
    assert sent["message_type"] == "op7.mla.MutualLegalAssistanceRequest"
    assert sent["recipients"] == ["ES.PN"]
    assert sent["topic"] == "op7.inbox.ES.PN"
    assert sent["sealed"] is True  # TLP:RED, directed: sealed to ES.PN without being asked


def test_send_unknown_type_lists_the_types(tmp_path: Path) -> None:
    result = op7(tmp_path, "send", "Telegram", str(EXAMPLE_ALERT))
    assert result.returncode == 1
    assert "unknown message type 'Telegram'" in result.stderr and "ExtraditionRequest" in result.stderr


def test_send_with_the_wrong_type_lists_every_problem(tmp_path: Path) -> None:
    assert op7(tmp_path, "keys", "new", "FR.GN").returncode == 0
    result = op7(tmp_path, "send", "ExtraditionRequest", str(EXAMPLE_ALERT))
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert any(": person_sought: Field required" in line for line in lines)
    assert any(": headline: unknown field (not in the schema)" in line for line in lines)
    assert len(lines) > 5


def test_schemas_list_and_show(tmp_path: Path) -> None:
    listed = op7(tmp_path, "schemas", "list", "--json")
    assert listed.returncode == 0
    rows = json.loads(listed.stdout)
    assert len(rows) == 18 and {r["topic"] for r in rows} == {"alerts", "cases", "requests", "reports", "receipts"}
    shown = op7(tmp_path, "schemas", "show", "alert", "--canonical")
    fingerprint = next(r["fingerprint"] for r in rows if r["type"] == "op7.alert.KidnappingAlert")
    assert hashlib.sha256(shown.stdout.strip().encode()).hexdigest() == fingerprint


def test_schemas_check_passes_then_fails_naming_the_field(tmp_path: Path) -> None:
    ok = op7(tmp_path, "schemas", "check")
    assert ok.returncode == 0, ok.stderr
    assert "compatible with release(s) 1" in ok.stdout
    tree = tmp_path / "schemas"
    shutil.copytree(ROOT / "schemas", tree)
    alert = json.loads((tree / "alert.avsc").read_text())
    alert["fields"].append({"name": "negotiator_phone", "type": "string"})
    (tree / "alert.avsc").write_text(json.dumps(alert))
    broken = op7(tmp_path, "schemas", "check", "--schemas", str(tree))
    assert broken.returncode == 1
    assert "op7.alert.KidnappingAlert.negotiator_phone: field is read but not written" in broken.stderr
    assert "Traceback" not in broken.stderr


def test_listen_shows_every_type_that_was_sent(tmp_path: Path) -> None:
    for node in ("FR.GN", "ES.PN"):
        assert op7(tmp_path, "keys", "new", node).returncode == 0
    for type_name, filename in (
        ("MutualLegalAssistanceRequest", "mla-request.json"),
        ("CaseInformation", "case-information.json"),
    ):
        assert op7(tmp_path, "send", type_name, str(EXAMPLES_DIR / filename)).returncode == 0
    # An answer is not sent to everyone: it goes with 'op7 reply', to the authority that asked.
    answer = op7(tmp_path, "send", "MutualLegalAssistanceResponse", str(EXAMPLES_DIR / "mla-response.json"))
    assert answer.returncode == 1 and "op7 reply ID MutualLegalAssistanceResponse" in answer.stderr
    result = op7(tmp_path, "listen", "--as", "ES.PN", "--topic", "inbox", "--topic", "cases", "--count", "2")
    assert result.returncode == 0, result.stderr
    lines = sorted(result.stdout.splitlines(), key=lambda line: "CaseInformation" in line)
    assert "MutualLegalAssistanceRequest from FR.GN to ES.PN case FR-GN-2026-000142" in lines[0]
    assert "CaseInformation from FR.GN to all" in lines[1]
    everything = op7(tmp_path, "listen", "--json", "--timeout", "1", "--group", "NL.NCC")
    types = sorted(json.loads(line)["envelope"]["message_type"] for line in everything.stdout.splitlines())
    # The request went to ES.PN's inbox only, sealed; the rest was not addressed to anyone in particular.
    assert types == ["op7.case.CaseInformation"]
    assert op7(tmp_path, "listen", "--topic", "gossip").returncode == 1


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["demo", "--bootstrap", "host:notaport"], "bootstrap server 'host:notaport': expected HOST:PORT"),
        (["--bootstrap", ":", "demo"], "bootstrap server ':'"),
        (["alert", "send", "."], ".: cannot read: Is a directory"),
        (["keys", "new", "XX.AB"], "XX is not an ISO 3166-1 alpha-2 country code"),
        (["alerts", "listen", "--timeout", "nan"], "'nan' is not a positive number of seconds"),
        (["alerts", "listen", "--count", "0"], "0 is not at least 1"),
    ],
)
def test_bad_arguments_get_one_clear_line(tmp_path: Path, args: list[str], expected: str) -> None:
    result = op7(tmp_path, *args)
    assert result.returncode in (1, 2)
    assert expected in result.stderr
    assert "Traceback" not in result.stderr


def test_home_that_is_a_file_is_a_clear_error(tmp_path: Path) -> None:
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    result = op7(tmp_path, "--home", str(not_a_dir), "keys", "new", "ES.PN")
    assert result.returncode == 1
    assert f"home {not_a_dir}: a file, not a folder" in result.stderr and "Traceback" not in result.stderr


def test_times_out_of_range_are_input_errors(tmp_path: Path) -> None:
    data = json.loads(EXAMPLE_ALERT.read_text()) | {"sent_at": "0001-01-01T00:00:00+01:00"}
    path = tmp_path / "old.json"
    path.write_text(json.dumps(data))
    assert op7(tmp_path, "keys", "new", "FR.GN").returncode == 0
    result = op7(tmp_path, "alert", "send", str(path))
    assert result.returncode == 1
    assert "sent_at: time out of range" in result.stderr and "Traceback" not in result.stderr


def test_signing_a_message_issued_by_another_node_is_refused_before_sending(tmp_path: Path) -> None:
    assert op7(tmp_path, "keys", "new", "ES.PN").returncode == 0
    result = op7(tmp_path, "alert", "send", str(EXAMPLE_ALERT), "--as", "ES.PN")
    assert result.returncode == 1
    assert "only FR.GN can sign it, not ES.PN" in result.stderr
