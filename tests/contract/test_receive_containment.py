"""Whatever a record holds, a consumer goes on: malformed records end in quarantine with a reason, and are committed."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

import broker.node.receive
from broker.models import KidnappingAlert
from broker.node.node import TOPIC_ALERTS, TOPIC_QUARANTINE, Delivery, Node
from broker.trust.store import TrustStore
from broker.wire.envelope import NodeIdentity
from tests.conftest import make_alert


async def _listen(node: Node, group: str, timeout: float = 20.0) -> tuple[list[str], Any]:
    """The alert ids the node's listener hands over until one arrives (or ``timeout`` passes idle)."""
    got: list[Delivery] = []
    async with node.subscribe(group) as sub:
        stats = await asyncio.wait_for(sub.run(got.append, limit=1, idle_timeout=timeout), timeout + 10)
    return [d.message.alert_id for d in got if isinstance(d.message, KidnappingAlert)], stats


async def _quarantine(node: Node, group: str, count: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    async with node.transport.consumer([node.topic(TOPIC_QUARANTINE)], group) as consumer:
        for _ in range(40):
            out.extend(json.loads(r.value) for r in await consumer.fetch(timeout=0.5))
            if len(out) >= count:
                break
    return out


@pytest.mark.kafka
async def test_a_kafka_tombstone_is_quarantined_and_the_next_alert_still_arrives(
    make_kafka: Any, kafka_bootstrap: str, trust: TrustStore, fr: NodeIdentity, alert_data: dict[str, Any], unique: str
) -> None:
    prefix = f"op7.t{unique}"
    alert = make_alert(alert_data, alert_id="AFTER-TOMBSTONE")
    async with Node(make_kafka(), trust, fr, topic_prefix=prefix) as sender:
        # A plain Kafka client writes a null value (a tombstone) where the alert goes: same topic, same partition.
        producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
        await producer.start()
        try:
            await producer.send_and_wait(sender.topic(TOPIC_ALERTS), None, key=alert.case_id.encode())
        finally:
            await producer.stop()
        await sender.publish(alert)
    async with Node(make_kafka(), trust, topic_prefix=prefix) as ops:
        ids, stats = await _listen(ops, f"NL.NCC-{unique}")
        entries = await _quarantine(ops, f"q-{unique}", 1)
    assert ids == ["AFTER-TOMBSTONE"]
    assert dict(stats.quarantined) == {"empty-record": 1}
    assert [(e["reason"], e["value_length"], e["value"]) for e in entries] == [("empty-record", 0, "")]
    assert "tombstone" in entries[0]["detail"]
    async with Node(make_kafka(), trust, topic_prefix=prefix) as ops:  # committed: not read again
        ids, stats = await _listen(ops, f"NL.NCC-{unique}", timeout=3)
    assert ids == [] and stats.received == 0


async def test_malformed_records_of_any_shape_are_quarantined_and_the_listener_goes_on(
    transport_factory: Any, trust: TrustStore, fr: NodeIdentity, alert_data: dict[str, Any], unique: str
) -> None:
    prefix = f"op7.t{unique}"
    alert = make_alert(alert_data, alert_id="AFTER-GARBAGE")
    huge = b"op7" + bytes(800_000)
    async with Node(transport_factory(), trust, fr, topic_prefix=prefix) as sender:
        topic, key = sender.topic(TOPIC_ALERTS), alert.case_id.encode()
        for value in (b"", b"\x00", huge):
            await sender.transport.send(topic, value, key=key)
        await sender.publish(alert)
    async with Node(transport_factory(), trust, topic_prefix=prefix) as ops:
        ids, stats = await _listen(ops, "NL.NCC")
        entries = await _quarantine(ops, f"q-{unique}", 3)
    assert ids == ["AFTER-GARBAGE"]
    assert dict(stats.quarantined) == {"empty-record": 1, "bad-magic": 1, "too-large": 1}
    assert [(e["reason"], e["value_length"]) for e in entries] == [
        ("empty-record", 0),
        ("bad-magic", 1),
        ("too-large", len(huge)),
    ]
    assert base64.b64decode(entries[2]["value_prefix"]) == huge[:65_536]


async def test_a_check_that_raises_is_contained_as_an_internal_error(
    transport_factory: Any,
    trust: TrustStore,
    fr: NodeIdentity,
    alert_data: dict[str, Any],
    unique: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    prefix = f"op7.t{unique}"
    first, second = make_alert(alert_data, alert_id="TRIPS"), make_alert(alert_data, alert_id="PASSES")
    async with Node(transport_factory(), trust, fr, topic_prefix=prefix) as sender:
        await sender.publish(first)
        await sender.publish(second)
    decode = broker.node.receive.open_and_decode
    calls: list[int] = []

    def trips_once(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("a gap in the checks")
        return decode(*args, **kwargs)

    monkeypatch.setattr(broker.node.receive, "open_and_decode", trips_once)
    async with Node(transport_factory(), trust, topic_prefix=prefix) as ops:
        with caplog.at_level(logging.ERROR, logger="op7.node"):
            ids, stats = await _listen(ops, "NL.NCC")
        entries = await _quarantine(ops, f"q-{unique}", 1)
    assert ids == ["PASSES"]
    assert dict(stats.quarantined) == {"internal-error": 1}
    (entry,) = entries
    assert entry["reason"] == "internal-error" and entry["value"]
    assert "RuntimeError" in entry["detail"] and "a gap in the checks" not in entry["detail"]
    logged = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert logged and logged[0].exc_info is not None  # the traceback, for whoever fixes the gap
