"""The embedded transport's writes: one transaction per send, offsets consecutive, a failed write leaves nothing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from broker.errors import TransportError
from broker.transport import EmbeddedTransport


@pytest.fixture
async def transport() -> AsyncIterator[EmbeddedTransport]:
    transport = EmbeddedTransport()
    await transport.start()
    await transport.create_topic("t")
    yield transport
    await transport.stop()


async def test_one_and_several_records_take_consecutive_offsets(transport: EmbeddedTransport) -> None:
    assert (await transport.send("t", b"a", key=b"k")).offset == 0
    assert [s.offset for s in await transport.send_many("t", [(None, b"b"), (b"k", b"c")])] == [1, 2]
    assert (await transport.send("t", b"d")).offset == 3
    async with transport.consumer(["t"], "g") as consumer:
        records = await consumer.fetch(timeout=0.1)
    assert [(r.key, r.value) for r in records] == [(b"k", b"a"), (None, b"b"), (b"k", b"c"), (None, b"d")]


async def test_a_failed_write_leaves_nothing_and_no_open_transaction(transport: EmbeddedTransport) -> None:
    with pytest.raises(TransportError, match="unknown topic 'missing'"):
        await transport.send("missing", b"a")
    with pytest.raises(TransportError, match="unknown topic"):
        await transport.send_many("missing", [(None, b"a"), (None, b"b")])
    assert not transport.db.in_transaction
    assert (await transport.send("t", b"a")).offset == 0
    await transport.delete_topic("t")
    assert not transport.db.in_transaction
    with pytest.raises(TransportError, match="unknown topic 't'"):
        await transport.send("t", b"a")


async def test_a_fetch_cancelled_as_a_write_wakes_it_is_cancelled(transport: EmbeddedTransport) -> None:
    """A reader's run cancelled at the moment a write of the same process wakes its fetch stops; it does not read
    on (Python 3.11's wait_for can swallow such a cancellation)."""
    async with transport.consumer(["t"], "g") as consumer:
        fetching = asyncio.create_task(consumer.fetch(timeout=5))
        await asyncio.sleep(0.2)  # the fetch found nothing and waits for a write
        transport._written.set()  # a write wakes it...
        fetching.cancel()  # ...as its run is cancelled
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(fetching, 3)
