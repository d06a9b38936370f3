"""op7 against raw aiokafka, side by side on one broker in one run.

    python3 bench/run.py [--bootstrap HOST:PORT] [--messages N] [--drain N] [--out bench/results.json]

Stages (CPU microseconds per message, one process, same run): Avro encode, Ed25519 sign (single and batched),
verify (the raw libsodium primitive, and op7's full check of a frame), decode. Throughput: a producer and a
consumer in separate processes, raw bytes versus op7 frames of the same size (0.5, 1 and 2 KB). Latency at fixed
rates (25/50/75% of op7's measured saturation rate), raw and op7 at the same rate. Memory: the consumer's resident
size while it drains a backlog. Prints the ratios; writes JSON and an SVG chart. Nothing here is a test.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import platform
import resource
import sys
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer  # noqa: E402

from broker.clock import default_clock  # noqa: E402
from broker.models import KidnappingAlert  # noqa: E402
from broker.trust.store import TrustStore  # noqa: E402
from broker.wire.codec import decode, encode  # noqa: E402
from broker.wire.envelope import NodeIdentity, build, build_batch, open_frame, parse_frame, verify_frame  # noqa: E402
from broker.wire.signing import SigningKey  # noqa: E402

SIZES = (512, 1024, 2048)
SEED = bytes(range(32))
EXAMPLE = json.loads((ROOT / "examples" / "kidnapping-alert.json").read_text())


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


def alert_of_size(size: int, i: int = 0) -> KidnappingAlert:
    """An alert whose op7 frame is ``size`` bytes: the full example (or, below its size, a minimal alert) with its
    description padded."""
    for base in (EXAMPLE, MINIMAL):
        data = {**base, "sent_at": now(), "alert_id": f"BENCH-{i:06d}"}
        probe = build(identity(), _alert({**data, "description": "x"}), now=now())[1]
        if len(probe) <= size:
            break
    pad = size - len(probe) + 1
    alert = _alert({**data, "description": "x" * pad})
    excess = len(build(identity(), alert, now=now())[1]) - size  # the Avro length prefix may have grown by a byte
    return alert if excess <= 0 else _alert({**data, "description": "x" * (pad - excess)})


def _alert(data: dict[str, Any]) -> KidnappingAlert:
    # The example gives times relative to sending ("-35m"), as input files may.
    return KidnappingAlert.model_validate(data, context={"now": data["sent_at"]})


def now() -> datetime:
    return default_clock().now()


def identity() -> NodeIdentity:
    return NodeIdentity("FR.GN", SigningKey.from_seed(SEED))


def trust() -> TrustStore:
    return TrustStore({"FR.GN": [SigningKey.from_seed(SEED).public]})


def per_call_us(fn: Any, n: int) -> float:
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


# --- processes -------------------------------------------------------------------------------------------


def _frames(size: int, count: int, batched: bool) -> list[bytes]:
    ident = identity()
    alerts = [alert_of_size(size, i) for i in range(min(count, 200))]
    frames: list[bytes] = []
    while len(frames) < count:
        chunk = alerts[: count - len(frames)]
        if batched:
            frames += [f for _, f in build_batch(ident, chunk, now=now())]
        else:
            frames += [build(ident, a, now=now())[1] for a in chunk]
    return frames


def producer(bootstrap: str, topic: str, mode: str, size: int, count: int, rate: float | None, result: Any) -> None:
    async def run() -> dict[str, Any]:
        cpu0 = time.process_time()
        if mode == "raw":
            payloads = [os.urandom(size) for _ in range(min(count, 1000))]
        prod = AIOKafkaProducer(
            bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=5, max_batch_size=256 * 1024
        )
        await prod.start()
        t0 = time.perf_counter()
        pending = []
        try:
            ident = identity()
            alert = alert_of_size(size) if mode != "raw" else None
            batch_alerts = [alert_of_size(size, i) for i in range(200)] if mode == "op7" else []
            i = 0
            while i < count:
                if rate:  # paced: one message per slot, each stamped when it is made
                    due = t0 + i / rate
                    now = time.perf_counter()
                    if due > now:
                        await asyncio.sleep(due - now)
                if mode == "raw":
                    value = time.time_ns().to_bytes(8, "big") + payloads[i % len(payloads)][8:]
                    values = [value]
                elif rate or mode == "op7-single":
                    assert alert is not None
                    values = [build(ident, alert, now=now())[1]]
                else:
                    chunk = batch_alerts[: min(200, count - i)]
                    values = [f for _, f in build_batch(ident, chunk, now=now())]
                for value in values:
                    pending.append(await prod.send(topic, value, key=b"case-%d" % (i % 16)))
                    i += 1
                if len(pending) >= 2000:
                    await asyncio.gather(*pending)
                    pending = []
            await asyncio.gather(*pending)
        finally:
            await prod.stop()
        elapsed = time.perf_counter() - t0
        return {
            "seconds": elapsed,
            "msg_per_s": count / elapsed,
            "cpu_us_per_msg": (time.process_time() - cpu0) / count * 1e6,
        }

    result.put(asyncio.run(run()))


def consumer(bootstrap: str, topic: str, mode: str, count: int, result: Any, sample_rss: bool = False) -> None:
    async def run() -> dict[str, Any]:
        store = trust()
        cons = AIOKafkaConsumer(
            topic,
            bootstrap_servers=bootstrap,
            group_id=f"bench-{uuid.uuid4().hex}",
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            fetch_max_bytes=8 << 20,
            max_partition_fetch_bytes=4 << 20,
        )
        await cons.start()
        got, latencies, rss = 0, [], []
        cpu0, t0, first = time.process_time(), time.perf_counter(), None
        last_rss = 0.0
        try:
            while got < count:
                batches = await cons.getmany(timeout_ms=1000, max_records=2000)
                now_ns = time.time_ns()
                for records in batches.values():
                    for record in records:
                        if first is None:
                            first = time.perf_counter()
                        if mode == "raw":
                            sent_ns = int.from_bytes(record.value[:8], "big")
                        else:
                            opened = open_frame(record.value, store)
                            sent_ns = int(opened.envelope.created_at.timestamp() * 1e9)
                        if not sample_rss:  # the drain measures memory: keep nothing per message
                            latencies.append((now_ns - sent_ns) / 1e6)
                        got += 1
                if batches:
                    offsets = {tp: msgs[-1].offset + 1 for tp, msgs in batches.items()}
                    await cons.commit(offsets)
                if sample_rss and time.perf_counter() - last_rss > 0.5:
                    last_rss = time.perf_counter()
                    rss.append((round(last_rss - t0, 1), _rss_mb()))
        finally:
            await cons.stop()
        elapsed = time.perf_counter() - (first or t0)
        lat = sorted(latencies)
        return {
            "seconds": elapsed,
            "msg_per_s": count / elapsed if elapsed else 0.0,
            "cpu_us_per_msg": (time.process_time() - cpu0) / count * 1e6,
            "latency_ms": {"p50": _pct(lat, 50), "p99": _pct(lat, 99), "p99.9": _pct(lat, 99.9)},
            "rss_mb": rss,
        }

    result.put(asyncio.run(run()))


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    return values[min(len(values) - 1, int(len(values) * p / 100))]


def pair(
    bootstrap: str,
    mode: str,
    size: int,
    count: int,
    rate: float | None = None,
    sample_rss: bool = False,
    produce_first: bool = False,
) -> dict[str, Any]:
    """A producer and a consumer in separate processes on a fresh topic; returns both sides' figures."""
    topic = f"bench.{mode}.{size}.{uuid.uuid4().hex[:8]}"
    asyncio.run(_create(bootstrap, topic))
    ctx = mp.get_context("spawn")
    q_prod, q_cons = ctx.Queue(), ctx.Queue()
    prod = ctx.Process(target=producer, args=(bootstrap, topic, mode, size, count, rate, q_prod))
    cons = ctx.Process(
        target=consumer, args=(bootstrap, topic, "raw" if mode == "raw" else "op7", count, q_cons, sample_rss)
    )
    if produce_first:  # a backlog: everything is written before the consumer starts
        prod.start()
        produced = q_prod.get()
        prod.join()
        cons.start()
        consumed = q_cons.get()
        cons.join()
    else:
        cons.start()
        time.sleep(1.5)  # the consumer joins its group before the first record
        prod.start()
        produced, consumed = q_prod.get(), q_cons.get()
        prod.join()
        cons.join()
    asyncio.run(_delete(bootstrap, topic))
    return {
        "producer": produced,
        "consumer": consumed,
        "end_to_end_msg_per_s": min(produced["msg_per_s"], consumed["msg_per_s"]),
    }


async def _create(bootstrap: str, topic: str) -> None:
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, 3, 1)])
    finally:
        await admin.close()


async def _delete(bootstrap: str, topic: str) -> None:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.delete_topics([topic])
    finally:
        await admin.close()


def svg_chart(results: dict[str, Any], path: Path) -> None:
    """A small bar chart of end-to-end throughput, raw versus op7, per size (no plotting library needed)."""
    rows = [
        (
            s,
            results["throughput"][s]["raw"]["end_to_end_msg_per_s"],
            results["throughput"][s]["op7"]["end_to_end_msg_per_s"],
        )
        for s in results["throughput"]
    ]
    top = max(max(r, o) for _, r, o in rows) or 1
    width, height, bar = 520, 260, 40
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" '
        'font-size="12">',
        '<text x="10" y="18">End-to-end messages per second (raw aiokafka vs op7)</text>',
    ]
    for n, (size, raw, op7) in enumerate(rows):
        x = 40 + n * 160
        for m, (value, colour, label) in enumerate(((raw, "#888", "raw"), (op7, "#2a6", "op7"))):
            h = (height - 70) * value / top
            parts.append(
                f'<rect x="{x + m * (bar + 6)}" y="{height - 40 - h:.0f}" width="{bar}" height="{h:.0f}" '
                f'fill="{colour}"/>'
            )
            parts.append(f'<text x="{x + m * (bar + 6)}" y="{height - 44 - h:.0f}">{value:,.0f}</text>')
            parts.append(f'<text x="{x + m * (bar + 6) + 8}" y="{height - 25}">{label}</text>')
        parts.append(f'<text x="{x + 20}" y="{height - 8}">{size} B</text>')
    parts.append("</svg>")
    path.write_text("\n".join(parts) + "\n", encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bootstrap", default=os.environ.get("OP7_BENCH_BOOTSTRAP", "127.0.0.1:9092"))
    parser.add_argument("--messages", type=int, default=20_000, help="per throughput run")
    parser.add_argument("--latency-messages", type=int, default=3_000, help="per latency run")
    parser.add_argument("--drain", type=int, default=1_000_000, help="backlog drained for the memory figure")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results.json")
    args = parser.parse_args()
    started = time.perf_counter()
    results: dict[str, Any] = {
        "when": now().isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "stages_cpu_us": stages(),
        "throughput": {},
        "latency": {},
    }
    for size in SIZES:
        print(f"throughput, {size} B ...", flush=True)
        results["throughput"][str(size)] = {
            "raw": pair(args.bootstrap, "raw", size, args.messages),
            "op7": pair(args.bootstrap, "op7", size, args.messages),
            "op7_unbatched": pair(args.bootstrap, "op7-single", size, args.messages // 2),
        }
        t = results["throughput"][str(size)]
        t["ratio_op7_to_raw"] = t["op7"]["end_to_end_msg_per_s"] / t["raw"]["end_to_end_msg_per_s"]
    saturation = results["throughput"]["1024"]["op7"]["end_to_end_msg_per_s"]
    for share in (25, 50, 75):
        rate = saturation * share / 100
        print(f"latency at {share}% of op7 saturation ({rate:,.0f} msg/s) ...", flush=True)
        n = min(args.latency_messages, int(rate * 10))
        raw = pair(args.bootstrap, "raw", 1024, n, rate=rate)
        op7 = pair(args.bootstrap, "op7", 1024, n, rate=rate)
        results["latency"][f"{share}%"] = {
            "rate_msg_per_s": rate,
            "raw_ms": raw["consumer"]["latency_ms"],
            "op7_ms": op7["consumer"]["latency_ms"],
        }
    print(f"memory while draining {args.drain:,} messages ...", flush=True)
    drain = pair(args.bootstrap, "op7", 512, args.drain, sample_rss=True, produce_first=True)
    results["drain"] = {
        "messages": args.drain,
        "consumer_msg_per_s": drain["consumer"]["msg_per_s"],
        "rss_mb": drain["consumer"]["rss_mb"],
    }
    results["seconds"] = time.perf_counter() - started
    args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    svg_chart(results, args.out.with_suffix(".svg"))
    report(results)


def report(r: dict[str, Any]) -> None:
    print("\nstage costs, CPU us per message (1 KB):")
    s = r["stages_cpu_us"]["1024"]
    for name in (
        "encode",
        "sign",
        "build_single",
        "build_batched_100",
        "verify_primitive",
        "verify_signature_op7",
        "verify_frame_op7",
        "decode",
        "open_frame_op7",
    ):
        print(f"  {name:<22} {s[name]:8.1f}")
    print(
        f"  verification / primitive: signature {s['verify_ratio_signature']:.2f}x, "
        f"whole frame check {s['verify_ratio_frame']:.2f}x"
    )
    print("\nthroughput, end to end (msg/s):")
    for size, t in r["throughput"].items():
        raw, op7, single = (t[k]["end_to_end_msg_per_s"] for k in ("raw", "op7", "op7_unbatched"))
        print(
            f"  {size:>5} B  raw {raw:9,.0f}  op7 {op7:9,.0f}  ratio {t['ratio_op7_to_raw']:.2f}  "
            f"(op7 unbatched {single:,.0f})"
        )
    print("\nlatency at fixed rates, 1 KB (ms):")
    for share, row in r["latency"].items():
        raw, op7 = row["raw_ms"], row["op7_ms"]
        print(
            f"  {share:>4} ({row['rate_msg_per_s']:,.0f}/s)  raw p50 {raw['p50']:.2f} p99 {raw['p99']:.2f} "
            f"p99.9 {raw['p99.9']:.2f} | op7 p50 {op7['p50']:.2f} p99 {op7['p99']:.2f} p99.9 {op7['p99.9']:.2f}"
        )
    rss = [m for _, m in r["drain"]["rss_mb"]]
    if rss:
        print(
            f"\nconsumer RSS while draining {r['drain']['messages']:,}: start {rss[0]:.0f} MB, "
            f"peak {max(rss):.0f} MB, end {rss[-1]:.0f} MB ({r['drain']['consumer_msg_per_s']:,.0f} msg/s)"
        )
    print(f"\nwhole run: {r['seconds']:.0f} s")


if __name__ == "__main__":
    main()
