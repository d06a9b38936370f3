"""op7 as a node runs it, beside raw aiokafka, on one broker in one run.

    python3 bench/run.py [--bootstrap HOST:PORT] [--messages N] [--drain N] [--profile] [--out bench/results.json]

op7's side is the API a node runs, on the Kafka transport: ``Node.publish_batch`` to produce in bulk, ``Node.publish``
for single alerts, and ``node.subscribe(group, ["alerts"]).run(handler)`` with a file-backed replay store and the
subscription's own offset commits (as ``op7 alerts listen``). Raw aiokafka moves bytes of the same size (acks=all,
idempotent producer, a manual commit per fetch). Figures: the cost of each stage in-process; producer and consumer
throughput (the consumer drains a backlog produced first); 1 against 2 consumer processes in one group; single-alert
latency at 1 and 100 msg/s and at 25/50/75% of op7's saturation rate (raw at the same rates); resident memory while
the node drains a large backlog; with ``--profile``, where the node's producer and consumer spend their time.
Writes JSON and an SVG chart; ``bench/write_doc.py`` turns the JSON into docs/PERFORMANCE.md. Nothing here is a test.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import platform
import queue
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import procs  # noqa: E402
from bench.report import report, svg_chart  # noqa: E402
from bench.stages import SIZES, node_stage_row, now, stages  # noqa: E402

CTX = mp.get_context("spawn")


def _start(target: Any, cfg: dict[str, Any]) -> tuple[Any, Any]:
    out = CTX.Queue()
    proc = CTX.Process(target=target, args=(cfg, out))
    proc.start()
    return proc, out


def _result(started: tuple[Any, Any]) -> dict[str, Any]:
    """The process's result; an error if it ended without one (its traceback is on standard error)."""
    proc, out = started
    while True:
        try:
            result: dict[str, Any] = out.get(timeout=1.0)
            break
        except queue.Empty:
            if not proc.is_alive() and out.empty():
                raise RuntimeError(f"{proc.name} ended (exit code {proc.exitcode}) without a result") from None
    proc.join()
    return result


def _one(target: Any, cfg: dict[str, Any]) -> dict[str, Any]:
    return _result(_start(target, cfg))


def _name() -> str:
    return f"op7bench-{uuid.uuid4().hex[:8]}"


def _summary(produced: dict[str, Any], consumed: dict[str, Any]) -> dict[str, Any]:
    return {
        "producer": produced,
        "consumer": consumed,
        "end_to_end_msg_per_s": min(produced["msg_per_s"], consumed["msg_per_s"]),
    }


def raw_throughput(bootstrap: str, size: int, count: int) -> dict[str, Any]:
    """Raw aiokafka: a backlog produced, then drained by one consumer process."""
    name = _name()
    cfg = {"bootstrap": bootstrap, "topic": f"{name}.raw", "size": size, "count": count}
    asyncio.run(procs.create_topic(bootstrap, cfg["topic"]))
    try:
        return _summary(_one(procs.raw_producer, cfg), _one(procs.raw_consumer, cfg))
    finally:
        asyncio.run(procs.delete_topics(bootstrap, name))


def node_throughput(bootstrap: str, size: int, count: int, batch: int, tmp: Path, scaling: bool) -> dict[str, Any]:
    """The node path: ``publish_batch`` produces a backlog; one consumer process drains it through
    ``Subscription.run``; with ``scaling``, two processes of another group (sharing one replay store, as two
    processes of one node do) drain it again."""
    prefix = _name()
    cfg = {"bootstrap": bootstrap, "prefix": prefix, "size": size, "count": count, "batch": batch}
    try:
        produced = _one(procs.node_producer, cfg)
        one = _one(procs.node_consumer, cfg | {"group": f"{prefix}-one", "replay": str(tmp / f"{prefix}-1.db")})
        result = _summary(produced, one)
        if scaling:
            result["scaling"] = two_consumers(cfg, one, tmp)
        return result
    finally:
        asyncio.run(procs.delete_topics(bootstrap, prefix))


def two_consumers(cfg: dict[str, Any], one: dict[str, Any], tmp: Path) -> dict[str, Any]:
    two = cfg | {"group": f"{cfg['prefix']}-two", "replay": str(tmp / f"{cfg['prefix']}-2.db")}
    two |= {"shared": CTX.Value("q", 0), "barrier": CTX.Barrier(2)}
    started = [_start(procs.node_consumer, two) for _ in range(2)]
    each = [_result(s) for s in started]
    seen = [sum(column) for column in zip(*(e.pop("seen") for e in each), strict=True)]
    seconds = max(e["last"] for e in each if e["delivered"]) - min(e["first"] for e in each if e["delivered"])
    rate = (cfg["count"] - 1) / seconds
    return {
        "one_process_msg_per_s": one["msg_per_s"],
        "two_processes_msg_per_s": rate,
        "speed_up": rate / one["msg_per_s"],
        "per_process_delivered": [e["delivered"] for e in each],
        "missing": sum(1 for n in seen if n == 0),
        "repeated": sum(1 for n in seen if n > 1),
        "duplicates_refused": sum(e["duplicates"] for e in each),
    }


def profiled(bootstrap: str, count: int, batch: int, tmp: Path) -> dict[str, Any]:
    """cProfile of the node path at 1 KB: the producer (publish_batch) and the consumer (Subscription.run)."""
    prefix = _name()
    cfg = {"bootstrap": bootstrap, "prefix": prefix, "size": 1024, "count": count, "batch": batch, "profile": True}
    try:
        producer = _one(procs.node_producer, cfg)
        consumer = _one(procs.node_consumer, cfg | {"group": f"{prefix}-p", "replay": str(tmp / f"{prefix}.db")})
    finally:
        asyncio.run(procs.delete_topics(bootstrap, prefix))
    return {"producer": producer, "consumer": consumer}


def latency(bootstrap: str, rate: float, count: int, tmp: Path, *, together: bool = False) -> dict[str, Any]:
    """Single messages at ``rate``: ``Node.publish`` one alert per slot against raw sends, each consumed as it
    arrives. ``together``: raw and op7 at the same time (for 1 msg/s, where the load of either is negligible)."""
    runs: dict[str, Any] = {}
    for mode in ("raw", "op7"):
        name = _name()
        cfg = {"bootstrap": bootstrap, "size": 1024, "count": count, "rate": rate, "latency": True}
        cfg |= {"ready": CTX.Event(), "cleanup": name}
        if mode == "raw":
            cfg["topic"] = f"{name}.raw"
            asyncio.run(procs.create_topic(bootstrap, cfg["topic"]))
            targets = (procs.raw_consumer, procs.raw_producer)
        else:
            cfg |= {"prefix": name, "group": f"{name}-lat", "replay": str(tmp / f"{name}.db")}
            targets = (procs.node_consumer, procs.node_producer)
        consumer = _start(targets[0], cfg)
        runs[mode] = (cfg, consumer, _start(targets[1], cfg))
        if not together:
            runs[mode] = _finish(*runs[mode])
    return {mode: run if isinstance(run, dict) else _finish(*run) for mode, run in runs.items()} | {"alerts": count}


def _finish(cfg: dict[str, Any], consumer: tuple[Any, Any], producer: tuple[Any, Any]) -> dict[str, Any]:
    produced, consumed = _result(producer), _result(consumer)
    asyncio.run(procs.delete_topics(cfg["bootstrap"], cfg["cleanup"]))
    return {
        "rate_msg_per_s": cfg["rate"],
        "sent_msg_per_s": produced["msg_per_s"],
        "latency_ms": consumed["latency_ms"],
        "missing": consumed["missing"],
        "repeated": consumed["repeated"],
    }


def drain(bootstrap: str, count: int, batch: int, tmp: Path) -> dict[str, Any]:
    """A backlog of ``count`` 512 B alerts, written by two ``publish_batch`` processes (one would take longer than
    the drain), then one node consumer drains it through ``Subscription.run``, its resident size sampled every
    0.5 s."""
    prefix = _name()
    cfg = {"bootstrap": bootstrap, "prefix": prefix, "size": 512, "count": count, "batch": batch}
    try:
        half = count // 2
        started = time.perf_counter()
        writers = [
            _start(procs.node_producer, cfg | {"count": n, "start": s}) for s, n in ((0, half), (half, count - half))
        ]
        for writer in writers:
            _result(writer)
        backlog_seconds = time.perf_counter() - started
        consumed = _one(
            procs.node_consumer, cfg | {"group": f"{prefix}-d", "replay": str(tmp / f"{prefix}.db"), "sample_rss": True}
        )
    finally:
        asyncio.run(procs.delete_topics(bootstrap, prefix))
    keys = ("msg_per_s", "cpu_us_per_msg", "rss_mb", "missing", "repeated", "duplicates", "quarantined")
    return {"messages": count, "frame_bytes": 512, "backlog_seconds": backlog_seconds} | {
        f"consumer_{k}" if k in ("msg_per_s", "cpu_us_per_msg") else k: consumed[k] for k in keys
    }


def throughput(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for size in args.sizes:
        print(f"throughput, {size} B ...", flush=True)
        raw = raw_throughput(args.bootstrap, size, args.messages)
        op7 = node_throughput(args.bootstrap, size, args.messages, args.batch, tmp, scaling=size == 1024)
        out[str(size)] = {
            "raw": raw,
            "op7": op7,
            "ratio_consumer": op7["consumer"]["msg_per_s"] / raw["consumer"]["msg_per_s"],
            "ratio_producer": op7["producer"]["msg_per_s"] / raw["producer"]["msg_per_s"],
        }
    return out


def latencies(args: argparse.Namespace, saturation: float, tmp: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    print(f"latency at 1 msg/s ({args.slow_messages} alerts, raw and op7 together) ...", flush=True)
    out["1/s"] = latency(args.bootstrap, 1.0, args.slow_messages, tmp, together=True)
    print(f"latency at 100 msg/s ({args.latency_messages} alerts each) ...", flush=True)
    out["100/s"] = latency(args.bootstrap, 100.0, args.latency_messages, tmp)
    for share in (25, 50, 75):
        rate = saturation * share / 100
        n = max(20, min(args.latency_messages, int(rate * 10)))
        print(f"latency at {share}% of op7's saturation ({rate:,.0f} msg/s, {n} alerts each) ...", flush=True)
        out[f"{share}%"] = latency(args.bootstrap, rate, n, tmp)
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse(argv)
    started = time.perf_counter()
    results: dict[str, Any] = {
        "when": now().isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "options": {k: v for k, v in vars(args).items() if k != "out"},
    }
    phases: dict[str, float] = {}
    mark = time.perf_counter()

    def done(phase: str) -> None:
        nonlocal mark
        phases[phase] = round(time.perf_counter() - mark, 1)
        mark = time.perf_counter()

    print("stage costs ...", flush=True)
    results["stages_cpu_us"] = stages(args.stage_calls)
    results["node_stages_us"] = {str(s): node_stage_row(s, args.stage_calls) for s in args.sizes}
    done("stages")
    with tempfile.TemporaryDirectory(prefix="op7-bench-") as tmp:
        results["throughput"] = throughput(args, Path(tmp))
        done("throughput")
        t = results["throughput"]["1024" if "1024" in results["throughput"] else str(args.sizes[0])]
        results["scaling"] = t["op7"].pop("scaling", None)
        results["commit_round_trip_us"] = t["raw"]["consumer"].get("commit_round_trip_us")
        saturation = t["op7"]["end_to_end_msg_per_s"]
        results["saturation_msg_per_s"] = saturation
        results["latency"] = latencies(args, saturation, Path(tmp))
        done("latency")
        if args.profile:
            print(f"profile of the node path ({args.profile_messages} messages) ...", flush=True)
            results["profile"] = profiled(args.bootstrap, args.profile_messages, args.batch, Path(tmp))
            done("profile")
        print(f"memory while the node drains {args.drain:,} messages ...", flush=True)
        results["drain"] = drain(args.bootstrap, args.drain, args.batch, Path(tmp))
        done("drain")
    results["phase_seconds"] = phases
    results["seconds"] = time.perf_counter() - started
    args.out.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    svg_chart(results, args.out.with_suffix(".svg"))
    report(results)
    return results


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--bootstrap", default=os.environ.get("OP7_BENCH_BOOTSTRAP", "127.0.0.1:9092"))
    parser.add_argument("--messages", type=int, default=20_000, help="backlog of each throughput run")
    parser.add_argument("--sizes", type=lambda v: [int(s) for s in v.split(",")], default=list(SIZES))
    parser.add_argument("--batch", type=int, default=200, help="alerts per Node.publish_batch call")
    parser.add_argument("--slow-messages", type=int, default=60, help="alerts at 1 msg/s (one minute)")
    parser.add_argument(
        "--latency-messages", type=int, default=2_000, help="alerts at 100 msg/s, and at most at 25-75%%"
    )
    parser.add_argument("--drain", type=int, default=1_000_000, help="backlog drained for the memory figure")
    parser.add_argument("--stage-calls", type=int, default=3_000, help="calls per in-process stage")
    parser.add_argument("--profile", action="store_true", help="profile the node's producer and consumer (cProfile)")
    parser.add_argument("--profile-messages", type=int, default=5_000)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results.json")
    return parser.parse_args(argv)


if __name__ == "__main__":
    main()
