"""The metrics a subscription keeps while it reads, on the embedded transport and on a real Kafka broker: each message
handed over and each record refused counted once, and the lag of each partition read (records not handled yet)."""

from __future__ import annotations

import asyncio
from typing import Any

from broker.node.metrics import Lag, Metrics
from broker.node.node import TOPIC_ALERTS, Delivery, Node, Subscription
from broker.trust.store import TrustStore
from broker.wire.envelope import NodeIdentity
from tests.conftest import make_alert


async def _lag_reaches(sub: Subscription, total: int, timeout: float = 20.0) -> Lag:
    """The subscription's lag once its partitions' ends are known and it adds up to ``total``."""
    async with asyncio.timeout(timeout):
        while True:  # polled: the ends of Kafka partitions become known as the consumer's fetches return
            lag = await sub.lag()
            if sum(lag.values()) == total:
                return lag
            await asyncio.sleep(0.1)


async def test_handed_over_refused_and_behind_are_measured(
    transport_factory: Any, trust: TrustStore, fr: NodeIdentity, alert_data: dict[str, Any], unique: str
) -> None:
    prefix = f"op7.t{unique}"
    alerts = [make_alert(alert_data, alert_id=f"A{i}", case_id=f"C-{i}") for i in range(6)]
    async with Node(transport_factory(), trust, fr, topic_prefix=prefix) as sender:
        for alert in alerts:
            await sender.publish(alert)
        await sender.transport.send(sender.topic(TOPIC_ALERTS), b"\x00garbage", key=b"C-0")
    got: list[Delivery] = []
    async with Node(transport_factory(), trust, None, topic_prefix=prefix) as ops, ops.subscribe("NL.NCC") as sub:
        sub.metrics = metrics = Metrics()
        stats = await asyncio.wait_for(sub.run(got.append, limit=2, idle_timeout=20), 40)
        # Four alerts and the garbage not handled yet (fetched and waiting here, or not fetched), or the garbage
        # refused already: what is behind counts what is not handled, wherever it is.
        refused = sum(stats.quarantined.values())
        lag = await _lag_reaches(sub, 5 - refused)
        assert {topic for topic, _ in lag} == {ops.topic(TOPIC_ALERTS)}
        stats = await asyncio.wait_for(sub.run(got.append, idle_timeout=3), 40)  # the rest, until none comes
        await _lag_reaches(sub, 0)
    topic = ops.topic(TOPIC_ALERTS)
    assert len(got) == 6
    assert metrics.value("op7_messages_handled_total", topic=topic, type="KidnappingAlert") == 6
    assert metrics.value("op7_handler_seconds_count") == 6
    assert dict(stats.quarantined) == {"bad-magic": 1}
    assert metrics.value("op7_messages_refused_total", reason="bad-magic") == 1
