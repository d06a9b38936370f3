"""A member of a consumer group is told before a rebalance takes its partitions, and can still commit then: what it
handled is not read again by the partition's next owner (real Kafka broker)."""

from __future__ import annotations

from typing import Any

import pytest

from broker.transport import Record

pytestmark = pytest.mark.kafka


async def _fetch(consumer: Any, want: int) -> list[Record]:
    out: list[Record] = []
    for _ in range(60):
        out += await consumer.fetch(timeout=0.5)
        if len(out) >= want:
            break
    return out


async def test_a_member_commits_what_it_handled_before_a_rebalance_takes_it(make_kafka: Any, unique: str) -> None:
    topic, group = f"op7.test-rebalance-{unique}", f"g-{unique}"
    async with make_kafka() as producer:
        await producer.create_topic(topic, partitions=2)
        await producer.send_many(topic, [(f"k{i % 2}".encode(), f"m{i}".encode()) for i in range(20)])
    async with make_kafka() as t1, t1.consumer([topic], group) as first:
        handled = await _fetch(first, 20)  # handled, not committed yet
        told: list[list[Record]] = []

        async def before_revoke() -> None:
            told.append(await first.commit_many(handled))  # nothing left uncommitted: all accepted

        first.before_revoke = before_revoke
        async with make_kafka() as t2, t2.consumer([topic], group) as second:
            # The second member joins; the first is told, commits, and rejoins as the same member.
            again: list[Record] = []
            for _ in range(20):
                again += await second.fetch(timeout=0.5)
                await first.fetch(timeout=0.1)  # the first keeps polling, as a running subscription does
                if told:
                    break
            again += await second.fetch(timeout=1.0)
    assert told == [[]], "the member was not told before its partitions were taken, or could not commit then"
    assert again == []  # its new owner starts after what the first member handled
    assert len(handled) == 20
