"""A message is judged by the topic it arrived on too: a trusted node's CaseInformation pushed onto the alerts topic,
or a directed message in the inbox of a node it is not addressed to, is refused as ``wrong-topic`` by the listeners
(``op7 alerts listen``, ``op7 listen``, ``op7 inbox watch``), reported, and kept in quarantine; nothing is shown."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from broker.config import Home
from broker.node.node import Node
from broker.transport import EmbeddedTransport, KafkaTransport, Transport
from broker.trust.store import TrustStore
from broker.wire.envelope import build
from tests.conftest import example, now, run_op7, trusting_homes

NL_CONTACT = ("--agency", "National Crime Agency", "--desk", "NCC duty officer", "--phone", "+31793459911")


@pytest.fixture(params=["embedded", pytest.param("kafka", marks=pytest.mark.kafka)])
def net(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Two homes, FR.GN and NL.NCC, trusting each other, on one embedded file or on the test cluster."""
    bootstrap = request.getfixturevalue("kafka_bootstrap") if request.param == "kafka" else None
    prefix = f"op7t{uuid.uuid4().hex[:10]}"
    monkeypatch.setenv("OP7_TOPIC_PREFIX", prefix)
    monkeypatch.setenv("OP7_EMBEDDED_PATH", str(tmp_path / "shared.db"))
    homes = trusting_homes(tmp_path, {"fr": "FR.GN", "nl": "NL.NCC"})

    def transport() -> Transport:
        return KafkaTransport(bootstrap_servers=bootstrap) if bootstrap else EmbeddedTransport(tmp_path / "shared.db")

    def op7(who: str, *args: str) -> Any:
        result = run_op7(homes[who], *args, bootstrap=bootstrap)
        assert "Traceback" not in result.stderr, result.stderr
        return result

    def push(topic: str, message: Any, recipients: tuple[str, ...] = ()) -> str:
        """Sign ``message`` as FR.GN and write it to ``topic`` as is, the way a faulty or hostile client would."""
        envelope, frame = build(Home(homes["fr"]).identity("FR.GN"), message, recipients=recipients, now=now())

        async def put() -> None:
            async with Node(transport(), TrustStore(), topic_prefix=prefix, follow_directory=False) as node:
                await node.transport.create_topic(node.topic(topic))
                await node.transport.send(node.topic(topic), frame)

        asyncio.run(put())
        return envelope.message_id

    return op7, push, prefix


def test_a_case_information_on_the_alerts_topic_is_not_an_alert(net: Any) -> None:
    op7, push, prefix = net
    message_id = push("alerts", example("CaseInformation"))
    listened = op7("nl", "alerts", "listen", "--as", "NL.NCC", "--json", "--timeout", "3")
    assert listened.returncode == 0, listened.stderr
    assert not any("envelope" in json.loads(line) for line in listened.stdout.splitlines())
    assert "wrong-topic" in listened.stderr and f"not on {prefix}.alerts" in listened.stderr
    assert f"op7.case.CaseInformation without recipients travels on {prefix}.cases" in listened.stderr
    quarantined = json.loads(op7("nl", "quarantine", "list", "--as", "NL.NCC", "--json").stdout)
    assert [q["reason"] for q in quarantined] == ["wrong-topic"], quarantined
    assert message_id  # the refused message is FR.GN's, validly signed: only its topic is wrong

    # The same message on its own topic is shown.
    push("cases", example("CaseInformation"))
    shown = op7("nl", "listen", "--topic", "cases", "--as", "NL.NCC", "--json", "--timeout", "3")
    assert shown.returncode == 0, shown.stderr
    assert [json.loads(line)["envelope"]["message_type"] for line in shown.stdout.splitlines()] == [
        "op7.case.CaseInformation"
    ]


def test_a_message_for_another_node_in_this_inbox_is_refused_and_reported(net: Any) -> None:
    op7, push, prefix = net
    push("inbox.NL.NCC", example("CaseInformation"), recipients=("ES.PN",))
    watched = op7("nl", "inbox", "watch", "--as", "NL.NCC", "--timeout", "3", *NL_CONTACT)
    assert watched.returncode == 0, watched.stderr
    assert "CaseInformation from FR.GN" not in watched.stdout
    assert f"op7: refused {prefix}.inbox.NL.NCC[" in watched.stderr and "wrong-topic" in watched.stderr
    assert f"travels on {prefix}.inbox.ES.PN, not on {prefix}.inbox.NL.NCC" in watched.stderr

    # In --json mode the refusal is a JSON line on standard output too.
    push("inbox.NL.NCC", example("CaseInformation"), recipients=())
    watched = op7("nl", "inbox", "watch", "--as", "NL.NCC", "--timeout", "3", "--json", *NL_CONTACT)
    assert watched.returncode == 0, watched.stderr
    refusals = [json.loads(line)["refused"] for line in watched.stdout.splitlines()]
    assert [r["reason"] for r in refusals] == ["wrong-topic"] and refusals[0]["sender"] == "FR.GN"
    assert refusals[0]["topic"] == f"{prefix}.inbox.NL.NCC"
    assert refusals[0]["message_type"] == "op7.case.CaseInformation"
