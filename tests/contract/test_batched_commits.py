"""What a subscription makes durable, and when: once per fetched batch, the replay store before the offsets; alerts
before bulk traffic. The crash tests kill a real process at the two points between a handler and a commit."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from broker.errors import TransportError
from broker.models import CaseInformation, Handling, Message
from broker.node.node import Delivery, Node
from broker.transport.embedded import EmbeddedTransport
from broker.trust.replay import ReplayGuard
from broker.trust.store import TrustStore
from broker.wire.envelope import NodeIdentity
from broker.wire.signing import SigningKey
from tests.conftest import ROOT, example, make_alert


def _cases(count: int) -> list[Message]:
    case: CaseInformation = example("CaseInformation")
    shared = case.model_copy(update={"handling": Handling.model_validate({"tlp": "GREEN"})})
    return [shared.model_copy(update={"case_id": f"FR-GN-2026-{i:06d}"}) for i in range(count)]


def _counting(sub: Any, guard: ReplayGuard) -> tuple[list[int], list[int]]:
    """Count the offset commits (records per request) and the replay-store writes (rows per transaction)."""
    commits: list[int] = []
    writes: list[int] = []
    commit_many, write = sub._consumer.commit_many, guard.write

    async def counted_commit(records: Any) -> Any:
        commits.append(len(records))
        return await commit_many(records)

    def counted_write(rows: Any) -> None:
        if rows:
            writes.append(len(rows))
        write(rows)

    sub._consumer.commit_many = counted_commit
    guard.write = counted_write  # type: ignore[method-assign]
    return commits, writes


async def test_a_batch_costs_one_replay_transaction_and_one_commit(
    transport_factory: Any, trust: TrustStore, fr: NodeIdentity, alert_data: dict[str, Any], unique: str, tmp_path: Path
) -> None:
    prefix = f"op7.t{unique}"
    alerts = [make_alert(alert_data, alert_id=f"A{i}", case_id=f"CASE-{i % 7}") for i in range(600)]
    async with Node(transport_factory(), trust, fr, topic_prefix=prefix) as sender:
        published = await sender.publish_batch(alerts)
    guard = ReplayGuard(tmp_path / "replay.db")
    got: list[Delivery] = []
    async with Node(transport_factory(), trust, replay_guard=guard, topic_prefix=prefix) as ops:
        async with ops.subscribe("NL.NCC") as sub:
            commits, writes = _counting(sub, guard)
            sub.max_batch_seconds = 30  # only the fetched batches count here, not the time it takes to handle them
            await asyncio.wait_for(sub.run(got.append, limit=600, idle_timeout=20), 60)
        assert len(got) == 600
        # One commit and one transaction per fetched batch (at most 500 records; Kafka hands over what it has
        # buffered, a partition or more at a time): a handful, not one per message.
        assert 1 <= len(commits) <= 12 and 1 <= len(writes) <= 12, (commits, writes)
        assert sum(writes) == 600
        # Everything handled is on disk, and committed: the group reads nothing again.
        on_disk = ReplayGuard(tmp_path / "replay.db")
        assert all(on_disk.digest_of("FR.GN", p.envelope.message_id) is not None for p in published)
        async with ops.subscribe("NL.NCC") as again:
            stats = await asyncio.wait_for(again.run(got.append, idle_timeout=2), 30)
        assert stats.received == 0 and len(got) == 600


async def test_alerts_are_handled_before_bulk_traffic_fetched_with_them(
    tmp_path: Path, trust: TrustStore, fr: NodeIdentity, alert_data: dict[str, Any]
) -> None:
    db = tmp_path / "net.db"
    async with Node(EmbeddedTransport(db), trust, fr) as sender:
        await sender.publish_batch(_cases(300))
        await sender.publish(make_alert(alert_data, alert_id="URGENT"))
    order: list[str] = []
    async with Node(EmbeddedTransport(db), trust) as ops, ops.subscribe("NL.NCC", ("cases", "alerts")) as sub:
        await asyncio.wait_for(sub.run(lambda d: order.append(d.envelope.message_type), limit=301), 60)
    assert order[0] == "op7.alert.KidnappingAlert", order.index("op7.alert.KidnappingAlert")
    assert order.count("op7.case.CaseInformation") == 300


async def test_an_alert_sent_during_a_long_batch_does_not_wait_for_its_end(
    tmp_path: Path, trust: TrustStore, fr: NodeIdentity, alert_data: dict[str, Any]
) -> None:
    db = tmp_path / "net.db"
    order: list[str] = []
    async with Node(EmbeddedTransport(db), trust, fr) as sender:
        await sender.publish_batch(_cases(400))

        async def handle(delivery: Delivery) -> None:
            order.append(delivery.envelope.message_type)
            if len(order) == 10:  # the alert is written while the batch of 400 is being handled
                await sender.publish(make_alert(alert_data, alert_id="URGENT"))

        async with Node(EmbeddedTransport(db), trust) as ops, ops.subscribe("NL.NCC", ("cases", "alerts")) as sub:
            sub.max_batch_seconds = 0  # look again at every record, so that the test does not hang on timing
            await asyncio.wait_for(sub.run(handle, limit=401), 60)
    assert order.index("op7.alert.KidnappingAlert") == 10


# --- killed between a handler and a commit ------------------------------------------------------------------

_LISTENER = textwrap.dedent(
    """
    import asyncio, os, sys
    from pathlib import Path
    from broker.node.node import Node
    from broker.transport.embedded import EmbeddedTransport
    from broker.trust.replay import ReplayGuard
    from broker.trust.store import TrustStore
    from broker.wire.signing import SigningKey

    db, state, seed, crash_at = Path(sys.argv[1]), Path(sys.argv[2]), bytes.fromhex(sys.argv[3]), sys.argv[4]

    async def main() -> None:
        trust = TrustStore({"FR.GN": [SigningKey.from_seed(seed).public]})
        guard = ReplayGuard(state)
        async with Node(EmbeddedTransport(db), trust, replay_guard=guard) as ops, ops.subscribe("NL.NCC") as sub:
            sub.max_batch_seconds = 3600  # one flush, after the whole batch, however slow the machine
            def die(*args: object) -> None:
                os._exit(9)  # no clean-up of any kind, as a killed process
            if crash_at == "before-commit":
                sub._consumer.commit_many = die  # the replay rows are written, the offsets not
            else:  # handled, nothing written yet
                guard.write = lambda rows: die() if rows else None
            await sub.run(lambda d: print(d.envelope.message_id, flush=True), idle_timeout=5)

    asyncio.run(main())
    """
)


def _crashing_listener(db: Path, state: Path, seed: bytes, crash_at: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", _LISTENER, str(db), str(state), seed.hex(), crash_at],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=False,
    )
    assert done.returncode == 9, done.stderr
    return done.stdout.split()


async def _restart(db: Path, state: Path, trust: TrustStore) -> tuple[list[str], Any]:
    got: list[str] = []
    node = Node(EmbeddedTransport(db), trust, replay_guard=ReplayGuard(state))
    async with node, node.subscribe("NL.NCC") as sub:
        stats = await asyncio.wait_for(sub.run(lambda d: got.append(d.envelope.message_id), idle_timeout=2), 60)
    return got, stats


async def _killed(tmp_path: Path, alert_data: dict[str, Any], crash_at: str) -> tuple[list[str], list[str], Any]:
    """50 alerts, a listener killed at ``crash_at``, then restarted: the ids sent, what the restart handed over, and
    its stats."""
    seed = os.urandom(32)
    fr = NodeIdentity("FR.GN", SigningKey.from_seed(seed))
    trust = TrustStore({"FR.GN": [fr.key.public]})
    db, state = tmp_path / "net.db", tmp_path / "replay.db"
    async with Node(EmbeddedTransport(db), trust, fr) as sender:
        sent = await sender.publish_batch([make_alert(alert_data, alert_id=f"A{i}") for i in range(50)])
    ids = sorted(p.envelope.message_id for p in sent)
    assert sorted(_crashing_listener(db, state, seed, crash_at)) == ids  # all handled before the process died
    again, stats = await _restart(db, state, trust)
    return ids, again, stats


async def test_killed_after_the_replay_rows_nothing_is_handed_over_twice(
    tmp_path: Path, alert_data: dict[str, Any]
) -> None:
    _, again, stats = await _killed(tmp_path, alert_data, "before-commit")
    # The offsets were not committed, so all 50 are read again; the replay store knows them all.
    assert again == [] and stats.received == 50 and stats.duplicates == 50


async def test_killed_before_the_replay_rows_the_batch_is_handed_over_again_not_lost(
    tmp_path: Path, alert_data: dict[str, Any]
) -> None:
    ids, again, stats = await _killed(tmp_path, alert_data, "before-replay")
    # At least once: the batch in flight when the process died is handed over again, nothing is lost.
    assert sorted(again) == ids and stats.duplicates == 0


# --- refusals: quarantined without a round trip each, committed only once their entries are durable -----------------


async def _garbage(db: Path, trust: TrustStore, count: int) -> None:
    async with Node(EmbeddedTransport(db), trust) as writer:
        await writer.transport.send_many(writer.topic("alerts"), [(None, b"not a frame %d" % i) for i in range(count)])


async def test_refused_records_do_not_wait_one_round_trip_each(tmp_path: Path, trust: TrustStore) -> None:
    db = tmp_path / "net.db"
    await _garbage(db, trust, 40)
    pending: list[asyncio.Future[Any]] = []
    most = 0
    async with Node(EmbeddedTransport(db), trust, replay_guard=ReplayGuard(tmp_path / "r.db")) as ops:
        send_soon = ops.transport.send_soon

        async def counted(topic: str, value: bytes, *, key: bytes | None = None) -> Any:
            nonlocal most
            sending = asyncio.ensure_future(await send_soon(topic, value, key=key))
            pending.append(sending)
            most = max(most, sum(not p.done() for p in pending))
            return sending

        ops.transport.send_soon = counted  # type: ignore[method-assign]
        async with ops.subscribe("NL.NCC") as sub:
            sub.max_batch_seconds = 30
            stats = await asyncio.wait_for(sub.run(lambda d: None, idle_timeout=1), 30)
    assert stats.quarantined["bad-magic"] == 40 and len(pending) == 40
    assert most > 1  # the next refusal was handled while the entries before it were still being written


async def test_refused_records_are_committed_only_once_their_entries_are_durable(
    tmp_path: Path, trust: TrustStore
) -> None:
    db = tmp_path / "net.db"
    await _garbage(db, trust, 5)

    async def lost(*args: Any, **kwargs: Any) -> Any:
        async def fail() -> None:
            raise TransportError("the quarantine topic is out of reach", retriable=True)

        return asyncio.ensure_future(fail())

    async with Node(EmbeddedTransport(db), trust, replay_guard=ReplayGuard(tmp_path / "r.db")) as ops:
        ops.transport.send_soon = lost  # type: ignore[method-assign]
        with pytest.raises(TransportError, match="out of reach"):
            async with ops.subscribe("NL.NCC") as sub:
                await asyncio.wait_for(sub.run(lambda d: None, idle_timeout=1), 30)
    again = Node(EmbeddedTransport(db), trust, replay_guard=ReplayGuard(tmp_path / "r.db"))
    async with again, again.subscribe("NL.NCC") as sub:
        stats = await asyncio.wait_for(sub.run(lambda d: None, idle_timeout=1), 30)
    assert stats.quarantined["bad-magic"] == 5  # read again: none was committed without its quarantine entry
