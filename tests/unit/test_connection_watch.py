"""ConnectionWatch: silence within the grace period, one status when the cluster is lost and one when it is back."""

from __future__ import annotations

import asyncio

from broker.clock import ManualClock
from broker.errors import TransportError
from broker.transport import ConnectionStatus, ConnectionWatch, EmbeddedTransport


class Outage(EmbeddedTransport):
    """An embedded transport whose cluster can be made unreachable (the embedded one never is)."""

    down = False

    async def probe(self, timeout: float) -> None:
        if self.down:
            raise TransportError("Kafka: cannot reach 127.0.0.1:9092: KafkaConnectionError", retriable=True)


async def test_a_lost_and_a_restored_connection_are_told_once_each(clock: ManualClock) -> None:
    transport, told = Outage(), []
    watch = ConnectionWatch(transport, told.append, grace=0.3, interval=0.05, clock=clock)
    task = asyncio.create_task(watch.run())
    try:
        transport.down = True
        await asyncio.sleep(0.1)
        assert told == []  # a blip shorter than the grace period is not an outage
        await asyncio.sleep(0.4)
        assert [s.status for s in told] == ["disconnected"]
        assert told[0].since == clock.now() and "cannot reach" in (told[0].reason or "")
        transport.down = False
        await asyncio.sleep(0.2)
        assert [s.status for s in told] == ["disconnected", "connected"]
        assert told[1].to_json() == {"status": "connected", "since": clock.now().isoformat(), "reason": None}
        assert isinstance(told[1], ConnectionStatus) and told[1].connected
    finally:
        task.cancel()


class Busy(EmbeddedTransport):
    """A healthy broker that once answers a probe too slowly (the probe times out after the grace period)."""

    slow_once = True

    async def probe(self, timeout: float) -> None:
        if self.slow_once:
            self.slow_once = False
            await asyncio.sleep(0.2)
            raise TransportError("Kafka: no answer to a metadata request in time", retriable=True)


async def test_one_slow_answer_from_a_busy_broker_is_not_an_outage(clock: ManualClock) -> None:
    told: list[ConnectionStatus] = []
    watch = ConnectionWatch(Busy(), told.append, grace=0.1, interval=0.05, clock=clock)
    task = asyncio.create_task(watch.run())
    try:
        await asyncio.sleep(0.5)
        assert told == [] and watch.connected
    finally:
        task.cancel()
