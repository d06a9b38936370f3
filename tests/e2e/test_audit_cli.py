"""The auditor as users run it: nodes in homes of their own on a signed network directory exchange alerts, a sealed
request and its receipt, a stranger's frame is refused; ``op7 audit run`` logs every record, ``op7 audit verify``
names the entry a change to the database touched, a withheld message shows as a gap, and a case bundle verifies
offline (and fails when altered). On the embedded transport and on Kafka; on SQLite and on PostgreSQL."""

from __future__ import annotations

import base64
import csv
import io
import json
import shutil
import sqlite3
import time
import uuid
from contextlib import closing
from pathlib import Path
from typing import Any

import defusedxml.ElementTree
import pytest

from broker.wire import merkle
from tests.audit_db import fresh_store_url, tamper
from tests.conftest import ROOT, Background, run_op7

ALERT = ROOT / "examples" / "kidnapping-alert.json"
MLA_REQUEST = ROOT / "examples" / "mla-request.json"
MLA_RESPONSE = ROOT / "examples" / "mla-response.json"
CASE = "FR-GN-2026-000142"
ALERT_TYPE = "op7.alert.KidnappingAlert"
REQUEST_TYPE = "op7.mla.MutualLegalAssistanceRequest"
NODES = {"authority": "NL.NA1", "fr": "FR.GN", "es": "ES.PN", "auditor": "NL.AUDIT", "stranger": "BR.PF"}
ROLES = {"fr": "NationalNode", "es": "NationalNode", "auditor": "Auditor"}
CONTACT = ("--desk", "Sala del 091", "--phone", "+34910000000")


class Network:
    """Homes of one network directory, the commands run in them, and the auditor's store."""

    def __init__(self, tmp_path: Path, bootstrap: str | None, store: str) -> None:
        self.tmp_path = tmp_path
        self.bootstrap = bootstrap
        self.store = store
        self.homes = {who: tmp_path / who for who in NODES}

    def __call__(self, who: str, *args: str) -> Any:
        result = run_op7(self.homes[who], *args, bootstrap=self.bootstrap, timeout=180)
        assert "Traceback" not in result.stderr, result.stderr
        return result

    def ok(self, who: str, *args: str) -> Any:
        result = self(who, *args)
        assert result.returncode == 0, result.stderr
        return result

    def audit(self, *args: str) -> Any:
        return self("auditor", "audit", *args, "--store", self.store)

    def set_up_homes(self) -> None:
        """Each node's keys, the network's signed directory installed, its anchor; the stranger trusting ES.PN."""
        for who, node in NODES.items():
            self.ok(who, "keys", "new", node)
        draft = str(self.tmp_path / "directory.json")
        authority = str(self.homes["authority"] / "keys" / "NL.NA1.pub")
        self.ok("authority", "directory", "create", draft, "--network", "op7-audit", "--threshold", "1",
                "--authority", authority)  # fmt: skip
        for who, role in ROLES.items():
            card = str(self.homes[who] / "keys" / f"{NODES[who]}.pub")
            self.ok("authority", "directory", "add-node", draft, card, "--agency", f"agency {who}", "--role", role,
                    *CONTACT)  # fmt: skip
        self.ok("authority", "directory", "sign", draft, "--as", "NL.NA1")
        for who in ("authority", "fr", "es", "auditor"):
            self.ok(who, "directory", "anchor", draft)
        for who in ("fr", "es", "auditor"):
            self.ok(who, "directory", "install", draft)
        # The stranger is in no directory: it trusts ES.PN's card and signs anyway.
        self.ok("stranger", "keys", "trust", str(self.homes["es"] / "keys" / "ES.PN.pub"))

    def publish_directory(self) -> None:
        self.ok("authority", "directory", "publish", str(self.tmp_path / "directory.json"))

    def scenario(self) -> None:
        """Three alerts of one case, a sealed request answered by a receipt, a stranger's request refused."""
        for _ in range(3):
            self.ok("fr", "alert", "send", str(ALERT))
        self.ok("fr", "send", "MutualLegalAssistanceRequest", str(MLA_REQUEST), "--seal")
        stranger = json.loads(MLA_REQUEST.read_text())
        stranger["issuer"]["node"] = "BR.PF"
        forged = self.tmp_path / "stranger.json"
        forged.write_text(json.dumps(stranger))
        self.ok("stranger", "send", "MutualLegalAssistanceRequest", str(forged))
        self.ok("es", "inbox", "watch", "--as", "ES.PN", "--timeout", "3")

    def verify(self) -> dict[str, Any]:
        result = self.audit("verify", "--json")
        assert result.returncode in (0, 1), result.stderr
        report: dict[str, Any] = json.loads(result.stdout)
        assert report["intact"] == (result.returncode == 0)
        return report


#: Where the nodes meet and where the auditor keeps its log: every test on both stores; on Kafka too, the tests that
#: read what the topics hold (the others judge the log's database only, whatever filled it).
ON_EMBEDDED = [
    pytest.param(("embedded", "sqlite"), id="embedded-sqlite"),
    pytest.param(("embedded", "postgresql"), id="embedded-postgresql"),
]
ON_KAFKA = [*ON_EMBEDDED, pytest.param(("kafka", "postgresql"), id="kafka-postgresql", marks=pytest.mark.kafka)]


@pytest.fixture(scope="module")
def homes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The homes, set up once as operators set them up (files only: nothing reaches a transport); each test works on
    a copy of its own."""
    root = tmp_path_factory.mktemp("audit-homes")
    Network(root, None, "").set_up_homes()
    return root


@pytest.fixture(params=ON_EMBEDDED)
def network(request: pytest.FixtureRequest, homes: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    transport, store = request.param
    bootstrap = request.getfixturevalue("kafka_bootstrap") if transport == "kafka" else None
    monkeypatch.setenv("OP7_TOPIC_PREFIX", f"op7t{uuid.uuid4().hex[:10]}")
    monkeypatch.setenv("OP7_EMBEDDED_PATH", str(tmp_path / "shared.db"))
    with fresh_store_url(store, tmp_path) as url:
        shutil.copytree(homes, tmp_path, dirs_exist_ok=True)
        net = Network(tmp_path, bootstrap, url)
        net.publish_directory()
        yield net


@pytest.mark.parametrize("network", ON_KAFKA, indirect=True)
def test_every_record_is_logged_verified_and_held_in_place(network: Network) -> None:
    network.scenario()
    ran = network.audit("run", "--as", "NL.AUDIT", "--once")
    assert ran.returncode == 0, ran.stderr
    report = network.verify()
    assert report["intact"] and report["first_problem"] is None and report["gaps"] == []
    assert report["checkpoints_verified"] >= 1 and report["uncovered"] == 0
    entries = _entries(network.store)
    messages = [e for e in entries if e["kind"] == "message"]
    verified = [e for e in messages if e["outcome"] == "verified"]
    types = sorted(json.loads(e["meta"])["message_type"] for e in verified)
    # Three alerts, the request (in ES.PN's inbox) and ES.PN's receipt (in FR.GN's inbox).
    assert types == [ALERT_TYPE] * 3 + ["op7.exchange.Receipt", REQUEST_TYPE]
    refused = [e for e in messages if e["outcome"] == "refused"]
    assert [json.loads(e["meta"]).get("claimed_sender") for e in refused] == ["BR.PF"]
    assert refused[0]["reason"] == "unknown-sender"
    # The directory version is logged too.
    assert any(e["kind"] == "directory" and e["outcome"] == "verified" for e in entries)
    # The sealed request is kept as ciphertext: its payload is not in the log in clear.
    request = next(e for e in verified if json.loads(e["meta"])["message_type"] == REQUEST_TYPE)
    assert json.loads(request["meta"])["sealed"] is True
    assert b"Gendarmerie" not in request["value"]

    # Running again logs nothing twice.
    again = network.audit("run", "--as", "NL.AUDIT", "--once")
    assert again.returncode == 0 and len(_entries(network.store)) == len(entries)

    # The log grows; anyone holding the first checkpoint gets a proof that the second extends it.
    network.ok("fr", "alert", "send", str(ALERT))
    assert network.audit("run", "--as", "NL.AUDIT", "--once").returncode == 0
    proved = network.audit("prove", "--from-size", str(len(entries)))
    assert proved.returncode == 0, proved.stderr
    proof = json.loads(proved.stdout)
    old, new = proof["old"], proof["new"]
    assert (old["size"], new["size"]) == (len(entries), len(entries) + 1)
    hashes = [bytes.fromhex(h) for h in proof["consistency_proof"]]
    old_root, new_root = bytes.fromhex(old["root"]), bytes.fromhex(new["root"])
    assert merkle.verify_consistency(old["size"], new["size"], old_root, new_root, hashes)
    assert not merkle.verify_consistency(old["size"], new["size"], new_root, new_root, hashes)
    assert network.verify()["checkpoints_verified"] == 2
    unknown = network.audit("prove", "--from-size", "999")
    assert unknown.returncode == 1 and f"sizes signed: {len(entries)}, {len(entries) + 1}" in unknown.stderr
    missing = network("auditor", "audit", "verify", "--store", str(network.tmp_path / "nothing.db"))
    assert missing.returncode == 1 and "no such file ('op7 audit run' makes the log)" in missing.stderr


def test_verify_names_the_entry_a_change_touched(network: Network) -> None:
    network.scenario()
    assert network.audit("run", "--as", "NL.AUDIT", "--once").returncode == 0
    size = len(_entries(network.store))
    middle = size // 2
    value = _entries(network.store)[middle]["value"]
    changed = bytes([value[0] ^ 1]) + value[1:]
    tamper(network.store, "UPDATE entries SET value = ? WHERE position = ?", (changed, middle))
    report = network.verify()
    assert report["first_problem"]["entry"] == middle and report["first_problem"]["kind"] == "modified"
    tamper(network.store, "UPDATE entries SET value = ? WHERE position = ?", (value, middle))
    assert network.verify()["intact"]

    # Two rows swapped: each stands at the other's place.
    _swap(network.store, 2, 5)
    report = network.verify()
    assert (report["first_problem"]["entry"], report["first_problem"]["kind"]) == (2, "reordered")
    assert "entries 2 and 5 swapped" in report["first_problem"]["text"]
    _swap(network.store, 2, 5)
    assert network.verify()["intact"]

    # One row deleted.
    tamper(network.store, "DELETE FROM entries WHERE position = ?", (3,))
    report = network.verify()
    assert (report["first_problem"]["entry"], report["first_problem"]["kind"]) == (3, "deleted")
    shown = network.audit("verify")
    assert shown.returncode == 1 and "first problem at entry 3: entry 3 deleted" in shown.stderr


def test_a_rewritten_tail_and_an_inserted_row_are_named(network: Network) -> None:
    network.scenario()
    assert network.audit("run", "--as", "NL.AUDIT", "--once").returncode == 0
    size = len(_entries(network.store))
    # The last rows deleted: the signed checkpoint covers more than the log holds.
    tamper(network.store, "DELETE FROM entries WHERE position >= ?", (size - 2,))
    report = network.verify()
    assert (report["first_problem"]["entry"], report["first_problem"]["kind"]) == (size - 2, "deleted")
    # A copy of entry 1 inserted as a new last row.
    row = {**_entries(network.store)[1], "offset": 10**9}  # a record Kafka never held at that place
    columns = [c for c in row if c != "position"]
    tamper(
        network.store,
        f"INSERT INTO entries (position, {', '.join(_quoted(c) for c in columns)}) "
        f"VALUES (?, {', '.join('?' for _ in columns)})",
        (size - 2, *(row[c] for c in columns)),
    )
    report = network.verify()
    kinds = {(p["entry"], p["kind"]) for p in report["problems"]}
    assert (size - 2, "inserted") in kinds


def test_a_message_withheld_by_its_sender_is_a_gap(network: Network) -> None:
    for _ in range(3):
        network.ok("fr", "alert", "send", str(ALERT))
    # FR.GN signed its second alert (sequence 2) but it never reached a topic.
    embedded = network.tmp_path / "shared.db"
    with closing(sqlite3.connect(embedded)) as db, db:
        topic = next(t for (t,) in db.execute("SELECT name FROM topics") if t.endswith(".alerts"))
        (offset,) = db.execute("SELECT MIN(offset) + 1 FROM records WHERE topic = ?", (topic,)).fetchone()
        db.execute("DELETE FROM records WHERE topic = ? AND offset = ?", (topic, offset))
    assert network.audit("run", "--as", "NL.AUDIT", "--once").returncode == 0
    report = network.verify()
    assert [(g["sender"], g["first"], g["last"]) for g in report["gaps"]] == [("FR.GN", 2, 2)]
    shown = network.audit("verify")
    assert "withheld: FR.GN: 1 message(s) withheld or lost (number 2" in shown.stdout


@pytest.mark.parametrize("network", ON_KAFKA, indirect=True)
def test_a_case_bundle_verifies_offline_and_fails_when_altered(network: Network, tmp_path: Path) -> None:
    network.scenario()
    assert network.audit("run", "--as", "NL.AUDIT", "--once").returncode == 0
    bundle = tmp_path / "case.json"
    exported = network.audit("export", "--case", CASE, str(bundle))
    assert exported.returncode == 0, exported.stderr
    data = json.loads(bundle.read_text())
    types = sorted(e["meta"]["message_type"] for e in data["entries"])
    assert types == [ALERT_TYPE] * 3 + ["op7.exchange.Receipt", REQUEST_TYPE]

    # Anyone, anywhere: a new home with nothing in it, the network's anchor file beside the bundle.
    anchor = tmp_path / "anchor.json"
    anchor.write_text((network.homes["es"] / "anchor.json").read_text())
    court = tmp_path / "court"
    checked = run_op7(court, "verify-bundle", str(bundle), "--anchor", str(anchor), bootstrap="127.0.0.1:1")
    assert checked.returncode == 0, checked.stderr
    assert "every message, proof and signature verifies" in checked.stdout
    assert f"FR.GN -> ES.PN  {REQUEST_TYPE}" in checked.stdout
    assert "content sealed to its recipients (not opened)" in checked.stdout
    without = run_op7(court, "verify-bundle", str(bundle))
    assert without.returncode == 0 and "warning: no anchor given" in without.stderr

    entry = data["entries"][0]
    value = base64.b64decode(entry["value"])
    entry["value"] = base64.b64encode(value[:-1] + bytes([value[-1] ^ 1])).decode()
    altered = tmp_path / "altered.json"
    altered.write_text(json.dumps(data))
    refused = run_op7(court, "verify-bundle", str(altered), "--anchor", str(anchor))
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert "the bundle does NOT verify" in refused.stderr and "entry " in refused.stderr
    unknown = network.audit("export", "--case", "NO-SUCH-CASE", str(tmp_path / "none.json"))
    assert unknown.returncode == 1 and "no verified message of it" in unknown.stderr


def _entries(url: str) -> list[dict[str, Any]]:
    """The rows of the entries table, in position order."""
    if url.startswith("sqlite:///"):
        with closing(sqlite3.connect(url.removeprefix("sqlite://"))) as db:
            db.row_factory = sqlite3.Row
            return [dict(r) for r in db.execute("SELECT * FROM entries ORDER BY position")]
    import psycopg
    from psycopg.rows import dict_row

    with closing(psycopg.connect(url, row_factory=dict_row)) as pg:
        rows = pg.execute("SELECT * FROM entries ORDER BY position").fetchall()
    return [{k: bytes(v) if isinstance(v, memoryview) else v for k, v in r.items()} for r in rows]


def _swap(url: str, a: int, b: int) -> None:
    tamper(url, "UPDATE entries SET position = -1 WHERE position = ?", (a,))
    tamper(url, "UPDATE entries SET position = ? WHERE position = ?", (a, b))
    tamper(url, "UPDATE entries SET position = ? WHERE position = -1", (b,))


def _quoted(column: str) -> str:
    return f'"{column}"' if column in ("partition", "offset") else column


def test_the_report_counts_the_scenario_and_goes_out_as_a_national_report(network: Network, tmp_path: Path) -> None:
    network.scenario()
    # ES.PN answers the request: an answer in time, whose response time the report gives.
    (received,) = json.loads(network.ok("es", "exchanges", "list", "--as", "ES.PN", "--json").stdout)
    network.ok(
        "es", "reply", received["message_id"], "MutualLegalAssistanceResponse", str(MLA_RESPONSE), "--as", "ES.PN"
    )
    assert network.audit("run", "--as", "NL.AUDIT", "--once").returncode == 0
    made = network.audit("report", "--format", "csv", "--status", "Exercise", "--chart", str(tmp_path / "chart.svg"))
    assert made.returncode == 0, made.stderr
    figures = {tuple(row[:5]): row[5] for row in csv.reader(io.StringIO(made.stdout))}
    exercise = "Exercise"
    assert figures["messages_by_type", exercise, ALERT_TYPE, "", "count"] == "3"
    assert figures["messages_by_type", exercise, REQUEST_TYPE, "", "count"] == "1"
    assert figures["messages_by_type", exercise, "op7.exchange.Receipt", "", "count"] == "1"
    assert figures["messages_by_sender", exercise, "FR.GN", "", "count"] == "4"
    assert figures["messages_by_sender", exercise, "ES.PN", "", "count"] == "2"
    # The sealed request: its deadline is closed to the auditor, so the type's default judges it (said so).
    assert figures["requests", exercise, REQUEST_TYPE, "", "in_time"] == "1"
    assert figures["response_times", exercise, REQUEST_TYPE, "", "count"] == "1"
    assert figures["response_times_by_pair", exercise, "FR->ES", "", "count"] == "1"
    assert 0 < float(figures["response_times", exercise, REQUEST_TYPE, "", "p50"]) < 600
    assert figures["requests", exercise, REQUEST_TYPE, "", "sealed"] == "1"
    assert figures["deadline_basis", exercise, "type-default", "", "count"] == "1"
    assert figures["alerts", exercise, "FR", "", "issued"] == "1"
    assert figures["alerts", exercise, "FR", "", "open"] == "1"
    assert figures["refusals", "", "BR.PF", "audit", "unknown-sender"] == "1"
    svg = defusedxml.ElementTree.parse(tmp_path / "chart.svg").getroot()
    assert svg.tag.endswith("svg")
    # A period before the scenario counts nothing.
    empty = network.audit("report", "--format", "json", "--since", "2020-01-01", "--until", "2020-02-01")
    assert empty.returncode == 0 and json.loads(empty.stdout)["entries_read"] == len(_entries(network.store))
    bad = network.audit("report", "--since", "yesterday")
    assert bad.returncode == 1 and "--since 'yesterday'" in bad.stderr

    sent = network.audit("report", "--status", "Exercise", "--as", "NL.AUDIT", "--send")
    assert sent.returncode == 0, sent.stderr
    assert "sent op7.report.NationalReport" in sent.stdout
    assert network.audit("run", "--as", "NL.AUDIT", "--once").returncode == 0
    logged = [json.loads(e["meta"]) for e in _entries(network.store) if e["kind"] == "message"]
    assert any(m.get("message_type") == "op7.report.NationalReport" and m["sender"] == "NL.AUDIT" for m in logged)


def test_the_auditor_runs_as_a_service_and_signs_a_checkpoint_when_stopped(network: Network) -> None:
    auditor = Background(
        network.homes["auditor"],
        network.bootstrap,
        "audit",
        "run",
        "--as",
        "NL.AUDIT",
        "--store",
        network.store,
        "--checkpoint-interval",
        "1h",
    )
    try:
        auditor.wait_for("auditing")
        network.ok("fr", "alert", "send", str(ALERT))
        deadline = time.monotonic() + 60
        while not any(e["kind"] == "message" for e in _entries(network.store)):
            assert time.monotonic() < deadline, auditor.stderr()
            time.sleep(0.2)
    finally:
        err = auditor.stop()
    assert auditor.process.returncode == 0, err
    # Ctrl-C: what was logged is signed for before the auditor ends.
    assert "logged 2 of 2 records read (0 refused); checkpoint of size 2 signed by NL.AUDIT" in err
    assert network.verify()["uncovered"] == 0
