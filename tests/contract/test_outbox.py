"""The durable outbox: a frame is recorded before it is sent and sent again, with the same bytes, until acknowledged.

The transport under the node is the embedded one or a real Kafka broker, with a gate in front of its ``send`` that
holds or fails the attempts a test chooses (the real faults, on a real cluster, are in tests/cluster/test_faults.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from broker.clock import ManualClock
from broker.errors import DeliveryError, TransportError
from broker.node.node import Delivery, Node
from broker.node.outbox import Outbox, State
from broker.transport.base import Sent, Transport
from broker.trust.store import TrustStore
from broker.wire.envelope import NodeIdentity
from tests.conftest import make_alert


class Gate:
    """What the next attempts to send do: ``fail`` (retriable or not) or ``hold`` (until opened), then pass."""

    def __init__(self, transport: Transport) -> None:
        self.plan: list[str] = []
        self.opened = asyncio.Event()
        self.attempts: list[bytes] = []
        original = transport.send_soon

        async def send_soon(topic: str, value: bytes, *, key: bytes | None = None) -> Awaitable[Sent]:
            self.attempts.append(value)
            step = self.plan.pop(0) if self.plan else "pass"
            if step == "fail":
                raise TransportError("Kafka: send: NotEnoughReplicas (test)", retriable=True)
            if step == "refuse":
                raise TransportError("Kafka: send: RecordTooLarge (test)", retriable=False)
            if step == "hold":

                async def later() -> Sent:
                    await self.opened.wait()
                    return await (await original(topic, value, key=key))

                return asyncio.ensure_future(later())
            return await original(topic, value, key=key)

        transport.send_soon = send_soon  # type: ignore[method-assign]


@dataclass
class World:
    """A sending node's surroundings: the backend, the trust, FR.GN's identity, the topics and the test clock."""

    factory: Any
    trust: TrustStore
    fr: NodeIdentity
    prefix: str
    clock: ManualClock
    alert_data: dict[str, Any]

    def sender(self, **options: Any) -> tuple[Node, Gate]:
        """FR.GN's node (retrying every 0.05 s) and the gate in front of its transport."""
        node = Node(self.factory(), self.trust, self.fr, topic_prefix=self.prefix, clock=self.clock, **options)
        node.courier.retry_every = 0.05
        return node, Gate(node.transport)

    def alert(self, **changes: Any) -> Any:
        return make_alert(self.alert_data, **changes)

    async def received(self, count: int) -> list[Delivery]:
        got: list[Delivery] = []
        reader = Node(self.factory(), self.trust, topic_prefix=self.prefix, clock=self.clock)
        async with reader, reader.subscribe("NL.NCC") as sub:
            await asyncio.wait_for(sub.run(got.append, limit=count, idle_timeout=3), 30)
        return got


@pytest.fixture
def world(
    transport_factory: Any,
    trust: TrustStore,
    fr: NodeIdentity,
    alert_data: dict[str, Any],
    unique: str,
    clock: ManualClock,
) -> World:
    return World(transport_factory, trust, fr, f"op7.t{unique}", clock, alert_data)


async def _until(done: Any, what: str, timeout: float = 20) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    # The outbox is a database: nothing to wait on but what it holds.
    while not done():
        assert asyncio.get_running_loop().time() < deadline, f"not {what} within {timeout} s"
        await asyncio.sleep(0.05)


async def test_a_send_not_acknowledged_in_time_is_pending_then_acknowledged_late(world: World) -> None:
    node, gate = world.sender(delivery_timeout=0.3)
    async with node:
        gate.plan = ["hold"]
        with pytest.raises(DeliveryError) as caught:
            await node.publish(world.alert(case_id="CASE-LATE"))
        error = caught.value
        assert error.outcome == "pending" and error.case_id == "CASE-LATE"
        assert error.message_id in str(error) and "CASE-LATE" in str(error) and "not acknowledged within" in str(error)
        assert [c.message_id for c in node.outbox.copies()] == [error.message_id]
        gate.opened.set()  # the held send completes after its caller gave up: the outbox learns it
        await _until(lambda: not node.outbox.copies(), "acknowledged late")
    got = await world.received(1)
    assert [d.envelope.message_id for d in got] == [error.message_id]


async def test_a_failed_send_is_sent_again_with_the_same_bytes_and_handed_over_once(world: World) -> None:
    node, gate = world.sender(delivery_timeout=5)
    async with node:
        gate.plan = ["fail"]
        with pytest.raises(DeliveryError) as caught:
            await node.publish(world.alert(case_id="CASE-RETRY"))
        assert caught.value.outcome == "pending" and "NotEnoughReplicas" in str(caught.value)
        [copy] = node.outbox.copies()
        assert copy.attempts == 1 and copy.state is State.PENDING
        await asyncio.sleep(0.3)
        assert len(gate.attempts) == 1  # not due yet: the wait doubles with each attempt
        world.clock.advance(timedelta(seconds=3))
        await _until(lambda: not node.outbox.copies(), "sent again")
        # And once more, as if the first attempt had in fact arrived: receivers see a duplicate, not a message.
        await node.transport.send(copy.topic, copy.frame, key=copy.key)
    assert gate.attempts[0] == gate.attempts[1] == copy.frame  # same id, same signature
    got = await world.received(2)
    assert [d.envelope.message_id for d in got] == [caught.value.message_id]


async def test_a_case_keeps_its_order_when_an_earlier_message_waits(world: World) -> None:
    node, gate = world.sender(delivery_timeout=5)
    async with node:
        gate.plan = ["fail"]
        with pytest.raises(DeliveryError):
            await node.publish(world.alert(case_id="CASE-ORDER", alert_id="A1"))
        # The next message of the case goes after the first (sent again first), not before it.
        second = await node.publish(world.alert(case_id="CASE-ORDER", alert_id="A2"))
        other = await node.publish(world.alert(case_id="CASE-OTHER", alert_id="B1"))
        assert second.sent.offset >= 0 and other.sent.offset >= 0
        assert not node.outbox.copies()
    got = await world.received(3)
    ids = [d.message.alert_id for d in got if d.envelope.case_id == "CASE-ORDER"]  # type: ignore[attr-defined]
    assert ids == ["A1", "A2"]


async def test_a_refusal_for_good_is_failed_and_not_sent_again_by_itself(world: World) -> None:
    node, gate = world.sender(delivery_timeout=5)
    async with node:
        gate.plan = ["refuse"]
        with pytest.raises(DeliveryError) as caught:
            await node.publish(world.alert())
        assert caught.value.outcome == "failed" and "RecordTooLarge" in str(caught.value)
        world.clock.advance(timedelta(minutes=5))
        await asyncio.sleep(0.3)
        assert len(gate.attempts) == 1
        assert [c.state for c in node.outbox.copies()] == [State.FAILED]
        assert node.outbox.reopen() == 1  # 'op7 outbox retry': due again at once
        await _until(lambda: not node.outbox.copies(), "sent after reopening")


async def test_what_a_stopped_node_left_pending_is_sent_by_its_next_run(world: World, tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    first, gate = world.sender(outbox=Outbox(path), delivery_timeout=5)
    async with first:
        gate.plan = ["fail"]
        with pytest.raises(DeliveryError) as caught:
            await first.publish(world.alert())
    first.outbox.close()
    world.clock.advance(timedelta(seconds=5))
    second, _ = world.sender(outbox=Outbox(path))
    async with second:
        await _until(lambda: not second.outbox.copies(), "sent by the next run")
    got = await world.received(1)
    assert [d.envelope.message_id for d in got] == [caught.value.message_id]


async def test_a_node_that_cannot_reach_the_cluster_keeps_what_it_signs(
    trust: TrustStore, fr: NodeIdentity, alert_data: dict[str, Any], clock: ManualClock
) -> None:
    node = Node(_Unreachable(), trust, fr, clock=clock)
    node.courier.held = "the cluster is out of reach"
    with pytest.raises(DeliveryError) as caught:
        await node.publish(make_alert(alert_data, case_id="CASE-HELD"))
    assert caught.value.outcome == "pending" and "out of reach" in str(caught.value)
    assert [c.case_id for c in node.outbox.copies()] == ["CASE-HELD"]


class _Unreachable(Transport):
    name = "unreachable"

    async def create_topic(self, topic: str, **options: Any) -> None:
        raise AssertionError("nothing is sent by a node that holds")

    async def delete_topic(self, topic: str) -> None:
        raise AssertionError

    async def send(self, topic: str, value: bytes, *, key: bytes | None = None) -> Sent:
        raise AssertionError("nothing is sent by a node that holds")

    def consumer(self, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError

    async def start(self) -> None:
        raise AssertionError

    async def stop(self) -> None:
        return None
