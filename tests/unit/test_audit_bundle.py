"""Case bundles: exported from the log, checked offline against the network's anchor alone; any change to a message,
a proof, the checkpoint or the directory it carries, or another network's anchor, is named."""

from __future__ import annotations

import base64
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from broker.audit.bundle import BUNDLE_FORMAT, case_entries, export_case, read_bundle, verify_bundle
from broker.audit.checkpoint import Checkpoint
from broker.audit.entry import Entry, Kind
from broker.audit.history import DirectoryHistory
from broker.audit.judge import Judge
from broker.audit.store import EvidenceStore, open_store
from broker.errors import ConfigError
from broker.node.topics import TopicLayout
from broker.transport.base import Record
from broker.trust.store import TrustStore
from broker.wire import merkle
from broker.wire.envelope import build, parse_frame
from tests.conftest import example
from tests.unit.test_audit_history import T0, D, H, Net

LAYOUT = TopicLayout("op7")
CASE, OTHER = "FR-GN-2026-000142", "ES-PN-2026-000777"
NET = Net()
NET.add("DE.BKA", T0 + 2 * D)
EXPORTED_AT = T0 + 20 * D
ALERT, INFORMATION = "op7.alert.KidnappingAlert", "op7.case.CaseInformation"


def about(case_id: str, at: datetime) -> Any:
    return example("CaseInformation", now=at).model_copy(update={"case_id": case_id})


class Case:
    """A log of the case: FR.GN's alert, its request to ES.PN sealed (read twice), ES.PN's answer to it (of another
    case id, found as a reply), DE.BKA's alert once version 2 adds it; beside them another case, a stranger's frame
    and the directory versions. A checkpoint covers it all."""

    def __init__(self, store: EvidenceStore) -> None:
        self.store = store
        request = NET.frame("FR.GN", T0 + 2 * H, "ES.PN", seal=True)
        self.request_id = NET.history().verify(request).envelope.message_id
        answer = build(NET.identity("ES.PN"), about(OTHER, T0 + 3 * H), now=T0 + 3 * H, recipients=("FR.GN",),
                       in_reply_to=self.request_id)[1]  # fmt: skip
        unrelated = build(NET.identity("ES.PN"), about(OTHER, T0 + 4 * H), now=T0 + 4 * H)[1]
        self.values = {
            "request": request,
            "answer": answer,
            "alert": NET.frame("FR.GN", T0 + H),
            "late": NET.frame("DE.BKA", T0 + 3 * D),
        }
        topics = [
            ("directory", NET.data(1)),
            ("alerts", self.values["alert"]),
            ("inbox.ES.PN", request),
            ("inbox.FR.GN", answer),
            ("alerts", unrelated),
            ("inbox.ES.PN", NET.frame("BR.PF", T0 + H, "ES.PN")),
            ("directory", NET.data(2)),
            ("inbox.ES.PN", request),  # the same message read again
            ("alerts", self.values["late"]),
        ]
        self.append(topics)
        self.checkpoint()

    def append(self, values: list[tuple[str, bytes]]) -> list[Entry]:
        judge = Judge(self.history(), LAYOUT)
        start = self.store.size()
        drafts = [judge.draft(Record(LAYOUT.name(t), 0, start + i, None, v, 1)) for i, (t, v) in enumerate(values)]
        return self.store.append(drafts, T0 + 10 * D)

    def checkpoint(self) -> None:
        size = self.store.size()
        data = Checkpoint.sign(NET.identity("NL.AUDIT"), size, merkle.root(self.store.leaves()), T0 + 10 * D)
        self.store.add_checkpoint(size, data.to_bytes())

    def history(self) -> DirectoryHistory:
        """From the anchor, with the versions the log holds (as ``op7 audit export`` takes them)."""
        history = DirectoryHistory(NET.anchor)
        for entry in self.store.entries():
            if entry.kind is Kind.DIRECTORY:
                history.offer(entry.value)
        return history

    def export(self, case_id: str = CASE) -> dict[str, Any]:
        # Through JSON, as the file carries it.
        bundle: dict[str, Any] = json.loads(json.dumps(export_case(self.store, self.history(), case_id, EXPORTED_AT)))
        return bundle


@pytest.fixture
def case(tmp_path: Path) -> Any:
    with open_store(str(tmp_path / "audit.db")) as store:
        yield Case(store)


def problems(bundle: dict[str, Any], anchor: Any = None) -> list[str]:
    account = verify_bundle(bundle, anchor or NET.anchor)
    assert not account.valid
    return account.problems


def test_a_bundle_verifies_offline_against_the_anchor(case: Case, tmp_path: Path) -> None:
    file = tmp_path / "case.json"
    file.write_text(json.dumps(case.export()))
    case.store.close()  # nothing but the file and the anchor
    bundle = read_bundle(file)
    assert (bundle["format"], bundle["case_id"], bundle["network"]) == (BUNDLE_FORMAT, CASE, "op7-audit")
    assert len(bundle["directory"]) == 2 and bundle["exported_at"] == EXPORTED_AT.isoformat()
    account = verify_bundle(bundle, NET.anchor)
    assert account.valid and account.problems == [] and account.anchor_given
    assert account.checkpoint is not None and account.checkpoint.size == 9
    # Each message once, in log order: the alert, the request and its answer (of another case id), DE.BKA's alert.
    assert [e["index"] for e in bundle["entries"]] == [1, 2, 3, 8]
    lines = account.lines
    assert lines[0].startswith(f"{T0 + H:%Y-%m-%dT%H:%M:%SZ}  FR.GN -> every node (broadcast)  {ALERT}")
    assert f"FR.GN -> ES.PN  {INFORMATION}" in lines[1] and "content sealed to its recipients (not opened)" in lines[1]
    assert f"ES.PN -> FR.GN  {INFORMATION}" in lines[2] and f"in reply to {case.request_id}" in lines[2]
    assert "DE.BKA" in lines[3] and "content in clear" in lines[3]
    assert all("signature verified; logged as entry" in line for line in lines)


def test_without_an_anchor_the_bundle_is_checked_against_its_own(case: Case) -> None:
    account = verify_bundle(case.export(), None)
    assert account.valid and not account.anchor_given


def test_a_sealed_request_is_kept_as_ciphertext(case: Case) -> None:
    request = next(e for e in case.export()["entries"] if e["meta"]["message_id"] == case.request_id)
    value = base64.b64decode(request["value"])
    assert value == case.values["request"] and request["meta"]["sealed"] is True
    assert b"Gendarmerie" not in parse_frame(value).payload


def test_case_entries_follow_replies_and_skip_refused_and_repeated_messages(case: Case) -> None:
    entries = case_entries(case.store, CASE)
    assert [e.index for e in entries] == [1, 2, 3, 8]
    assert [e.index for e in case_entries(case.store, OTHER)] == [3, 4]


def test_an_altered_value_is_named_at_its_entry(case: Case) -> None:
    bundle = case.export()
    value = bytearray(base64.b64decode(bundle["entries"][1]["value"]))
    value[-5] ^= 1
    bundle["entries"][1]["value"] = base64.b64encode(bytes(value)).decode()
    found = problems(bundle)
    assert found[0].startswith("entry 2: not in the log the checkpoint of size 9 signed by NL.AUDIT")
    assert found[1] == "entry 2: the message does not verify: signature does not verify"
    assert len(found) == 2


def test_an_altered_header_in_the_entry_is_named(case: Case) -> None:
    bundle = case.export()
    bundle["entries"][0]["meta"]["recipients"] = ["ES.PN"]
    found = problems(bundle)
    assert found == [
        "entry 1: not in the log the checkpoint of size 9 signed by NL.AUDIT at 2026-11-11T00:00:00Z (its inclusion "
        "proof fails)",
        "entry 1: the logged header differs from the message's signed header",
    ]


def test_an_altered_proof_is_named_at_its_entry(case: Case) -> None:
    bundle = case.export()
    bundle["entries"][2]["proof"][0] = "00" * 32
    assert problems(bundle) == [
        "entry 3: not in the log the checkpoint of size 9 signed by NL.AUDIT at 2026-11-11T00:00:00Z (its inclusion "
        "proof fails)"
    ]
    bundle["entries"][2]["proof"] = bundle["entries"][2]["proof"][1:]
    assert problems(bundle)[0].startswith("entry 3: not in the log")


@pytest.mark.parametrize(
    ("field", "value", "problem"),
    [
        ("root", "11" * 32, "signature does not verify"),
        ("size", 8, "signature does not verify"),
        ("auditor", "FR.GN", "is not a signing key of FR.GN"),
        ("format", "other", "not an op7 checkpoint"),
    ],
)
def test_an_altered_checkpoint_is_refused(case: Case, field: str, value: object, problem: str) -> None:
    bundle = case.export()
    checkpoint = json.loads(bundle["checkpoint"])
    bundle["checkpoint"] = json.dumps({**checkpoint, field: value})
    account = verify_bundle(bundle, NET.anchor)
    assert not account.valid and account.checkpoint is None and account.lines == []
    assert account.problems[0].startswith("the bundle's directory or checkpoint does not verify: ")
    assert problem in account.problems[0]


def test_a_directory_version_removed_is_named(case: Case) -> None:
    bundle = case.export()
    bundle["directory"] = bundle["directory"][:1]  # version 2, which adds DE.BKA, is gone
    assert problems(bundle) == [
        "entry 8: the message does not verify: unknown sender DE.BKA: not in the network directory"
    ]


def test_a_directory_version_altered_is_named(case: Case) -> None:
    bundle = case.export()
    data = bytearray(base64.b64decode(bundle["directory"][1]))
    data[-3] ^= 1
    bundle["directory"][1] = base64.b64encode(bytes(data)).decode()
    found = problems(bundle)
    assert len(found) == 1 and found[0].startswith("the bundle's directory or checkpoint does not verify: ")
    assert "directory version 2 refused" in found[0]


def test_another_network_s_anchor_refuses_the_bundle(case: Case) -> None:
    foreign = Net(network="op7-other").anchor
    assert "it is for network 'op7-audit', not 'op7-other'" in problems(case.export(), foreign)[0]
    # The same network's name with other authorities.
    impostor = Net().anchor
    assert "0 valid signature(s) by the authorities of the anchor" in problems(case.export(), impostor)[0]


def test_a_malformed_entry_is_named_by_its_place_in_the_bundle(case: Case) -> None:
    bundle = case.export()
    del bundle["entries"][1]["offset"]
    bundle["entries"][2]["kind"] = "letter"
    found = problems(bundle)
    assert found[0] == "entry #1 of the bundle is malformed: KeyError('offset')"
    assert found[1].startswith("entry #2 of the bundle is malformed: ValueError(\"'letter' is not a valid Kind\")")


@pytest.mark.parametrize(
    ("entries", "problem"),
    [
        ([], "the bundle holds no message"),
        ("all of them", "'entries' is not a list"),
        (None, "'entries' is not a list"),
    ],
)
def test_a_bundle_without_its_messages_does_not_verify(case: Case, entries: Any, problem: str) -> None:
    (found,) = problems({**case.export(), "entries": entries})
    assert problem in found


def test_a_case_not_in_the_log_or_not_covered_yet_is_not_exported(case: Case) -> None:
    with pytest.raises(ConfigError, match="case 'NO-SUCH-CASE': no verified message of it is in the evidence log"):
        case.export("NO-SUCH-CASE")
    case.append([("alerts", NET.frame("FR.GN", T0 + 5 * D))])
    with pytest.raises(ConfigError, match="entry 9 is not covered by a signed checkpoint yet"):
        case.export()
    case.checkpoint()
    assert len(case.export()["entries"]) == 5
    unanchored = DirectoryHistory(None, TrustStore({"FR.GN": [NET.signing["FR.GN"].public]}))
    with pytest.raises(ConfigError, match="needs the network's directory anchor"):
        export_case(case.store, unanchored, CASE, EXPORTED_AT)


def test_a_bundle_file_that_is_no_bundle_is_refused(tmp_path: Path) -> None:
    for content, problem in [(b"{", "not a case bundle"), (b"[]", "not an op7 case bundle"), (b"\xff", "not JSON")]:
        file = tmp_path / "bundle.json"
        file.write_bytes(content)
        with pytest.raises(ConfigError, match=problem):
            read_bundle(file)
    with pytest.raises(ConfigError, match="cannot read"):
        read_bundle(tmp_path / "missing.json")
