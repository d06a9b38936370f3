"""Quarantine growth is bounded: a replayed refused frame is kept whole once, a source's whole entries are capped."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

from broker.clock import ManualClock
from broker.node.node import TOPIC_ALERTS, Node
from broker.transport.embedded import EmbeddedTransport
from broker.trust.replay import ReplayGuard
from broker.trust.store import TrustStore
from broker.wire.envelope import NodeIdentity, build
from tests.conftest import make_alert, now


async def _refuse_all(db: Path, trust: TrustStore, state: Path, per_source: int = 100) -> Any:
    """Read the alerts topic once as NL.NCC, with its state in ``state``; the subscription's stats."""
    async with (
        Node(EmbeddedTransport(db), trust, replay_guard=ReplayGuard(state)) as ops,
        ops.subscribe("NL.NCC") as sub,
    ):
        sub.quarantine_book.per_source = per_source
        return await asyncio.wait_for(sub.run(lambda d: None, idle_timeout=1), 60)


async def _entries(db: Path) -> list[dict[str, Any]]:
    async with EmbeddedTransport(db) as transport, transport.consumer(["op7.quarantine"], "reader") as consumer:
        return [json.loads(r.value) for r in await consumer.fetch(timeout=0.5, max_records=10_000)]


async def _send(db: Path, frames: list[bytes]) -> None:
    async with Node(EmbeddedTransport(db), TrustStore({})) as writer:
        for frame in frames:
            await writer.transport.send(writer.topic(TOPIC_ALERTS), frame, key=b"k")


async def test_replays_of_one_refused_frame_are_kept_whole_once_across_restarts(
    tmp_path: Path, trust: TrustStore, fr: NodeIdentity, alert_data: dict[str, Any]
) -> None:
    db, state = tmp_path / "net.db", tmp_path / "state" / "replay-NL.NCC.db"
    _, stale = build(fr, make_alert(alert_data, alert_id="OLD"), now=now() - timedelta(days=30))
    await _send(db, [stale] * 25)
    first = await _refuse_all(db, trust, state)
    await _send(db, [stale] * 25)
    second = await _refuse_all(db, trust, state)  # a restart: what was quarantined is remembered
    entries = await _entries(db)
    assert first.quarantined["stale"] == second.quarantined["stale"] == 25  # every copy refused and committed
    whole = [e for e in entries if "value" in e]
    assert len(whole) == 1 and whole[0]["reason"] == "stale" and whole[0]["offset"] == 0
    repeats = [e for e in entries if e.get("omitted") == "repeat"]
    assert [e["copy"] for e in repeats] == [2, 4, 8, 16, 32]  # copies 2..50 leave a logarithmic trail
    assert {e["first"]["offset"] for e in repeats} == {0} and len(entries) == 6
    assert all(e["value_sha256"] == whole[0]["value_sha256"] for e in entries)


async def test_a_source_adds_at_most_its_budget_of_whole_entries_per_window(
    tmp_path: Path, trust: TrustStore, fr: NodeIdentity, alert_data: dict[str, Any], clock: ManualClock
) -> None:
    db, state = tmp_path / "net.db", tmp_path / "state" / "replay-NL.NCC.db"
    old = now() - timedelta(days=30)
    stale = [build(fr, make_alert(alert_data, alert_id=f"OLD{i}"), now=old)[1] for i in range(8)]
    garbage = [b"\x00garbage-%d" % i for i in range(3)]
    await _send(db, [*stale, *garbage])
    stats = await _refuse_all(db, trust, state, per_source=5)
    assert dict(stats.quarantined) == {"stale": 8, "bad-magic": 3}
    entries = await _entries(db)
    by_reason = {
        reason: [("value" in e, e.get("omitted")) for e in entries if e["reason"] == reason]
        for reason in ("stale", "bad-magic")
    }
    # FR.GN (verified) has 5 whole entries an hour, then entries without the value; unverified frames count
    # against their partition, not against the sender they claim.
    assert by_reason["stale"] == [(True, None)] * 5 + [(False, "over-budget")] * 3
    assert by_reason["bad-magic"] == [(True, None)] * 3
    assert all(e["value_sha256"] and e["value_length"] for e in entries)
    clock.advance(timedelta(hours=1))  # the next window
    await _send(db, [build(fr, make_alert(alert_data, alert_id="NEXT"), now=old)[1]])
    await _refuse_all(db, trust, state, per_source=5)
    assert "value" in (await _entries(db))[-1]
