"""What a node refuses to send, on both transports: what every receiver would refuse, mistyped recipients, RED
content in clear, answers of the wrong kind; and error reports that do not multiply with re-injected copies."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from broker.clock import ManualClock
from broker.errors import ConfigError
from broker.models import Authority, ErrorReport, Handling, Tlp
from broker.models.directory import Role
from broker.node.exchange import ExchangeAgent
from broker.node.exchange_store import ExchangeState, ExchangeStore
from broker.node.node import Node
from broker.transport import Record
from broker.trust import admin
from broker.trust.directory import DirectoryAnchor, DirectoryTrust
from broker.trust.replay import ReplayGuard
from broker.trust.store import TrustStore
from broker.wire.envelope import NodeIdentity, build, open_frame
from broker.wire.sealing import Opener
from broker.wire.signing import EncryptionKey, SigningKey
from tests.conftest import example, make_alert, now
from tests.contract.test_trust import card, genesis, signed

NODES = ("FR.GN", "ES.PN")
KEYS = {n: SigningKey.generate() for n in NODES}
SEALING = {n: EncryptionKey.generate() for n in NODES}


def _trust(*, without_encryption: tuple[str, ...] = ()) -> TrustStore:
    trust = TrustStore()
    for node in NODES:
        trust.add(node, KEYS[node].public, None if node in without_encryption else SEALING[node].public)
    return trust


def _node(factory: Any, prefix: str, node_id: str, trust: Any, **options: Any) -> Node:
    return Node(
        factory(),
        trust,
        NodeIdentity(node_id, KEYS[node_id]),
        topic_prefix=prefix,
        opener=Opener(node_id, [SEALING[node_id]]),
        follow_directory=False,
        **options,
    )


async def _read(factory: Any, topic: str, group: str, *, at_least: int = 0) -> list[Record]:
    records: list[Record] = []
    transport = factory()
    async with transport, transport.consumer([topic], group) as consumer:
        for _ in range(8 if at_least else 4):
            records += await consumer.fetch(timeout=0.5)
            if at_least and len(records) >= at_least:
                break
    return records


async def test_own_revoked_key_or_a_type_not_allowed_is_refused_before_sending(
    transport_factory: Any, unique: str, alert_data: dict[str, Any], clock: ManualClock
) -> None:
    prefix = f"op7.s{unique}"
    key = KEYS["FR.GN"]
    v1 = genesis(card("FR.GN", key))
    trust = DirectoryTrust(DirectoryAnchor.of(admin.read(v1)))
    assert trust.offer(v1, now())
    revoked_at = clock.advance(timedelta(seconds=1))
    clock.advance(timedelta(seconds=1))
    v2 = signed(admin.revoke_key(v1, "FR.GN", key.public.key_id.hex(), "laptop lost", at=revoked_at, now=now()))
    assert trust.offer(v2, now())
    async with _node(transport_factory, prefix, "FR.GN", trust) as fr:
        with pytest.raises(ConfigError) as refused:
            await fr.publish(make_alert(alert_data, alert_id="AFTER-REVOCATION"))
        assert f"FR.GN cannot send KidnappingAlert signed with key {key.public.key_id.hex()}" in str(refused.value)
        assert "laptop lost" in str(refused.value) and "(key-revoked)" in str(refused.value)
    # A node allowed alerts only may not send case information.
    es_key = KEYS["ES.PN"]
    draft = admin.add_node(v2, card("ES.PN", es_key), "PN", [Role.NATIONAL_NODE], ["KidnappingAlert"], now=now())
    assert trust.offer(signed(draft), now())
    async with _node(transport_factory, prefix, "ES.PN", trust) as es:
        with pytest.raises(ConfigError, match=r"ES.PN cannot send CaseInformation .*\(type-not-allowed\)"):
            await es.publish(example("CaseInformation").model_copy(update={"issuer": _authority("ES.PN")}))
    assert await _read(transport_factory, f"{prefix}.alerts", f"r-{unique}") == []
    assert await _read(transport_factory, f"{prefix}.cases", f"r-{unique}") == []


def _authority(node: str) -> Authority:
    issuer = example("MutualLegalAssistanceResponse" if node == "ES.PN" else "MutualLegalAssistanceRequest").issuer
    return Authority.model_validate(issuer.model_dump() | {"node": node})


async def test_an_unknown_recipient_is_refused_and_gets_no_inbox(transport_factory: Any, unique: str) -> None:
    prefix = f"op7.s{unique}"
    request = example("CollaborationRequest")
    typo = request.model_copy(
        update={"requested_authority": request.requested_authority.model_copy(update={"node": "DE.BKA"})}
    )
    async with _node(transport_factory, prefix, "FR.GN", _trust()) as fr:
        with pytest.raises(ConfigError, match=r"unknown recipient DE\.BKA: not in the trust store"):
            await fr.publish(typo)
        with pytest.raises(ConfigError, match=r"unknown recipient DE\.BKA"):
            await fr.publish(example("CaseInformation"), recipients=("ES.PN", "DE.BKA"))
        assert f"{prefix}.inbox.DE.BKA" not in fr.created_topics


async def test_a_directed_red_message_is_sealed_or_refused(transport_factory: Any, unique: str) -> None:
    prefix = f"op7.s{unique}"
    request = example("MutualLegalAssistanceRequest")  # TLP:RED, to ES.PN; no seal asked
    async with _node(transport_factory, prefix, "FR.GN", _trust()) as fr:
        published = await fr.publish(request)
        strict = example("CaseInformation")  # AMBER+STRICT
        assert strict.handling.tlp is Tlp.AMBER_STRICT
        to_es = await fr.publish(strict, recipients=("ES.PN",))
        amber = await fr.publish(strict.model_copy(update={"handling": Handling(tlp=Tlp.AMBER)}), recipients=("ES.PN",))
    assert published.envelope.sealed is not None and to_es.envelope.sealed is not None
    assert amber.envelope.sealed is None  # AMBER may go in clear
    opened = open_frame(published.raw, _trust(), opener=Opener("ES.PN", [SEALING["ES.PN"]]))
    assert opened.message == request
    async with _node(transport_factory, prefix, "FR.GN", _trust(without_encryption=("ES.PN",))) as fr:
        with pytest.raises(
            ConfigError, match=r"cannot seal the MutualLegalAssistanceRequest to ES\.PN, and it is TLP:RED"
        ):
            await fr.publish(request)
        with pytest.raises(ConfigError, match="TLP:AMBER\\+STRICT"):
            await fr.publish(strict, recipients=("ES.PN",))
        with pytest.raises(ConfigError, match="a batch is not sealed"):
            await fr.publish_batch([strict], recipients=("ES.PN",))
        # RED to no one in particular would be read by every subscriber of the shared topic.
        red = strict.model_copy(update={"handling": Handling(tlp=Tlp.RED)})
        with pytest.raises(ConfigError, match="is TLP:RED, for named recipients only, and has none"):
            await fr.publish(red)
        with pytest.raises(ConfigError, match="is TLP:RED, for named recipients only"):
            await fr.publish_batch([red])
        with pytest.raises(ConfigError, match="is TLP:RED, for named recipients only"):
            await fr.publish(strict, handling=Handling(tlp=Tlp.RED))
    records = await _read(transport_factory, f"{prefix}.inbox.ES.PN", f"r-{unique}", at_least=3)
    assert len(records) == 3  # the three sent above; nothing of the refused ones


async def test_an_answer_goes_to_the_asker_and_must_be_of_the_kind_asked(
    transport_factory: Any, unique: str, tmp_path: Path
) -> None:
    prefix = f"op7.s{unique}"
    trust = _trust()

    def agent(node: Node) -> ExchangeAgent:
        assert node.node_id is not None
        return ExchangeAgent(node, ExchangeStore(tmp_path / f"{node.node_id}.db"), _authority(node.node_id))

    async with _node(transport_factory, prefix, "FR.GN", trust) as fr:
        sent = await agent(fr).send(example("CollaborationRequest"))
    request_id = sent.envelope.message_id
    received = []
    async with _node(transport_factory, prefix, "ES.PN", trust) as es:
        es_agent = agent(es)
        await asyncio.wait_for(es_agent.serve(received.append, idle_timeout=2.0, tick_every=0.2), 60)
        (delivery,) = received
        wrong = example("MutualLegalAssistanceResponse")
        with pytest.raises(ConfigError, match=r"answers a request: it goes to the authority that asked"):
            await es.publish(wrong)  # an answer to everyone
        with pytest.raises(ConfigError, match="does not answer a CollaborationRequest: it expects a Collaboration"):
            await es_agent.reply(delivery, wrong)
        with pytest.raises(ConfigError, match=f"{request_id} came from FR.GN: its answer goes there"):
            await es_agent.send(example("CollaborationResponse"), recipients=("ES.PN",), in_reply_to=request_id)
        assert es_agent.store.get(request_id).state is ExchangeState.RECEIVED  # type: ignore[union-attr]
        # Another implementation sends it anyway: the asker does not take it as the answer.
        await es.publish(wrong, recipients=("FR.GN",), in_reply_to=request_id)
    async with _node(transport_factory, prefix, "FR.GN", trust) as fr:
        fr_agent = agent(fr)
        await asyncio.wait_for(fr_agent.serve(lambda d: None, idle_timeout=2.0, tick_every=0.2), 60)
        record = fr_agent.store.get(request_id)
        assert record is not None and record.state is ExchangeState.DELIVERED
        assert "wrong-answer" in [e.state for e in fr_agent.store.events(request_id)]


async def test_error_reports_once_per_frame_and_at_most_n_a_minute(
    transport_factory: Any, unique: str, tmp_path: Path, clock: ManualClock
) -> None:
    prefix = f"op7.s{unique}"
    trust = _trust()
    fr = NodeIdentity("FR.GN", KEYS["FR.GN"])
    ahead = now() + timedelta(hours=1)  # refused as from-the-future, after its sender was verified
    frames = [build(fr, example("NationalReport"), recipients=("ES.PN",), now=ahead)[1] for _ in range(5)]
    inbox = f"{prefix}.inbox.ES.PN"

    async def inject_and_serve(values: list[bytes], limit: int) -> None:
        node = _node(transport_factory, prefix, "ES.PN", trust, replay_guard=ReplayGuard(tmp_path / "replay.db"))
        async with node:
            for value in values:
                await node.transport.send(inbox, value, key=b"k")
            store = ExchangeStore(tmp_path / "es.db")  # the same store across restarts
            es = ExchangeAgent(node, store, _authority("ES.PN"))
            es.reports_per_minute = limit
            await asyncio.wait_for(es.serve(lambda d: None, idle_timeout=2.0, tick_every=60), 60)
            store.close()
        node.replay_guard.close()

    await inject_and_serve([frames[0]] * 4, limit=3)  # four copies of one frame
    await inject_and_serve([frames[0]] * 2, limit=3)  # a restarted watch sees two more
    await inject_and_serve(frames[1:], limit=3)  # four other frames: two more reports this minute
    clock.advance(timedelta(minutes=2))
    await inject_and_serve([frames[4], frames[0]], limit=3)  # a minute later: the one not reported yet
    got = await _read(transport_factory, f"{prefix}.inbox.FR.GN", f"r-{unique}", at_least=4)
    opened = [open_frame(r.value, trust, opener=Opener("FR.GN", [SEALING["FR.GN"]])).message for r in got]
    reports = [m for m in opened if isinstance(m, ErrorReport)]
    digests = [hashlib.sha256(f).digest() for f in frames]
    assert sorted(digests.index(r.message_sha256) for r in reports) == [0, 1, 2, 4]
    assert {r.reason for r in reports} == {"from-the-future"}


async def test_the_receipt_of_a_red_request_is_sealed_to_its_sender(
    transport_factory: Any, unique: str, tmp_path: Path
) -> None:
    prefix = f"op7.s{unique}"
    trust = _trust()
    async with _node(transport_factory, prefix, "FR.GN", trust) as fr:
        fr_agent = ExchangeAgent(fr, ExchangeStore(tmp_path / "fr.db"), _authority("FR.GN"))
        sent = await fr_agent.send(example("MutualLegalAssistanceRequest"))  # TLP:RED
    async with _node(transport_factory, prefix, "ES.PN", trust) as es:
        es_agent = ExchangeAgent(es, ExchangeStore(tmp_path / "es.db"), _authority("ES.PN"))
        await asyncio.wait_for(es_agent.serve(lambda d: None, idle_timeout=2.0, tick_every=60), 60)
    records = await _read(transport_factory, f"{prefix}.inbox.FR.GN", f"r-{unique}", at_least=1)
    (receipt,) = [open_frame(r.value, trust, opener=Opener("FR.GN", [SEALING["FR.GN"]])) for r in records]
    assert receipt.envelope.message_type == "op7.exchange.Receipt" and receipt.envelope.handling.tlp is Tlp.RED
    assert receipt.envelope.sealed is not None  # its desk contact and the digest are for FR.GN only
    assert receipt.message.message_id == sent.envelope.message_id  # type: ignore[attr-defined]


async def test_a_reminder_that_cannot_be_sent_leaves_the_exchange_overdue_and_the_ticks_going(
    transport_factory: Any, unique: str, tmp_path: Path, clock: ManualClock
) -> None:
    prefix = f"op7.s{unique}"
    trust = _trust()
    async with _node(transport_factory, prefix, "FR.GN", trust) as fr:
        fr_agent = ExchangeAgent(fr, ExchangeStore(tmp_path / "fr.db"), _authority("FR.GN"))
        sent = await fr_agent.send(example("CollaborationRequest"))
        trust.remove("ES.PN")  # the addressee left the network: no reminder can go to it
        clock.advance(timedelta(days=30))
        await fr_agent.tick()
        await fr_agent.tick()  # and the next tick runs too
    record = fr_agent.store.get(sent.envelope.message_id)
    assert record is not None and record.state is ExchangeState.OVERDUE
    (overdue,) = [e for e in fr_agent.store.events(record.message_id) if e.state == "overdue"]
    assert "no reminder sent: unknown recipient ES.PN" in overdue.detail
