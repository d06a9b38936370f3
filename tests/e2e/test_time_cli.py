"""Time as the op7 command sees it: examples that never go stale, deadlines checked before anything leaves.

Every test here runs on whatever date the machine says (CI runs this suite again with the clock a year ahead and
further): nothing compares with a date written in a file.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import EXAMPLES, ROOT, now, run_op7

EXAMPLES_DIR = ROOT / "examples"
NODES = ("FR.GN", "ES.PN", "MX.FGR", "NL.NCC")


@pytest.fixture
def op7(tmp_path: Path) -> Any:
    """One home holding the four example nodes' keys (each trusted by the others through the local store)."""
    home = tmp_path / "home"
    for node in NODES:
        assert run_op7(home, "keys", "new", node).returncode == 0

    def call(*args: str) -> Any:
        result = run_op7(home, *args)
        assert "Traceback" not in result.stderr, result.stderr
        return result

    return call


def _exchanges(op7: Any, node: str) -> list[dict[str, Any]]:
    listed = op7("exchanges", "list", "--as", node, "--json")
    assert listed.returncode == 0, listed.stderr
    rows: list[dict[str, Any]] = json.loads(listed.stdout)
    return rows


def _stamp(when: datetime) -> str:
    return f"{when:%Y-%m-%dT%H:%M:%SZ}"


#: Answer examples -> the request each answers (the examples' answers are issued by the requests' addressees).
ANSWERED = {
    "MutualLegalAssistanceResponse": "MutualLegalAssistanceRequest",
    "ExtraditionResponse": "ExtraditionRequest",
    "CollaborationResponse": "CollaborationRequest",
    "ProceedsResponse": "ProceedsRequest",
    "DisseminationDecision": "DisseminationRequest",
}


def _reply_to_request(op7: Any, answer: str, path: Path, *extra: str) -> Any:
    """Answer, as its issuer, the request of the kind ``answer`` answers that the issuer received."""
    issuer = json.loads(path.read_text())["issuer"]["node"]
    received = [
        r
        for r in _exchanges(op7, issuer)
        if r["direction"] == "in" and r["message_type"].endswith("." + ANSWERED[answer])
    ]
    assert received, f"{issuer} received no {ANSWERED[answer]}"
    return op7("reply", received[0]["message_id"], answer, str(path), "--as", issuer, *extra)


def _watch(op7: Any, node: str) -> None:
    contact = ("--agency", f"{node} agency", "--desk", f"{node} 24/7 desk", "--phone", "+33140000000")
    assert op7("inbox", "watch", "--as", node, "--timeout", "1", "--tick", "0.2", *contact).returncode == 0


def test_every_example_is_sent_on_any_date_and_no_exchange_is_overdue(op7: Any) -> None:
    for type_name, filename in sorted(EXAMPLES.items()):
        if type_name in ANSWERED:  # an answer goes with 'op7 reply', once its request has arrived
            continue
        to = ("--to", "FR.GN") if type_name == "DisseminationRequest" else ()  # to the originator it asks
        sent = op7("send", type_name, str(EXAMPLES_DIR / filename), "--json", *to)
        assert sent.returncode == 0, f"{filename}: {sent.stderr}"
    for node in ("ES.PN", "FR.GN"):
        _watch(op7, node)
    for answer in ANSWERED:
        replied = _reply_to_request(op7, answer, EXAMPLES_DIR / EXAMPLES[answer])
        assert replied.returncode == 0, f"{answer}: {replied.stderr}"
    # Each sender's agent runs its deadline checks (ticks) while it reads its inbox.
    for node in ("FR.GN", "MX.FGR"):
        contact = ("--agency", f"{node} agency", "--desk", f"{node} 24/7 desk", "--phone", "+33140000000")
        assert op7("inbox", "watch", "--as", node, "--timeout", "1", "--tick", "0.2", *contact).returncode == 0
    requests = [r for node in ("FR.GN", "MX.FGR") for r in _exchanges(op7, node) if r["direction"] == "out"]
    assert {r["message_type"].rsplit(".", 1)[1] for r in requests} >= {
        "MutualLegalAssistanceRequest",
        "ExtraditionRequest",
        "ProceedsRequest",
        "CollaborationRequest",
    }
    assert [r for r in requests if r["state"] == "overdue"] == []
    for request in requests:
        if request["deadline"] is not None:
            assert datetime.fromisoformat(request["deadline"]) > now(), request
    assert op7("exchanges", "list", "--as", "FR.GN", "--overdue").stdout.startswith("no exchanges overdue")


def test_relative_deadline_counts_from_sending(op7: Any) -> None:
    sent = op7("send", "MutualLegalAssistanceRequest", str(EXAMPLES_DIR / "mla-request.json"), "--json")
    assert sent.returncode == 0, sent.stderr
    (record,) = _exchanges(op7, "FR.GN")
    deadline = datetime.fromisoformat(record["deadline"])
    created = datetime.fromisoformat(record["created_at"])
    assert timedelta(hours=5, minutes=59) <= deadline - created <= timedelta(hours=6)  # "deadline": "+6h"


def _with(tmp_path: Path, filename: str, **changes: Any) -> Path:
    data = json.loads((EXAMPLES_DIR / filename).read_text()) | changes
    path = tmp_path / filename
    path.write_text(json.dumps(data))
    return path


def test_a_past_deadline_is_refused_unless_forced_and_then_recorded_as_late(op7: Any, tmp_path: Path) -> None:
    past = now() - timedelta(hours=1)
    path = _with(tmp_path, "mla-request.json", sent_at=_stamp(past - timedelta(hours=2)), deadline=_stamp(past))
    refused = op7("send", "MutualLegalAssistanceRequest", str(path))
    assert refused.returncode == 1
    assert f"op7: error: {path}: deadline: is already past" in refused.stderr
    assert _stamp(past) in refused.stderr and "--force" in refused.stderr
    assert _exchanges(op7, "FR.GN") == []  # nothing left

    forced = op7("send", "MutualLegalAssistanceRequest", str(path), "--force", "--json")
    assert forced.returncode == 0, forced.stderr
    message_id = json.loads(forced.stdout)["message_id"]
    shown = op7("exchanges", "show", message_id, "--as", "FR.GN")
    assert "sent late: the deadline had already passed" in shown.stdout


def test_a_message_dated_in_the_future_is_refused(op7: Any, tmp_path: Path) -> None:
    ahead = now() + timedelta(days=40)
    path = _with(tmp_path, "national-report.json", sent_at=_stamp(ahead))
    refused = op7("send", "NationalReport", str(path))
    assert refused.returncode == 1
    assert f"{path}: sent_at: is 40" in refused.stderr and "in the future" in refused.stderr
    assert _stamp(ahead) in refused.stderr
    # Within the tolerance receivers allow (5 minutes), a clock slightly ahead is not a mistake.
    near = _with(tmp_path, "national-report.json", sent_at=_stamp(now() + timedelta(minutes=2)))
    assert op7("send", "NationalReport", str(near)).returncode == 0


def test_an_expired_grant_or_alert_is_refused_unless_forced(op7: Any, tmp_path: Path) -> None:
    asked = op7("send", "DisseminationRequest", str(EXAMPLES_DIR / "dissemination-request.json"), "--to", "FR.GN")
    assert asked.returncode == 0, asked.stderr
    _watch(op7, "FR.GN")
    path = _with(tmp_path, "dissemination-decision.json", valid_until="-1h")
    refused = _reply_to_request(op7, "DisseminationDecision", path)
    assert refused.returncode == 1 and f"{path}: valid_until: is already past" in refused.stderr
    assert _reply_to_request(op7, "DisseminationDecision", path, "--force").returncode == 0
    alert = _with(tmp_path, "kidnapping-alert.json", sent_at=_stamp(now() - timedelta(hours=3)), expires_at="+1h")
    expired = op7("alert", "send", str(alert))
    assert expired.returncode == 1 and f"{alert}: expires_at: is already past" in expired.stderr
    assert op7("alert", "send", str(alert), "--force").returncode == 0  # the option the error suggests


def test_deadline_in_sets_the_request_field_and_the_exchange(op7: Any) -> None:
    sent = op7(
        "send", "MutualLegalAssistanceRequest", str(EXAMPLES_DIR / "mla-request.json"), "--deadline-in", "2h", "--json"
    )
    assert sent.returncode == 0, sent.stderr
    (record,) = _exchanges(op7, "FR.GN")
    assert datetime.fromisoformat(record["deadline"]) - datetime.fromisoformat(record["created_at"]) <= timedelta(
        hours=2
    )
    # A request type without a deadline field: the exchange follows the given deadline instead of the policy's.
    proceeds = op7("send", "ProceedsRequest", str(EXAMPLES_DIR / "proceeds-request.json"), "--deadline-in", "3d")
    assert proceeds.returncode == 0, proceeds.stderr
    (tracked,) = [r for r in _exchanges(op7, "MX.FGR") if r["message_type"].endswith("ProceedsRequest")]
    due = datetime.fromisoformat(tracked["deadline"]) - datetime.fromisoformat(tracked["created_at"])
    assert timedelta(days=2, hours=23) <= due <= timedelta(days=3)
    for wrong in ("soon", "-2h"):
        bad = op7(
            "send", "MutualLegalAssistanceRequest", str(EXAMPLES_DIR / "mla-request.json"), f"--deadline-in={wrong}"
        )
        assert bad.returncode == 2 and "not a duration" in bad.stderr
    broadcast = op7("send", "KidnappingAlert", str(EXAMPLES_DIR / "kidnapping-alert.json"), "--deadline-in", "2h")
    assert broadcast.returncode == 1 and "--deadline-in" in broadcast.stderr


def test_a_malformed_relative_time_names_the_field(op7: Any, tmp_path: Path) -> None:
    for wrong in ("+6 years", "+999999w"):
        path = _with(tmp_path, "mla-request.json", deadline=wrong)
        refused = op7("send", "MutualLegalAssistanceRequest", str(path))
        assert refused.returncode == 1
        assert f"op7: error: {path}: deadline:" in refused.stderr and f'"{wrong}"' in refused.stderr
    too_far = op7(
        "send", "MutualLegalAssistanceRequest", str(EXAMPLES_DIR / "mla-request.json"), "--deadline-in=999999w"
    )
    assert too_far.returncode == 2 and "at most a century" in too_far.stderr
