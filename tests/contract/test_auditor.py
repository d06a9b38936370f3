"""The auditor on both transports, in process: every record of the network's topics logged once, however often it
runs or wherever it stops; checkpoints signed on its clock and when it stops, and published; a store whose rows
changed refused before anything is appended; a node a later directory version adds read from then on."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from broker.audit.auditor import Auditor, read_published
from broker.audit.checkpoint import Checkpoint
from broker.audit.entry import Kind, Outcome
from broker.audit.history import DirectoryHistory
from broker.audit.store import EvidenceStore, open_store
from broker.audit.verify import verify_log
from broker.clock import ManualClock
from broker.errors import ConfigError, VerificationError
from broker.node.quarantine import quarantine_entry
from broker.node.topics import CHECKPOINTS, DIRECTORY, TopicLayout
from broker.transport.base import Consumer, Record, Transport
from broker.wire import merkle
from tests.audit_db import fresh_store_url, tamper
from tests.unit.test_audit_history import Net

M = timedelta(minutes=1)


class Network:
    """A network's topics on one transport: its directory, the records its nodes wrote, the auditor's store."""

    def __init__(self, transport: Transport, prefix: str, store_url: str, clock: ManualClock) -> None:
        self.transport = transport
        self.layout = TopicLayout(prefix)
        self.store_url = store_url
        self.clock = clock
        self.start = clock.now() - 60 * M
        self.net = Net(self.start)
        #: Every record written: (full topic name, value).
        self.sent: list[tuple[str, bytes]] = []

    async def create(self, *nodes: str) -> None:
        shorts = [*self.layout.shared, CHECKPOINTS, *(t for n in nodes for t in self.layout.of_node(n))]
        for short in shorts:
            spec = self.layout.spec(short)
            await self.transport.create_topic(
                spec.name, partitions=spec.partitions, compacted=spec.compacted, retention=spec.retention
            )

    async def send(self, short: str, value: bytes, key: bytes | None = None) -> None:
        await self.transport.send(self.layout.name(short), value, key=key)
        self.sent.append((self.layout.name(short), value))

    async def publish(self, version: int) -> None:
        await self.send(DIRECTORY, self.net.data(version), key=f"op7-audit/{version:010d}".encode())

    def at(self, minutes: int) -> datetime:
        return self.start + minutes * M

    async def scenario(self) -> None:
        """Version 1, three alerts, a sealed request, a stranger's frame and its quarantine entry, garbage."""
        await self.create(*self.net.signing)
        await self.publish(1)
        for minute in (1, 2, 3):
            await self.send("alerts", self.net.frame("FR.GN", self.at(minute), sequence=minute), key=b"case")
        await self.send("inbox.ES.PN", self.net.frame("FR.GN", self.at(4), "ES.PN", seal=True, sequence=4))
        stranger = self.net.frame("BR.PF", self.at(5), "ES.PN")
        await self.send("inbox.ES.PN", stranger)
        refused = Record(self.layout.name("inbox.ES.PN"), 0, 1, None, stranger, 0)
        error = VerificationError("unknown sender BR.PF", reason="unknown-sender")
        await self.send("quarantine.ES.PN", quarantine_entry(refused, error, "ES.PN.inbox", self.at(5)))
        await self.send("alerts", b"\x00\x01 not a frame")

    def auditor(self, store: EvidenceStore, **options: Any) -> Auditor:
        history = DirectoryHistory(self.net.anchor)
        identity = self.net.identity("NL.AUDIT")
        return Auditor(self.transport, store, history, identity, self.clock, layout=self.layout, **options)

    async def run(self, **options: Any) -> Any:
        with open_store(self.store_url) as store:
            return await self.auditor(store, **options).run(once=True)

    def entries(self) -> list[Any]:
        with open_store(self.store_url) as store:
            return list(store.entries())


@pytest.fixture
async def network(transport_factory: Any, unique: str, tmp_path: Path, clock: ManualClock) -> AsyncIterator[Network]:
    with fresh_store_url("sqlite", tmp_path) as url:
        async with transport_factory() as transport:
            yield Network(transport, f"op7.a{unique}", url, clock)


async def eventually(condition: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.1)


async def test_every_record_is_logged_once_and_a_checkpoint_published_when_it_stops(network: Network) -> None:
    await network.scenario()
    stats = await network.run()
    entries = network.entries()
    assert sorted((e.topic, e.value) for e in entries) == sorted(network.sent)
    assert len({e.coordinates for e in entries}) == len(entries) == stats.read == stats.logged == 8
    outcomes = {(e.kind, e.outcome, e.reason) for e in entries}
    assert outcomes == {
        (Kind.DIRECTORY, Outcome.VERIFIED, None),
        (Kind.MESSAGE, Outcome.VERIFIED, None),
        (Kind.MESSAGE, Outcome.REFUSED, "unknown-sender"),
        (Kind.MESSAGE, Outcome.REFUSED, "bad-magic"),
        (Kind.QUARANTINE, Outcome.VERIFIED, "unknown-sender"),
    }
    assert stats.refused == 2
    # Signed as it stopped, kept in the store and published: anyone holds the auditor to it.
    (checkpoint,) = stats.checkpoints
    with open_store(network.store_url) as store:
        assert (checkpoint.size, checkpoint.root) == (8, merkle.root(store.leaves()))
        assert store.checkpoints() == [checkpoint.to_bytes()]
        history = DirectoryHistory(network.net.anchor)
        assert verify_log(store, history).intact
    published = await read_published(network.transport, network.layout)
    assert published == [checkpoint.to_bytes()]
    Checkpoint.from_bytes(published[0]).verify(history)

    again = await network.run()
    assert (again.read, again.logged, again.checkpoints) == (0, 0, [])
    assert len(network.entries()) == 8
    await network.send("alerts", network.net.frame("ES.PN", network.at(10), sequence=1))
    more = await network.run()
    assert (more.logged, [c.size for c in more.checkpoints]) == (1, [9])
    assert len(await read_published(network.transport, network.layout)) == 2


async def test_a_restart_after_a_crash_between_append_and_commit_logs_nothing_twice(
    network: Network, monkeypatch: pytest.MonkeyPatch
) -> None:
    await network.scenario()
    with open_store(network.store_url) as store:
        auditor = network.auditor(store)
        real = network.transport.consumer

        def crashing(topics: list[str], group: str, **options: Any) -> Consumer:
            consumer = real(topics, group, **options)
            if group == auditor.group:

                async def killed(records: Any) -> list[Record]:
                    raise RuntimeError("killed after the entries were appended, before the commit")

                monkeypatch.setattr(consumer, "commit_many", killed)
            return consumer

        monkeypatch.setattr(network.transport, "consumer", crashing)
        with pytest.raises(RuntimeError, match="killed after the entries were appended"):
            await auditor.run(once=True)
        monkeypatch.undo()
        assert store.size() == 8
    # The records are read again from the last commit (none): the store already holds every one of them.
    again = await network.run()
    assert (again.read, again.logged) == (8, 0)
    entries = network.entries()
    assert len(entries) == len({e.coordinates for e in entries}) == 8


@pytest.mark.parametrize(
    ("sql", "params"),
    [
        ("DELETE FROM entries WHERE position = ?", (3,)),
        ("UPDATE entries SET leaf = ? WHERE position = ?", (bytes(32), 5)),
        ("DELETE FROM entries WHERE position = ?", (7,)),
    ],
)
async def test_a_store_whose_rows_changed_is_refused_at_start(network: Network, sql: str, params: Any) -> None:
    await network.scenario()
    await network.run()
    tamper(network.store_url, sql, params)
    await network.send("alerts", network.net.frame("ES.PN", network.at(10), sequence=1))
    with pytest.raises(ConfigError) as info:
        await network.run()
    assert str(info.value).startswith("the evidence log no longer matches its last checkpoint of size 8 signed by ")
    assert "run 'op7 audit verify' to find the entry that changed" in str(info.value)
    kept = 7 if sql.startswith("DELETE") else 8
    assert len(network.entries()) == kept  # nothing appended after it
    assert len(await read_published(network.transport, network.layout)) == 1  # and nothing signed


async def test_a_node_a_later_directory_version_adds_has_its_inbox_read(network: Network) -> None:
    await network.scenario()
    with open_store(network.store_url) as store:
        auditor = network.auditor(store)
        assert network.layout.name("inbox.DE.BKA") not in auditor.topics()
        stop = asyncio.Event()
        running = asyncio.create_task(auditor.run(stop=stop))
        try:
            await eventually(lambda: auditor.stats.logged == 8)
            network.net.add("DE.BKA", network.at(20))
            await network.create("DE.BKA")
            await network.publish(2)
            await network.send("inbox.DE.BKA", network.net.frame("FR.GN", network.at(21), "DE.BKA", sequence=5))
            await eventually(lambda: auditor.stats.logged == 10)
        finally:
            stop.set()
            stats = await asyncio.wait_for(running, 60)
        assert network.layout.name("inbox.DE.BKA") in auditor.topics()
        (message,) = [e for e in store.entries() if e.topic == network.layout.name("inbox.DE.BKA")]
        assert (message.outcome, message.meta["recipients"]) == (Outcome.VERIFIED, ["DE.BKA"])
        assert [c.size for c in stats.checkpoints] == [10]


async def test_checkpoints_are_signed_on_the_auditor_s_clock_while_it_runs(
    network: Network, clock: ManualClock
) -> None:
    await network.scenario()
    with open_store(network.store_url) as store:
        auditor = network.auditor(store, checkpoint_interval=timedelta(minutes=5))
        stop = asyncio.Event()
        running = asyncio.create_task(auditor.run(stop=stop))
        try:
            await eventually(lambda: auditor.stats.logged == 8)
            await asyncio.sleep(1.5)  # several reads go by: the clock stands still, nothing is due
            assert auditor.stats.checkpoints == []
            clock.advance(timedelta(minutes=5))
            await eventually(lambda: len(auditor.stats.checkpoints) == 1)
            await network.send("alerts", network.net.frame("ES.PN", network.at(10), sequence=1))
            await eventually(lambda: auditor.stats.logged == 9)
        finally:
            stop.set()
            stats = await asyncio.wait_for(running, 60)
    assert [(c.size, c.at) for c in stats.checkpoints] == [(8, clock.now()), (9, clock.now())]
    published = [json.loads(p)["size"] for p in await read_published(network.transport, network.layout)]
    assert published == [8, 9]
