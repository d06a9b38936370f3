"""The processes of the benchmark: producers and consumers, op7's (a node on the Kafka transport) and raw aiokafka's.

Each target runs in a spawned process, takes a ``cfg`` dict and puts one result dict on ``out``.

- ``node_producer``: ``Node.publish_batch`` in batches (throughput), or ``Node.publish`` one alert at a time at a
  fixed rate, each publish started at its due time (latency).
- ``node_consumer``: ``node.subscribe(group, ["alerts"]).run(handler, ...)`` with a file-backed ``ReplayGuard`` and
  the subscription's own commits, as ``op7 alerts listen`` runs it.
- ``raw_producer`` / ``raw_consumer``: aiokafka with acks=all, idempotence, manual commits once per fetch, bytes of
  the frame's size.

Every message carries its index and its due send time (wall clock, ns): the consumers count each index (exactly
once?) and measure latency from the due time, at the handler.
"""

from __future__ import annotations

import asyncio
import cProfile
import os
import pstats
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from bench.stages import alert_of_size, identity, index_and_stamp, stamped, trust
from broker.node.node import Delivery, Node, Subscription
from broker.transport.kafka import KafkaSettings, KafkaTransport
from broker.trust.replay import ReplayGuard

#: Seconds without progress after which a consumer gives up (a message lost would otherwise hang the run).
STALL = 60.0
#: The raw records' header: due time (ns, 8 bytes) and index (4 bytes).
RAW_HEAD = 12


def _kafka(bootstrap: str) -> KafkaTransport:
    return KafkaTransport(KafkaSettings(bootstrap_servers=bootstrap, client_id="op7-bench"))


class _Profile:
    """cProfile around the measured part of a process (not its start: creating topics, joining the group), when
    ``cfg["profile"]``; its summary goes into the result."""

    def __init__(self, cfg: dict[str, Any]) -> None:
        self.profiler = cProfile.Profile() if cfg.get("profile") else None
        self.messages = cfg["count"]

    def __enter__(self) -> None:
        if self.profiler is not None:
            self.profiler.enable()

    def __exit__(self, *_: object) -> None:
        if self.profiler is not None:
            self.profiler.disable()

    def into(self, result: dict[str, Any]) -> dict[str, Any]:
        if self.profiler is not None:
            result["profile"] = profile_summary(pstats.Stats(self.profiler), self.messages)
        return result


def profile_summary(stats: pstats.Stats, messages: int, top: int = 25) -> dict[str, Any]:
    """The top functions by own time and by cumulative time, and own time summed by package, per message."""
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    total = sum(entry[2] for entry in raw.values()) or 1.0
    rows = []
    packages: dict[str, float] = {}
    for (filename, line, name), (_cc, calls, own, cumulative, _callers) in raw.items():
        where = _short(filename)
        rows.append(
            {
                "function": f"{where}:{line}({name})" if line else name,
                "calls": calls,
                "own_s": own,
                "cumulative_s": cumulative,
                "own_us_per_msg": own / messages * 1e6,
            }
        )
        package = _package(filename, name)
        packages[package] = packages.get(package, 0.0) + own
    by_package = sorted(packages.items(), key=lambda kv: -kv[1])
    return {
        "messages": messages,
        "total_s": total,
        "by_own": sorted(rows, key=lambda r: -r["own_s"])[:top],
        "by_cumulative": sorted(rows, key=lambda r: -r["cumulative_s"])[:top],
        "by_package": [
            {"package": p, "own_s": s, "share": s / total, "us_per_msg": s / messages * 1e6} for p, s in by_package
        ][:15],
    }


def _short(filename: str) -> str:
    """A profile entry's file without the machine's folders: ``aiokafka/...``, ``broker/...``, ``asyncio/...``."""
    if "site-packages/" in filename:
        return filename.split("site-packages/", 1)[1]
    if "/broker/" in filename:
        return "broker/" + filename.split("/broker/", 1)[1]
    if "/lib/python3." in filename:
        return filename.split("/lib/python3.", 1)[1].split("/", 1)[-1]
    return filename


def _package(filename: str, name: str) -> str:
    """Where a profile entry's own time belongs: the library, op7's part, the standard library, or waiting."""
    if filename == "~":  # built-ins: named by their object
        if "poll" in name or "select" in name:
            return "waiting for the network (epoll)"
        for known in ("sqlite3", "pydantic_core", "_hashlib", "nacl", "_sodium", "fastavro", "_cffi"):
            if known in name:
                return known
        return "built-ins"
    if "site-packages/" in filename:
        return filename.split("site-packages/", 1)[1].split("/", 1)[0]
    if "/broker/" in filename:
        parts = filename.split("/broker/", 1)[1].split("/")
        return "broker." + parts[0].removesuffix(".py")
    if "/lib/python3." in filename:
        parts = filename.split("/lib/python3.", 1)[1].split("/")
        return "stdlib." + parts[1].removesuffix(".py")
    return _short(filename)


# --- op7: a node on the Kafka transport ------------------------------------------------------------------------


def node_producer(cfg: dict[str, Any], out: Any) -> None:
    out.put(asyncio.run(_node_produce(cfg)))


async def _node_produce(cfg: dict[str, Any]) -> dict[str, Any]:
    count, base = cfg["count"], alert_of_size(cfg["size"])
    node = Node(_kafka(cfg["bootstrap"]), trust(), identity(), topic_prefix=cfg["prefix"], follow_directory=False)
    async with node:
        if cfg.get("rate"):
            await _warm_up(cfg, lambda: node.publish(stamped(base, count, time.time_ns())))
            return await _paced(cfg, lambda i, due: node.publish(stamped(base, i, due)))
        busy = cpu = 0.0
        i = 0
        profile = _Profile(cfg)
        with profile:
            while i < count:
                first = cfg.get("start", 0) + i  # producers sharing one backlog number their messages apart
                chunk = [stamped(base, first + k, 0) for k in range(min(cfg["batch"], count - i))]
                t, c = time.perf_counter(), time.process_time()
                await node.publish_batch(chunk)
                busy += time.perf_counter() - t
                cpu += time.process_time() - c
                i += len(chunk)
    return profile.into({"seconds": busy, "msg_per_s": count / busy, "cpu_us_per_msg": cpu / count * 1e6})


async def _warm_up(cfg: dict[str, Any], send: Callable[[], Any]) -> None:
    """One message numbered ``count`` first, and wait until the consumer has it: it has joined its group and is
    reading, so the timed messages do not wait for a group rebalance."""
    await send()
    loop = asyncio.get_running_loop()
    if not await loop.run_in_executor(None, cfg["ready"].wait, 120.0):
        raise RuntimeError("the consumer never received the warm-up message")


async def _paced(cfg: dict[str, Any], send: Callable[[int, int], Any]) -> dict[str, Any]:
    """Start one send per slot of ``1/rate`` s, each stamped with its slot's wall-clock time, without waiting for
    the previous one (several may be in flight, as alerts arriving at a node)."""
    count, rate = cfg["count"], cfg["rate"]
    pending: set[asyncio.Task[Any]] = set()
    t0, t0_ns, cpu0 = time.perf_counter(), time.time_ns(), time.process_time()
    for i in range(count):
        delay = t0 + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.ensure_future(send(i, t0_ns + int(i * 1e9 / rate)))
        pending.add(task)
        task.add_done_callback(pending.discard)
    await asyncio.gather(*pending)
    elapsed = time.perf_counter() - t0
    return {
        "seconds": elapsed,
        "msg_per_s": count / elapsed,
        "cpu_us_per_msg": (time.process_time() - cpu0) / count * 1e6,
    }


class _Tally:
    """What a consumer saw: each index's count, latencies, first and last delivery times, CPU from the first."""

    def __init__(self, count: int, keep_latency: bool, ready: Any = None, shared: Any = None) -> None:
        self.count = count
        self.seen = bytearray(count + 1)
        self.latencies: list[float] = []
        self.keep_latency = keep_latency
        self.ready, self.shared = ready, shared
        self.first = self.last = 0.0
        self.cpu_first = 0.0
        self.delivered = 0

    def saw(self, index: int, due_ns: int) -> None:
        now_ns = time.time_ns()
        if index == self.count:  # the warm-up message
            if self.ready is not None:
                self.ready.set()
            return
        self.last = time.perf_counter()
        if not self.delivered:
            self.first, self.cpu_first = self.last, time.process_time()
        self.delivered += 1
        self.seen[index] = min(255, self.seen[index] + 1)
        if self.keep_latency:
            self.latencies.append((now_ns - due_ns) / 1e6)
        if self.shared is not None:
            with self.shared.get_lock():
                self.shared.value += 1

    def result(self) -> dict[str, Any]:
        seconds = self.last - self.first
        lat = sorted(self.latencies)
        seen = memoryview(self.seen)[: self.count]
        return {
            "delivered": self.delivered,
            "seconds": seconds,
            "msg_per_s": (self.delivered - 1) / seconds if seconds > 0 else 0.0,
            "cpu_us_per_msg": (time.process_time() - self.cpu_first) / max(1, self.delivered) * 1e6,
            "first": self.first,
            "last": self.last,
            "missing": self.count - sum(1 for b in seen if b),
            "repeated": sum(1 for b in seen if b > 1),
            "latency_ms": {"p50": pct(lat, 50), "p99": pct(lat, 99), "p99.9": pct(lat, 99.9), "max": pct(lat, 100)},
        }


def node_consumer(cfg: dict[str, Any], out: Any) -> None:
    out.put(asyncio.run(_node_consume(cfg)))


async def _node_consume(cfg: dict[str, Any]) -> dict[str, Any]:
    count = cfg["count"]
    tally = _Tally(count, bool(cfg.get("latency")), cfg.get("ready"), cfg.get("shared"))

    def handler(d: Delivery) -> None:
        tally.saw(*index_and_stamp(d.message))

    node = Node(
        _kafka(cfg["bootstrap"]),
        trust(),
        topic_prefix=cfg["prefix"],
        replay_guard=ReplayGuard(Path(cfg["replay"])),
        follow_directory=False,
    )
    rss: list[tuple[float, float]] = []
    profile = _Profile(cfg)
    async with node:
        if cfg.get("barrier") is not None:  # the processes of one group join it together
            await asyncio.get_running_loop().run_in_executor(None, cfg["barrier"].wait, 120.0)
        async with node.subscribe(cfg["group"], ["alerts"]) as sub:
            sampler = asyncio.create_task(_sample_rss(rss)) if cfg.get("sample_rss") else None
            with profile:
                stats = await _run(sub, handler, tally, count + (1 if cfg.get("ready") is not None else 0))
            if sampler is not None:
                sampler.cancel()
    result = tally.result()
    result |= {"rss_mb": rss, "duplicates": stats.duplicates, "quarantined": dict(stats.quarantined)}
    if tally.shared is not None:
        result["seen"] = bytes(tally.seen[: tally.count])
    return profile.into(result)


async def _run(sub: Subscription, handler: Callable[[Delivery], None], tally: _Tally, expected: int) -> Any:
    """``sub.run`` until ``expected`` messages, or, with several processes in one group, until all of them
    together have every message."""
    if tally.shared is None:
        return await sub.run(handler, limit=expected, idle_timeout=STALL)
    stats, stalled_at, seen = sub.stats, time.perf_counter(), 0
    while tally.shared.value < tally.count and time.perf_counter() - stalled_at < STALL:
        stats = await sub.run(handler, idle_timeout=0.5)
        if tally.shared.value != seen:
            stalled_at, seen = time.perf_counter(), tally.shared.value
    return stats


async def _sample_rss(into: list[tuple[float, float]]) -> None:
    t0 = time.perf_counter()
    while True:
        into.append((round(time.perf_counter() - t0, 1), rss_mb()))
        await asyncio.sleep(0.5)


# --- raw aiokafka ----------------------------------------------------------------------------------------------


def raw_producer(cfg: dict[str, Any], out: Any) -> None:
    out.put(asyncio.run(_raw_produce(cfg)))


async def _raw_produce(cfg: dict[str, Any]) -> dict[str, Any]:
    count, size, topic = cfg["count"], cfg["size"], cfg["topic"]
    filler = os.urandom(size - RAW_HEAD)
    # Throughput: a producer tuned for bulk (larger batches, longer linger than op7's transport). Latency: the
    # linger of op7's transport (2 ms), so that neither side waits longer to fill a batch.
    tuning = {"linger_ms": 2} if cfg.get("rate") else {"linger_ms": 5, "max_batch_size": 256 * 1024}
    prod = AIOKafkaProducer(bootstrap_servers=cfg["bootstrap"], acks="all", enable_idempotence=True, **tuning)

    def value(i: int, due: int) -> bytes:
        return due.to_bytes(8, "big") + i.to_bytes(4, "big") + filler

    async def send(i: int, due: int) -> None:
        await (await prod.send(topic, value(i, due), key=b"case-%d" % (i % 16)))

    await prod.start()
    try:
        if cfg.get("rate"):
            await _warm_up(cfg, lambda: send(count, time.time_ns()))
            return await _paced(cfg, send)
        t0, cpu0 = time.perf_counter(), time.process_time()
        pending = []
        for i in range(count):
            pending.append(await prod.send(topic, value(i, 0), key=b"case-%d" % (i % 16)))
            if len(pending) >= 2000:
                await asyncio.gather(*pending)
                pending = []
        await asyncio.gather(*pending)
        elapsed = time.perf_counter() - t0
    finally:
        await prod.stop()
    return {
        "seconds": elapsed,
        "msg_per_s": count / elapsed,
        "cpu_us_per_msg": (time.process_time() - cpu0) / count * 1e6,
    }


def raw_consumer(cfg: dict[str, Any], out: Any) -> None:
    out.put(asyncio.run(_raw_consume(cfg)))


async def _raw_consume(cfg: dict[str, Any]) -> dict[str, Any]:
    count = cfg["count"]
    tally = _Tally(count, bool(cfg.get("latency")), cfg.get("ready"))
    expected = count + (1 if cfg.get("ready") is not None else 0)
    cons = AIOKafkaConsumer(
        cfg["topic"],
        bootstrap_servers=cfg["bootstrap"],
        group_id=f"bench-{uuid.uuid4().hex}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        fetch_max_bytes=8 << 20,
        max_partition_fetch_bytes=4 << 20,
    )
    await cons.start()
    got, idle_since = 0, time.perf_counter()
    try:
        while got < expected and time.perf_counter() - idle_since < STALL:
            batches = await cons.getmany(timeout_ms=500, max_records=2000)
            for records in batches.values():
                for record in records:
                    head = record.value[:RAW_HEAD]
                    tally.saw(int.from_bytes(head[8:], "big"), int.from_bytes(head[:8], "big"))
                    got += 1
            if batches:
                idle_since = time.perf_counter()
                await cons.commit({tp: msgs[-1].offset + 1 for tp, msgs in batches.items()})
        result = tally.result()
        result["commit_round_trip_us"] = await _commit_round_trip(cons)
    finally:
        await cons.stop()
    return result


async def _commit_round_trip(cons: AIOKafkaConsumer, n: int = 50) -> float:
    """Wall microseconds of one offset commit of one partition (the request and its answer), on this broker."""
    committed = {tp: await cons.position(tp) for tp in cons.assignment()}
    tp: TopicPartition = next(iter(committed))
    t0 = time.perf_counter()
    for _ in range(n):
        await cons.commit({tp: committed[tp]})
    return (time.perf_counter() - t0) / n * 1e6


# --- helpers ---------------------------------------------------------------------------------------------------


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    return values[min(len(values) - 1, int(len(values) * p / 100))]


async def create_topic(bootstrap: str, topic: str, partitions: int = 3) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, partitions, 1)])
    finally:
        await admin.close()


async def delete_topics(bootstrap: str, prefix: str) -> None:
    """Delete every topic whose name starts with ``prefix`` (a run's own)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        names = [t for t in await admin.list_topics() if t.startswith(prefix)]
        if names:
            await admin.delete_topics(names)
    finally:
        await admin.close()
