"""The signed alert path, written once and run on the embedded transport and on a real Kafka broker."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import pytest

from broker.errors import HandlerError
from broker.models import KidnappingAlert
from broker.node.node import TOPIC_ALERTS, TOPIC_QUARANTINE, Delivery, Node
from broker.trust.store import TrustStore
from broker.wire.envelope import NodeIdentity, build
from broker.wire.signing import SigningKey
from tests.conftest import make_alert, now


def _node(factory: Any, trust: TrustStore, prefix: str, identity: NodeIdentity | None = None) -> Node:
    return Node(factory(), trust, identity, topic_prefix=prefix)


async def _collect(node: Node, group: str, count: int, timeout: float = 30.0) -> tuple[list[Delivery], Any]:
    got: list[Delivery] = []
    async with node.subscribe(group) as sub:
        stats = await asyncio.wait_for(sub.run(got.append, limit=count, idle_timeout=timeout), timeout + 10)
    return got, stats


async def _quarantine(node: Node, unique: str, count: int) -> list[dict[str, Any]]:
    consumer = node.transport.consumer([node.topic(TOPIC_QUARANTINE)], f"q-{unique}")
    out: list[dict[str, Any]] = []
    async with consumer:
        for _ in range(40):
            out.extend(json.loads(r.value) for r in await consumer.fetch(timeout=0.5))
            if len(out) >= count:
                break
    return out


async def test_published_alert_arrives_verified_and_decoded(
    transport_factory: Any, trust: TrustStore, fr: NodeIdentity, alert_data: dict[str, Any], unique: str
) -> None:
    prefix = f"op7.t{unique}"
    alerts = [make_alert(alert_data, case_id=f"CASE-{i % 2}", alert_id=f"A{i}") for i in range(4)]
    async with _node(transport_factory, trust, prefix, fr) as sender:
        published = [await sender.publish(a) for a in alerts]
    async with _node(transport_factory, trust, prefix) as ops:
        got, stats = await _collect(ops, "NL.NCC", 4)
    assert stats.quarantined.total() == 0
    assert sorted(d.message.alert_id for d in got) == ["A0", "A1", "A2", "A3"]  # type: ignore[attr-defined]
    for case in ("CASE-0", "CASE-1"):  # one case's alerts stay in order
        ids = [d.message.alert_id for d in got if d.envelope.case_id == case]  # type: ignore[attr-defined]
        assert ids == sorted(ids)
    by_id = {p.envelope.message_id: p for p in published}
    for d in got:
        assert d.envelope.sender == "FR.GN"
        assert d.raw == by_id[d.envelope.message_id].raw  # the exact bytes that were signed
        assert d.record.key == d.envelope.case_id.encode()  # type: ignore[union-attr]


async def test_tampered_and_untrusted_records_go_to_quarantine_with_reason(
    transport_factory: Any,
    trust: TrustStore,
    fr: NodeIdentity,
    keys: dict[str, SigningKey],
    alert_data: dict[str, Any],
    unique: str,
) -> None:
    prefix = f"op7.t{unique}"
    good = make_alert(alert_data, alert_id="GOOD")
    stranger_alert = make_alert(alert_data, alert_id="STRANGER", issuer={**alert_data["issuer"], "node": "MX.FGR"})
    async with _node(transport_factory, trust, prefix, fr) as sender:
        topic = sender.topic(TOPIC_ALERTS)
        key = good.case_id.encode()  # same partition as the good one, which comes last
        _, frame = build(fr, make_alert(alert_data, alert_id="FLIPPED"), now=now())
        flipped = bytearray(frame)
        flipped[len(flipped) // 2] ^= 0x01
        await sender.transport.send(topic, bytes(flipped), key=key)
        _, stranger = build(NodeIdentity("MX.FGR", keys["MX.FGR"]), stranger_alert, now=now())
        await sender.transport.send(topic, stranger, key=key)
        _, impostor = build(
            NodeIdentity("FR.GN", keys["ES.PN"]), make_alert(alert_data, alert_id="IMPOSTOR"), now=now()
        )
        await sender.transport.send(topic, impostor, key=key)
        await sender.transport.send(topic, b"\x00garbage", key=key)
        await sender.publish(good)
    async with _node(transport_factory, trust, prefix) as ops:
        got, stats = await _collect(ops, "NL.NCC", 1)
        entries = await _quarantine(ops, unique, 4)
    assert [d.message.alert_id for d in got] == ["GOOD"]  # type: ignore[attr-defined]
    assert dict(stats.quarantined) == {
        "bad-signature": 1,
        "unknown-sender": 1,
        "unknown-key": 1,
        "bad-magic": 1,
    }
    assert sorted(e["reason"] for e in entries) == [
        "bad-magic",
        "bad-signature",
        "unknown-key",
        "unknown-sender",
    ]
    kept = {e["reason"]: base64.b64decode(e["value"]) for e in entries}
    assert kept["bad-signature"] == bytes(flipped)  # nothing is lost: the exact bytes are kept
    assert all(e["topic"] == ops.topic(TOPIC_ALERTS) and e["detail"] for e in entries)


async def test_failed_handler_leaves_the_message_for_the_next_run(
    transport_factory: Any, trust: TrustStore, fr: NodeIdentity, alert_data: dict[str, Any], unique: str
) -> None:
    prefix = f"op7.t{unique}"
    async with _node(transport_factory, trust, prefix, fr) as sender:
        await sender.publish(make_alert(alert_data, alert_id="FIRST"))
        await sender.publish(make_alert(alert_data, alert_id="SECOND"))

    def fail_on_second(d: Delivery) -> None:
        assert isinstance(d.message, KidnappingAlert)
        if d.message.alert_id == "SECOND":
            raise RuntimeError("database down")

    async with _node(transport_factory, trust, prefix) as ops, ops.subscribe("NL.NCC") as sub:
        with pytest.raises(HandlerError, match="database down"):
            await asyncio.wait_for(sub.run(fail_on_second, idle_timeout=20), 30)
    async with _node(transport_factory, trust, prefix) as ops:
        got, _ = await _collect(ops, "NL.NCC", 1)
    assert [d.message.alert_id for d in got] == ["SECOND"]  # type: ignore[attr-defined]


async def test_a_subscription_run_again_skips_nothing(
    transport_factory: Any, trust: TrustStore, fr: NodeIdentity, alert_data: dict[str, Any], unique: str
) -> None:
    """After a handler error or a limit, the same subscription resumes exactly where it stopped."""
    prefix = f"op7.t{unique}"
    async with _node(transport_factory, trust, prefix, fr) as sender:
        for i in range(5):
            await sender.publish(make_alert(alert_data, alert_id=f"A{i}"))
    seen: list[str] = []
    fail_once = {"A1"}

    def handler(d: Delivery) -> None:
        assert isinstance(d.message, KidnappingAlert)
        if d.message.alert_id in fail_once:
            fail_once.clear()
            raise RuntimeError("transient")
        seen.append(d.message.alert_id)

    async with _node(transport_factory, trust, prefix) as ops, ops.subscribe("NL.NCC") as sub:
        with pytest.raises(HandlerError):
            await asyncio.wait_for(sub.run(handler, idle_timeout=20), 30)
        assert seen == ["A0"]
        await asyncio.wait_for(sub.run(handler, limit=1, idle_timeout=20), 30)
        assert seen == ["A0", "A1"]
        async with _node(transport_factory, trust, prefix, fr) as sender:
            await sender.publish(make_alert(alert_data, alert_id="A5"))
        await asyncio.wait_for(sub.run(handler, limit=4, idle_timeout=20), 30)
    assert seen == ["A0", "A1", "A2", "A3", "A4", "A5"]
    async with _node(transport_factory, trust, prefix) as ops, ops.subscribe("NL.NCC") as again:
        stats = await again.run(lambda d: None, idle_timeout=2)  # everything was committed
    assert stats.received == 0


async def test_an_oversized_record_is_quarantined_and_does_not_block_the_partition(
    transport_factory: Any, trust: TrustStore, fr: NodeIdentity, alert_data: dict[str, Any], unique: str
) -> None:
    import hashlib

    prefix = f"op7.t{unique}"
    after = make_alert(alert_data, alert_id="AFTER")
    huge = b"OP7\x01" + bytes(800_000)
    async with _node(transport_factory, trust, prefix, fr) as sender:
        await sender.transport.send(sender.topic(TOPIC_ALERTS), huge, key=after.case_id.encode())
        await sender.publish(after)
    async with _node(transport_factory, trust, prefix) as ops:
        got, stats = await _collect(ops, "NL.NCC", 1)
        (entry,) = await _quarantine(ops, unique, 1)
    assert [d.message.alert_id for d in got] == ["AFTER"]  # type: ignore[attr-defined]
    assert dict(stats.quarantined) == {"too-large": 1}
    assert entry["value_length"] == len(huge)
    assert entry["value_sha256"] == hashlib.sha256(huge).hexdigest()
    assert base64.b64decode(entry["value_prefix"]) == huge[:65_536]
    assert "value" not in entry


async def test_a_signed_batch_crosses_the_transport_and_each_message_verifies(
    transport_factory: Any, trust: TrustStore, fr: NodeIdentity, alert_data: dict[str, Any], unique: str
) -> None:
    prefix = f"op7.t{unique}"
    alerts = [make_alert(alert_data, alert_id=f"B{i}") for i in range(50)]
    async with _node(transport_factory, trust, prefix, fr) as sender:
        published = await sender.publish_batch(alerts)
    assert len({p.raw[4] for p in published}) == 1 and published[0].raw[4] == 2  # scheme 2
    async with _node(transport_factory, trust, prefix) as ops:
        got, stats = await _collect(ops, "NL.NCC", 50)
    assert stats.quarantined.total() == 0
    assert sorted(d.message.alert_id for d in got) == sorted(a.alert_id for a in alerts)  # type: ignore[attr-defined]
