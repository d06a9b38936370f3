"""A node hands a message over once, whichever of its consumer groups reads it (docs/PROTOCOL.md section 12): the
replay store is the node's, shared by every process of its home, not one per group."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import ROOT, run_op7

MLA_REQUEST = ROOT / "examples" / "mla-request.json"


def test_a_message_read_by_two_groups_of_one_node_is_handed_over_once(tmp_path: Path) -> None:
    home = tmp_path / "home"
    for node in ("FR.GN", "ES.PN"):
        assert run_op7(home, "keys", "new", node).returncode == 0
    sent = run_op7(home, "send", "MutualLegalAssistanceRequest", str(MLA_REQUEST), "--json")
    assert sent.returncode == 0, sent.stderr
    message_id = json.loads(sent.stdout)["message_id"]
    first = run_op7(home, "listen", "--as", "ES.PN", "--topic", "inbox", "--count", "1", "--json")
    assert first.returncode == 0, first.stderr
    assert [json.loads(line)["envelope"]["message_id"] for line in first.stdout.splitlines()] == [message_id]
    # Another group of the same node, in another process of the same home: the same frame is a duplicate.
    other = run_op7(home, "listen", "--as", "ES.PN", "--group", "ES.PN.screen", "--topic", "inbox", "--timeout", "2")
    assert other.returncode == 0, other.stderr
    assert other.stdout == ""
    assert "Traceback" not in other.stderr
    # A reader without a node id keeps its own store: it is not this node, and sees the broadcast it reads.
    case = run_op7(home, "send", "CaseInformation", str(ROOT / "examples" / "case-information.json"))
    assert case.returncode == 0, case.stderr
    for group in ("desk-1", "desk-2"):
        seen = run_op7(home, "listen", "--group", group, "--topic", "cases", "--count", "1", "--json")
        assert [json.loads(line)["envelope"]["message_type"] for line in seen.stdout.splitlines()] == [
            "op7.case.CaseInformation"
        ]
