"""What the benchmark sends, and the in-process cost of each stage (CPU microseconds per message, one process).

The alerts are padded to a frame size; each copy sent carries its index (in ``alert_id``) and the wall-clock time it
was due to be sent (at the start of its ``description``), so that the receiving handler can check that every message
arrived exactly once and tell how long it took, from the intended send time (no coordinated omission).
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from broker.clock import default_clock
from broker.models import KidnappingAlert
from broker.node.node import Delivery, Node
from broker.transport.base import Consumer, Record, Sent, Transport
from broker.trust.replay import ReplayGuard
from broker.trust.store import TrustStore
from broker.wire.codec import decode, encode
from broker.wire.envelope import NodeIdentity, build, build_batch, open_frame, parse_frame, verify_frame
from broker.wire.signing import SigningKey

ROOT = Path(__file__).resolve().parent.parent
SIZES = (512, 1024, 2048)
SEED = bytes(range(32))
EXAMPLE = json.loads((ROOT / "examples" / "kidnapping-alert.json").read_text())
#: ``t`` and 19 digits of nanoseconds, then a blank: the stamp at the start of a sent alert's description.
STAMP = 21
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

#: The fewest fields an alert can have: the base of frames smaller than the full example's.
MINIMAL = {
    "case_id": "FR-GN-2026-000142",
    "status": "Exercise",
    "msg_type": "Alert",
    "headline": "Child abducted",
    "languages": ["en"],
    "victims": [{"given_names": "Demo", "family_names": "Victim-One"}],
    "handling": {"tlp": "AMBER"},
    "issuer": {"node": "FR.GN", "name": "GN", "contact": {"desk": "24/7", "phone": "+33100000000"}},
}


def now() -> datetime:
    return default_clock().now()


def identity() -> NodeIdentity:
    return NodeIdentity("FR.GN", SigningKey.from_seed(SEED))


def trust() -> TrustStore:
    return TrustStore({"FR.GN": [SigningKey.from_seed(SEED).public]})


def alert_of_size(size: int, i: int = 0) -> KidnappingAlert:
    """An alert whose op7 frame is ``size`` bytes: the full example (or, below its size, a minimal alert) with its
    description padded (at least :data:`STAMP` characters, room for the send stamp)."""
    for base in (EXAMPLE, MINIMAL):
        data = {**base, "sent_at": now(), "alert_id": f"BENCH-{i:07d}"}
        probe = build(identity(), _alert({**data, "description": "x" * STAMP}), now=now())[1]
        if len(probe) <= size:
            break
    pad = size - len(probe) + STAMP
    alert = _alert({**data, "description": "x" * pad})
    excess = len(build(identity(), alert, now=now())[1]) - size  # the Avro length prefix may have grown by a byte
    return alert if excess <= 0 else _alert({**data, "description": "x" * (pad - excess)})


def _alert(data: dict[str, Any]) -> KidnappingAlert:
    # The example gives times relative to sending ("-35m"), as input files may.
    return KidnappingAlert.model_validate(data, context={"now": data["sent_at"]})


def stamped(base: KidnappingAlert, index: int, due_ns: int) -> KidnappingAlert:
    """A copy of ``base`` numbered ``index`` (its case one of 16, so records spread over partitions as a real case
    mix does), stamped with the wall-clock nanosecond it is due to be sent; the frame keeps its size."""
    text = base.description or ""
    return base.model_copy(
        update={
            "alert_id": f"BENCH-{index:07d}",
            "case_id": f"FR-GN-2026-{index % 16:06d}",
            "description": f"t{due_ns:019d} {text[STAMP:]}",
        }
    )


def index_and_stamp(message: Any) -> tuple[int, int]:
    """What :func:`stamped` put in an alert: its index and its due time (ns)."""
    return int(message.alert_id[6:]), int(message.description[1:20])


def micros_since_epoch(when: datetime) -> int:
    return (when - EPOCH) // timedelta(microseconds=1)


def per_call_us(fn: Callable[[], Any], n: int) -> float:
    start = time.process_time()
    for _ in range(n):
        fn()
    return (time.process_time() - start) / n * 1e6


def stage_row(size: int, n: int) -> dict[str, Any]:
    """CPU microseconds per message of each stage, for one payload size."""
    ident, store = identity(), trust()
    alert = alert_of_size(size)
    schema, payload = encode(alert)
    _, frame = build(ident, alert, now=now())
    raw = parse_frame(frame)
    key = store.key_for(raw.sender, raw.key_id)
    batch = [alert_of_size(size, i) for i in range(100)]
    row = {
        "frame_bytes": len(frame),
        "encode": per_call_us(lambda: encode(alert), n),
        "sign": per_call_us(lambda: ident.key.sign(raw.signed), n),
        "build_single": per_call_us(lambda: build(ident, alert, now=now()), n // 2),
        "build_batched_100": per_call_us(lambda: build_batch(ident, batch, now=now()), max(1, n // 200)) / 100,
        "verify_primitive": per_call_us(lambda: key._key.verify(raw.signed, raw.signature), n),
        "verify_signature_op7": per_call_us(
            lambda: store.key_for(parse_frame(frame).sender, raw.key_id).verify(raw.signature, raw.signed), n
        ),
        "verify_frame_op7": per_call_us(lambda: verify_frame(frame, store), n),
        "decode": per_call_us(lambda: decode(schema.name, schema.fingerprint, payload), n),
        "open_frame_op7": per_call_us(lambda: open_frame(frame, store), n),
    }
    row["verify_ratio_signature"] = row["verify_signature_op7"] / row["verify_primitive"]
    row["verify_ratio_frame"] = row["verify_frame_op7"] / row["verify_primitive"]
    return row


def stages(n: int = 3000) -> dict[str, Any]:
    return {str(size): stage_row(size, n) for size in SIZES}


# --- what the node path adds, in-process ----------------------------------------------------------------------


class _Backlog(Consumer):
    """A consumer that hands out prepared records, as Kafka would in fetches, and commits nothing (a no-op)."""

    def __init__(self, records: Sequence[Record]) -> None:
        self._records = list(records)
        self.commits = 0

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    async def fetch(self, timeout: float = 1.0, max_records: int = 500, **_: Any) -> list[Record]:
        taken, self._records = self._records[:max_records], self._records[max_records:]
        return taken

    async def commit(self, record: Record) -> bool:
        self.commits += 1
        return True

    async def commit_many(self, records: Sequence[Record]) -> list[Record]:
        self.commits += 1  # one request, however many records
        return []


class _Prepared(Transport):
    """A transport whose only consumer is a :class:`_Backlog`: the node's receive path without a network."""

    name = "prepared"

    def __init__(self) -> None:
        self.backlog = _Backlog([])

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    async def create_topic(self, topic: str, *, partitions: int = 3, compacted: bool = False, **_: Any) -> None:
        pass

    async def delete_topic(self, topic: str) -> None:
        pass

    async def send(self, topic: str, value: bytes, *, key: bytes | None = None) -> Sent:
        raise NotImplementedError("the prepared backlog is read, not written")

    def consumer(self, topics: Sequence[str], group: str, *, from_beginning: bool = True) -> Consumer:
        return self.backlog


def node_stage_row(size: int, n: int) -> dict[str, Any]:
    """What the node's receive path adds to ``open_frame``, per message, CPU and wall microseconds: a replay store
    write (``ReplayGuard.remember`` on a file), and ``Subscription.run`` over ``n`` prepared records with a
    file-backed replay store and commits that cost nothing (their round trips are measured against the broker)."""
    ident = identity()
    alerts = [stamped(alert_of_size(size), i, 0) for i in range(min(n, 200))]
    built = [pair for start in range(0, n, 200) for pair in build_batch(ident, alerts[: n - start], now=now())]
    with tempfile.TemporaryDirectory(prefix="op7-bench-") as tmp:
        guard = ReplayGuard(Path(tmp) / "remember.db")
        cpu0, wall0 = time.process_time(), time.perf_counter()
        for env, frame in built:
            guard.remember(env, frame[:32], now())
        remember = ((time.process_time() - cpu0) / n * 1e6, (time.perf_counter() - wall0) / n * 1e6)
        guard.close()
        transport = _Prepared()
        node = Node(transport, trust(), replay_guard=ReplayGuard(Path(tmp) / "replay.db"), follow_directory=False)
        transport.backlog = _Backlog(
            [
                Record(node.topic("alerts"), i % 3, i, env.case_id.encode() if env.case_id else None, frame, 0)
                for i, (env, frame) in enumerate(built)
            ]
        )
        got: list[Delivery] = []
        cpu0, wall0 = time.process_time(), time.perf_counter()
        asyncio.run(_drain(node, got.append, n))
        run = ((time.process_time() - cpu0) / n * 1e6, (time.perf_counter() - wall0) / n * 1e6)
        node.replay_guard.close()
    if len(got) != n:
        raise RuntimeError(f"the prepared backlog delivered {len(got)} of {n} messages")
    return {
        "replay_remember_cpu": remember[0],
        "replay_remember_wall": remember[1],
        "subscription_run_cpu": run[0],
        "subscription_run_wall": run[1],
        "commit_requests_per_msg": transport.backlog.commits / n,
    }


async def _drain(node: Node, handler: Callable[[Delivery], None], n: int) -> None:
    async with node.subscribe("bench", ["alerts"]) as sub:
        await sub.run(handler, limit=n, idle_timeout=5.0, poll=0.01)
