"""Transport behaviour, written once and run on the embedded transport and on a real Kafka broker."""

from __future__ import annotations

from typing import Any

from broker.transport import Record, Transport


async def _drain(consumer: Any, want: int, timeout: float = 20.0) -> list[Record]:
    import asyncio

    out: list[Record] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while len(out) < want and loop.time() < deadline:
        out.extend(await consumer.fetch(timeout=0.5))
    return out


async def test_records_of_one_key_keep_their_order(transport: Transport, unique: str) -> None:
    topic = f"op7.test-order-{unique}"
    await transport.create_topic(topic)
    await transport.create_topic(topic)  # idempotent
    for i in range(30):
        await transport.send(topic, f"{i % 3}:{i}".encode(), key=f"case-{i % 3}".encode())
    async with transport.consumer([topic], f"g-{unique}") as consumer:
        records = await _drain(consumer, 30)
    assert len(records) == 30
    for case in range(3):
        seq = [int(r.value.split(b":")[1]) for r in records if r.key == f"case-{case}".encode()]
        assert seq == sorted(seq) and len(seq) == 10


async def test_committed_records_are_not_seen_again_and_uncommitted_are(transport_factory: Any, unique: str) -> None:
    topic, group = f"op7.test-commit-{unique}", f"g-{unique}"
    async with transport_factory() as producer:
        await producer.create_topic(topic, partitions=1)
        for i in range(4):
            await producer.send(topic, f"m{i}".encode(), key=b"k")
    async with transport_factory() as t, t.consumer([topic], group) as consumer:
        records = await _drain(consumer, 4)
        assert [r.value for r in records] == [b"m0", b"m1", b"m2", b"m3"]
        await consumer.commit(records[1])  # m0, m1 done; m2, m3 fetched but not committed
    async with transport_factory() as t, t.consumer([topic], group) as consumer:
        again = await _drain(consumer, 2)
    assert [r.value for r in again] == [b"m2", b"m3"]


async def test_groups_are_independent(transport: Transport, unique: str) -> None:
    topic = f"op7.test-groups-{unique}"
    await transport.create_topic(topic, partitions=1)
    await transport.send(topic, b"hello")
    for group in ("a", "b"):
        async with transport.consumer([topic], f"{group}-{unique}") as consumer:
            records = await _drain(consumer, 1)
            assert [r.value for r in records] == [b"hello"]
            await consumer.commit(records[0])
