"""Valid frames from a node the receiver's directory does not list yet are held, not lost, and delivered once a newer
version lists it (docs/PROTOCOL.md §4.4)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from broker.clock import ManualClock
from broker.models.directory import Role, SignedDirectory
from broker.node.node import TOPIC_ALERTS, Node
from broker.node.subscription import Subscription
from broker.transport.embedded import EmbeddedTransport
from broker.trust import admin
from broker.trust.directory import DirectoryAnchor, DirectoryTrust
from broker.trust.replay import ReplayGuard
from broker.trust.store import TrustStore
from broker.wire.envelope import NodeIdentity, build
from broker.wire.signing import SigningKey
from tests.conftest import make_alert, now
from tests.contract.test_trust import Collector, card, eventually, genesis, signed


@dataclass
class Network:
    """An authority publishing versions, a receiver (NL.NCC's listener) whose directory lags, and its deliveries."""

    authority: Node
    ops: Node
    sub: Subscription
    got: Collector
    v2: SignedDirectory
    es: NodeIdentity
    es_trust: DirectoryTrust

    async def publish_v2(self) -> None:
        await self.authority.publish_directory(self.v2, "op7-test", 2)
        await eventually(lambda: self.ops.trust.version == 2)  # type: ignore[attr-defined]

    async def quarantine(self) -> list[dict[str, Any]]:
        consumer = self.ops.transport.consumer([self.ops.topic("quarantine")], "reader")
        async with consumer:
            return [json.loads(r.value) for r in await consumer.fetch(timeout=0.5)]


@asynccontextmanager
async def network(factory: Any, prefix: str, state: Path | None) -> AsyncIterator[Network]:
    fr_key, es_key = SigningKey.generate(), SigningKey.generate()
    v1 = genesis(card("FR.GN", fr_key))
    anchor = DirectoryAnchor.of(admin.read(v1))
    added = now() - timedelta(days=6)  # its key valid from then: frames it signed days ago verify once it is listed
    v2 = signed(admin.add_node(v1, card("ES.PN", es_key), "PN", [Role.NATIONAL_NODE], ["all"], now=added))
    es_trust = DirectoryTrust(anchor)  # the new node holds the version that lists it
    for version in (v1, v2):
        es_trust.offer(version, now())
    trust = DirectoryTrust(anchor)
    replay = ReplayGuard(state) if state is not None else None
    async with Node(factory(), DirectoryTrust(anchor), topic_prefix=prefix, follow_directory=False) as authority:
        await authority.publish_directory(v1, "op7-test", 1)
        async with (
            Node(factory(), trust, topic_prefix=prefix, replay_guard=replay) as ops,
            ops.subscribe("NL.NCC") as sub,
        ):
            await eventually(lambda: trust.version == 1)
            sub.settle = 0.2
            got = Collector()
            run = asyncio.create_task(sub.run(got))
            try:
                yield Network(authority, ops, sub, got, v2, NodeIdentity("ES.PN", es_key), es_trust)
            finally:
                run.cancel()
                await asyncio.gather(run, return_exceptions=True)


def _spanish(alert_data: dict[str, Any], alert_id: str) -> Any:
    return make_alert({**alert_data, "issuer": {**alert_data["issuer"], "node": "ES.PN"}}, alert_id=alert_id)


async def test_an_alert_from_a_node_added_in_the_next_version_is_held_then_delivered(
    transport_factory: Any, unique: str, tmp_path: Path, alert_data: dict[str, Any], clock: ManualClock
) -> None:
    async with network(transport_factory, f"op7.t{unique}", tmp_path / "replay-NL.NCC.db") as net:
        sender = Node(transport_factory(), net.es_trust, net.es, topic_prefix=net.ops.topic_prefix)
        async with sender:
            # Five days old when read: fresh then, stale by the time the directory catches up three days later.
            early = await sender.publish(_spanish(alert_data, "EARLY"), now=now() - timedelta(days=5))
        await eventually(lambda: net.sub.stats.held == 1)
        assert net.got.ids() == [] and net.sub.stats.quarantined.total() == 0
        clock.advance(timedelta(days=3))
        await net.publish_v2()
        await eventually(lambda: net.got.ids() == ["EARLY"])
        assert len(net.sub.held) == 0 and net.sub.stats.quarantined.total() == 0
        assert net.got.got[0].raw == early.raw
        # Handled once: the same bytes again are a duplicate, not a second delivery.
        await net.ops.transport.send(net.ops.topic(TOPIC_ALERTS), early.raw, key=b"k")
        await eventually(lambda: net.sub.stats.duplicates == 1)
        assert net.got.ids() == ["EARLY"] and await net.quarantine() == []


async def test_a_frame_still_unknown_once_the_directory_moved_on_goes_to_quarantine(
    transport_factory: Any, unique: str, tmp_path: Path, alert_data: dict[str, Any]
) -> None:
    stranger = NodeIdentity("MX.FGR", SigningKey.generate())
    async with network(transport_factory, f"op7.t{unique}", tmp_path / "replay-NL.NCC.db") as net:
        own = DirectoryTrust(net.es_trust.anchor)
        async with Node(transport_factory(), own, topic_prefix=net.ops.topic_prefix, follow_directory=False) as w:
            from broker.wire.envelope import build

            alert = make_alert({**alert_data, "issuer": {**alert_data["issuer"], "node": "MX.FGR"}}, alert_id="X")
            await w.transport.send(w.topic(TOPIC_ALERTS), build(stranger, alert, now=now())[1], key=b"k")
        await eventually(lambda: net.sub.stats.held == 1)
        assert await net.quarantine() == []
        await net.publish_v2()
        await eventually(lambda: net.sub.stats.quarantined["unknown-sender"] == 1)
        (entry,) = await net.quarantine()
        assert entry["reason"] == "unknown-sender" and "MX.FGR" in entry["detail"] and entry["value"]
        assert len(net.sub.held) == 0 and net.got.ids() == []


async def test_held_frames_are_capped_per_sender_the_oldest_going_to_quarantine(
    transport_factory: Any, unique: str, tmp_path: Path, alert_data: dict[str, Any]
) -> None:
    async with network(transport_factory, f"op7.t{unique}", tmp_path / "replay-NL.NCC.db") as net:
        net.sub.held.per_sender = 2
        sender = Node(transport_factory(), net.es_trust, net.es, topic_prefix=net.ops.topic_prefix)
        async with sender:
            sent = [await sender.publish(_spanish(alert_data, f"A{i}")) for i in range(3)]
        await eventually(lambda: net.sub.stats.quarantined["unknown-sender"] == 1)
        assert net.sub.stats.held == 3 and len(net.sub.held) == 2
        (entry,) = await net.quarantine()
        assert entry["offset"] == sent[0].sent.offset  # the oldest made room
        await net.publish_v2()
        await eventually(lambda: sorted(net.got.ids()) == ["A1", "A2"])


@pytest.mark.parametrize("state", [None])
async def test_a_node_without_state_in_a_file_quarantines_at_once(
    transport_factory: Any, unique: str, alert_data: dict[str, Any], state: Path | None
) -> None:
    # A held frame's offset is committed: only state that outlives the process may hold it.
    async with network(transport_factory, f"op7.t{unique}", state) as net:
        async with Node(transport_factory(), net.es_trust, net.es, topic_prefix=net.ops.topic_prefix) as sender:
            await sender.publish(_spanish(alert_data, "EARLY"))
        await eventually(lambda: net.sub.stats.quarantined["unknown-sender"] == 1)
        assert net.sub.stats.held == 0


async def test_a_handled_id_outlives_the_hold_so_a_released_copy_is_a_duplicate(tmp_path: Path, alert: Any) -> None:
    """A copy held for almost a window, fresh as when it was first read, is released after the window that ends the
    original's freshness: the replay store still knows the id then, so it is not handed over a second time."""
    guard = ReplayGuard(tmp_path / "replay.db")
    async with Node(EmbeddedTransport(tmp_path / "net.db"), TrustStore({}), replay_guard=guard) as node:
        fr = NodeIdentity("FR.GN", SigningKey.generate())
        envelope, _ = build(fr, alert, now=now())
        guard.remember(envelope, b"\x01" * 32, now())
        window = node.freshness.max_age + node.freshness.max_skew
        node.prune_replay_store(envelope.created_at + window + node.freshness.max_age - timedelta(minutes=1))
        assert guard.digest_of("FR.GN", envelope.message_id) == b"\x01" * 32
        node.prune_replay_store(envelope.created_at + window + node.freshness.max_age + timedelta(minutes=1))
        assert guard.digest_of("FR.GN", envelope.message_id) is None
