"""Every frame a node signs carries the next of its sequence numbers (docs/PROTOCOL.md section 3), on both
transports: alerts, batches, exchanges and their receipts; a frame the outbox sends again keeps its number; and the
CLI numbers from its home, across processes."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from broker.cli._common import Env, make_node
from broker.clock import ManualClock
from broker.config import Home, Settings
from broker.errors import ConfigError, DeliveryError
from broker.models import Envelope
from broker.node.exchange import ExchangeAgent
from broker.node.exchange_store import ExchangeStore
from broker.node.node import Delivery, Node
from broker.node.sequence import SenderSequence
from broker.trust.store import TrustStore
from broker.wire.envelope import NodeIdentity, verify_frame
from broker.wire.sealing import Opener
from tests.conftest import EXAMPLE_ALERT, example, make_alert, run_op7
from tests.contract.test_exchange import KEYS, SEALING, TRUST, authority
from tests.contract.test_outbox import Gate


async def _received(factory: Any, trust: TrustStore, prefix: str, count: int) -> list[Delivery]:
    got: list[Delivery] = []
    reader = Node(factory(), trust, topic_prefix=prefix)
    async with reader, reader.subscribe("NL.NCC") as sub:
        await asyncio.wait_for(sub.run(got.append, limit=count, idle_timeout=3), 30)
    return got


async def _every_frame(node: Node, topics: list[str], count: int) -> list[Envelope]:
    """The headers of the ``count`` frames on ``topics`` (full names), verified, as an auditor reads them."""
    consumer = node.transport.consumer(topics, f"audit-{node.topic_prefix}", from_beginning=True)
    envelopes: list[Envelope] = []
    async with consumer:
        for _ in range(60):
            envelopes += [verify_frame(r.value, node.trust).envelope for r in await consumer.fetch(timeout=0.5)]
            if len(envelopes) >= count:
                break
    return envelopes


async def test_a_node_numbers_its_alerts_and_batches_in_one_run(
    transport_factory: Any, trust: TrustStore, fr: NodeIdentity, alert_data: dict[str, Any], unique: str, tmp_path: Path
) -> None:
    prefix = f"op7.q{unique}"
    sequence = SenderSequence("FR.GN", tmp_path / "sequence-FR.GN.db")
    async with Node(transport_factory(), trust, fr, topic_prefix=prefix, sequence=sequence) as node:
        singles = [await node.publish(make_alert(alert_data, alert_id=f"S{i}")) for i in range(2)]
        batch = await node.publish_batch([make_alert(alert_data, alert_id=f"B{i}") for i in range(3)])
        last = await node.publish(make_alert(alert_data, alert_id="S2"))
    assert [p.envelope.sequence for p in [*singles, *batch, last]] == [1, 2, 3, 4, 5, 6]
    got = await _received(transport_factory, trust, prefix, 6)
    numbered = {d.message.alert_id: d.envelope.sequence for d in got}  # type: ignore[attr-defined]
    assert numbered == {"S0": 1, "S1": 2, "B0": 3, "B1": 4, "B2": 5, "S2": 6}
    assert sequence.last() == 6


async def test_a_frame_sent_again_by_the_outbox_keeps_its_number(
    transport_factory: Any,
    trust: TrustStore,
    fr: NodeIdentity,
    alert_data: dict[str, Any],
    unique: str,
    tmp_path: Path,
    clock: ManualClock,
) -> None:
    prefix = f"op7.q{unique}"
    sequence = SenderSequence("FR.GN", tmp_path / "sequence-FR.GN.db")
    node = Node(transport_factory(), trust, fr, topic_prefix=prefix, clock=clock, sequence=sequence)
    node.courier.retry_every = 0.05
    gate = Gate(node.transport)
    async with node:
        gate.plan = ["fail"]
        with pytest.raises(DeliveryError):
            await node.publish(make_alert(alert_data, alert_id="RETRIED"))
        [kept] = node.outbox.copies()
        clock.advance(timedelta(seconds=3))  # the retry is due
        deadline = asyncio.get_running_loop().time() + 20
        while node.outbox.copies():  # the outbox is a database: nothing to wait on but what it holds
            assert asyncio.get_running_loop().time() < deadline, "not sent again within 20 s"
            await asyncio.sleep(0.05)
        after = await node.publish(make_alert(alert_data, alert_id="AFTER"))
    assert gate.attempts[0] == gate.attempts[1] == kept.frame  # the same bytes, so the same number
    assert after.envelope.sequence == 2 and sequence.last() == 2
    got = await _received(transport_factory, trust, prefix, 2)
    assert {d.message.alert_id: d.envelope.sequence for d in got} == {"RETRIED": 1, "AFTER": 2}  # type: ignore[attr-defined]


async def test_exchanges_and_their_receipts_are_numbered_by_each_sender(
    transport_factory: Any, unique: str, tmp_path: Path
) -> None:
    prefix = f"op7.q{unique}"

    def party(node_id: str) -> tuple[Node, ExchangeAgent]:
        sequence = SenderSequence(node_id, tmp_path / f"sequence-{node_id}.db")
        identity, opener = NodeIdentity(node_id, KEYS[node_id]), Opener(node_id, [SEALING[node_id]])
        node = Node(transport_factory(), TRUST, identity, opener=opener, topic_prefix=prefix, sequence=sequence)
        store = ExchangeStore(tmp_path / f"{node_id}-exchanges.db")
        return node, ExchangeAgent(node, store, authority(node_id))

    fr, fr_agent = party("FR.GN")
    es, es_agent = party("ES.PN")
    async with fr, es:
        await fr_agent.send(example("MutualLegalAssistanceRequest"))
        seen: list[Delivery] = []
        await asyncio.wait_for(es_agent.serve(seen.append, idle_timeout=2, tick_every=0.2), 60)
        await es_agent.reply(seen[0], example("MutualLegalAssistanceResponse"))
        await asyncio.wait_for(fr_agent.serve(lambda _: None, idle_timeout=2, tick_every=0.2), 60)
        inboxes = [fr.topic(fr.inbox_of(n)) for n in ("FR.GN", "ES.PN")]
        frames = await _every_frame(fr, inboxes, 4)
    numbers = sorted((e.sender, e.sequence, e.message_type.rsplit(".", 1)[1]) for e in frames)
    # Each sender's own run, whatever it signed: a request and a receipt, or a receipt and an answer.
    assert [(s, n) for s, n, _ in numbers] == [("ES.PN", 1), ("ES.PN", 2), ("FR.GN", 1), ("FR.GN", 2)]
    assert {t for _, _, t in numbers} == {"MutualLegalAssistanceRequest", "MutualLegalAssistanceResponse", "Receipt"}


def test_a_node_without_a_sequence_signs_unnumbered_and_a_sequence_is_its_signers(
    trust: TrustStore, fr: NodeIdentity, tmp_path: Path
) -> None:
    from broker.transport.embedded import EmbeddedTransport

    transport = EmbeddedTransport(tmp_path / "bus.db")
    assert Node(transport, trust, fr).numbering is None
    with pytest.raises(ConfigError, match=r"sequence numbers of ES\.PN are for its frames"):
        Node(transport, trust, fr, sequence=SenderSequence("ES.PN"))
    with pytest.raises(ConfigError, match="signs as nobody"):
        Node(transport, trust, sequence=SenderSequence("FR.GN"))


def test_make_node_gives_a_signing_node_its_homes_sequence(tmp_path: Path) -> None:
    settings = Settings.load(home=tmp_path / "home")
    env = Env(settings, Home(settings.home, settings=settings), 0)
    env.home.new_key("FR.GN")
    signing = make_node(env, me="FR.GN", sign=True)
    assert signing.sequence is not None and signing.sequence.path == env.home.sequence_path("FR.GN")
    assert env.home.sequence_path("FR.GN").parent == env.home.state_dir()  # one counter per network
    assert make_node(env, me="FR.GN", group="FR.GN").sequence is None  # a reader signs nothing


def test_op7_alert_send_numbers_from_its_home_across_processes(tmp_path: Path) -> None:
    """Two commands one after the other, then two at once: four frames, numbered 1 to 4, none twice."""
    home = tmp_path / "home"
    assert run_op7(home, "keys", "new", "FR.GN").returncode == 0
    for _ in range(2):
        sent = run_op7(home, "alert", "send", str(EXAMPLE_ALERT))
        assert sent.returncode == 0, sent.stderr
    command = [sys.executable, "-m", "broker.cli", "alert", "send", str(EXAMPLE_ALERT)]
    environment = {**os.environ, "OP7_HOME": str(home)}
    environment.pop("OP7_BOOTSTRAP", None)
    running = [subprocess.Popen(command, env=environment, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    for process in running:
        _, err = process.communicate(timeout=90)
        assert process.returncode == 0, err
    listened = run_op7(home, "alerts", "listen", "--json", "--count", "4", "--group", "NL.NCC")
    assert listened.returncode == 0, listened.stderr
    envelopes = [json.loads(line)["envelope"] for line in listened.stdout.splitlines()]
    assert sorted(e["sequence"] for e in envelopes) == [1, 2, 3, 4]
    assert [e["sequence"] for e in envelopes[:2]] == [1, 2]  # one case, one partition: the first two in order
