"""A soak: ``op7 alerts listen`` under a sustained fixed rate for minutes, its memory, open files and lag watched.

    python3 bench/soak.py [--bootstrap HOST:PORT | --embedded] [--rate 200] [--minutes 5] [--every 5]
                          [--size 1024] [--out bench/soak.json]

Set up as operators do: two op7 homes (FR.GN sends, NL.NCC listens) made with ``op7 keys new`` and trusting each
other's key cards, the topics made with ``op7 topics create`` under a prefix of the run's own. The listener is the
real command, ``op7 alerts listen --as NL.NCC --json --metrics-port PORT``, in its own process; its output goes to
/dev/null. This process sends: one alert of ``--size`` bytes per slot of ``1/rate`` s, signed with FR.GN's key as a
node signs it, each written at its due time whether or not the previous one was acknowledged (``bench/procs.py``'s
pacing); straight through the transport, so that the load does not depend on the sending node's outbox.
Every ``--every`` seconds it samples the listener's resident size (``/proc/PID/status`` VmRSS), its open files
(``/proc/PID/fd``), its CPU time, and, from its metrics endpoint, what it handled and refused and its lag. Once the
sending ends it waits for the listener to catch up (at most a minute), stops it with Ctrl-C (SIGINT), and writes the
samples and a summary as JSON. Resident memory is judged after the first minute (imports, caches, the first batches):
its slope over the rest, and the first against the last minute. Nothing here is a test.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

from bench import procs  # noqa: E402
from bench.stages import alert_of_size, now, stamped  # noqa: E402
from broker.config import Home  # noqa: E402
from broker.node.topics import ALERTS, TopicLayout  # noqa: E402
from broker.transport import EmbeddedTransport, KafkaTransport, Transport  # noqa: E402
from broker.wire.envelope import build  # noqa: E402

#: Seconds the listener has to catch up once the sending ended.
CATCH_UP = 60.0


def op7(home: Path, env: dict[str, str], *args: str) -> str:
    """Run the op7 command in ``home``; its output, or an error with its standard error."""
    done = subprocess.run(  # noqa: S603 (this very program)
        [sys.executable, "-m", "broker.cli", *args], env=env | {"OP7_HOME": str(home)}, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise RuntimeError(f"op7 {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout


def homes(tmp: Path, env: dict[str, str]) -> tuple[Path, Path]:
    """The sender's and the listener's homes, each trusting the other's key card."""
    fr, nl = tmp / "fr", tmp / "nl"
    op7(fr, env, "keys", "new", "FR.GN")
    op7(nl, env, "keys", "new", "NL.NCC")
    op7(fr, env, "keys", "trust", str(nl / "keys" / "NL.NCC.pub"))
    op7(nl, env, "keys", "trust", str(fr / "keys" / "FR.GN.pub"))
    return fr, nl


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def scrape(port: int) -> dict[str, Any]:
    """What the listener's endpoint says: handled, refused, lag (sum and largest partition)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
        text = answer.read().decode()
    handled = refused = 0.0
    lags: list[float] = []
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == "op7_messages_handled_total":
                handled += s.value
            elif s.name == "op7_messages_refused_total":
                refused += s.value
            elif s.name == "op7_consumer_lag":
                lags.append(s.value)
    return {
        "handled": int(handled),
        "refused": int(refused),
        "lag": int(sum(lags)),
        "lag_max_partition": max(lags, default=0),
    }


def proc_sample(pid: int) -> dict[str, Any]:
    """The listener's resident size (MB), open files and CPU seconds, from /proc."""
    rss = 0.0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) / 1024
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rpartition(")")[2].split()
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime
    return {"rss_mb": round(rss, 1), "fds": len(os.listdir(f"/proc/{pid}/fd")), "cpu_s": round(cpu, 2)}


async def send(transport: Transport, fr: Path, prefix: str, rate: float, seconds: float, size: int) -> dict[str, Any]:
    """One alert per slot of ``1/rate`` s for ``seconds``, signed with FR.GN's key as ``Node.publish`` signs it and
    written to the alerts topic by the transport (keyed by case, as a node writes it). The node's outbox is left out:
    this side only makes the load, and what is measured is the listener."""
    identity = Home(fr).identity("FR.GN")
    count = int(rate * seconds)
    topic, sent, failed = TopicLayout(prefix).name(ALERTS), 0, 0
    pending: set[asyncio.Future[Any]] = set()

    def settled(done: asyncio.Future[Any]) -> None:
        nonlocal sent, failed
        pending.discard(done)
        if done.exception() is None:
            sent += 1
            return
        failed += 1
        if failed <= 3:
            print(f"  a send failed: {done.exception()}", flush=True)

    async with transport:
        t0 = time.perf_counter()
        base = alert_of_size(size)
        for i in range(count):
            if i % int(rate * 30 or 1) == 0:
                base = alert_of_size(size)  # sent now: an alert's sent_at stays fresh however long the soak
            delay = t0 + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            alert = stamped(base, i, time.time_ns())
            _, frame = build(identity, alert, now=now())
            try:
                sending = asyncio.ensure_future(await transport.send_soon(topic, frame, key=alert.case_id.encode()))
            except Exception as exc:  # the cluster refused at once: counted, and the soak goes on
                failed += 1
                if failed <= 3:
                    print(f"  send {i} failed: {exc}", flush=True)
                continue
            pending.add(sending)
            sending.add_done_callback(settled)
        elapsed = time.perf_counter() - t0
        if pending:
            await asyncio.wait(pending, timeout=CATCH_UP)
        unacknowledged = len(pending)
    result = {"sent": sent, "failed": failed, "unacknowledged": unacknowledged, "seconds": round(elapsed, 1)}
    return result | {"msg_per_s": round(sent / elapsed, 1)}


async def watch(pid: int, port: int, every: float, into: list[dict[str, Any]], t0: float) -> None:
    """Sample the listener every ``every`` seconds until cancelled."""
    while True:
        sample = {"t": round(time.perf_counter() - t0, 1)} | proc_sample(pid)
        try:
            sample |= await asyncio.to_thread(scrape, port)
        except OSError as exc:  # the endpoint not up yet, or busy beyond the timeout
            sample["scrape_error"] = str(exc)
        into.append(sample)
        await asyncio.sleep(every)


def slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of ``(x, y)`` points (y per x); 0 with fewer than two."""
    if len(points) < 2:
        return 0.0
    n = len(points)
    mx, my = sum(x for x, _ in points) / n, sum(y for _, y in points) / n
    var = sum((x - mx) ** 2 for x, _ in points)
    return sum((x - mx) * (y - my) for x, y in points) / var if var else 0.0


def summary(samples: list[dict[str, Any]], sent: dict[str, Any], seconds: float) -> dict[str, Any]:
    """RSS first against last minute and its slope after the first minute, open files, lag, counts."""
    first = [s["rss_mb"] for s in samples if s["t"] <= 60]
    last = [s["rss_mb"] for s in samples if seconds - 60 <= s["t"] <= seconds]
    settled = [(s["t"] / 60, s["rss_mb"]) for s in samples if 60 < s["t"] <= seconds]
    scraped = [s for s in samples if "handled" in s]
    final = scraped[-1] if scraped else {}
    start = scraped[0] if scraped else {}  # the listener is up: its start (imports, joining the group) is left out
    cpu, handled = final.get("cpu_s", 0.0) - start.get("cpu_s", 0.0), final.get("handled", 0) - start.get("handled", 0)
    return {
        "rss_mb_first_minute": round(sum(first) / len(first), 1) if first else None,
        "rss_mb_last_minute": round(sum(last) / len(last), 1) if last else None,
        "rss_mb_max": max(s["rss_mb"] for s in samples),
        "rss_mb_per_minute_after_the_first": round(slope(settled), 3),
        "fds_first": samples[0]["fds"],
        "fds_last": samples[-1]["fds"],
        "fds_max": max(s["fds"] for s in samples),
        "lag_max": max((s["lag"] for s in scraped), default=None),
        "lag_last": final.get("lag"),
        "handled": final.get("handled"),
        "refused": final.get("refused"),
        "sent": sent["sent"],
        "send_failed": sent["failed"],
        "listener_cpu_us_per_message": round(cpu / handled * 1e6) if handled > 0 else None,
    }


def start_listener(env: dict[str, str], port: int) -> subprocess.Popen[str]:
    """``op7 alerts listen`` as NL.NCC with its metrics on ``port``, its messages to /dev/null."""
    argv = [sys.executable, "-m", "broker.cli", "alerts", "listen", "--as", "NL.NCC", "--json"]
    return subprocess.Popen(  # noqa: S603 (this very program)
        [*argv, "--metrics-port", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )


def caught_up(samples: list[dict[str, Any]], sent: int) -> bool:
    """Whether the last sample shows every sent alert handled or refused."""
    last = samples[-1] if samples else {}
    return bool(last.get("handled", 0) + last.get("refused", 0) >= sent)


async def soak(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    prefix, load = f"op7soak-{uuid.uuid4().hex[:8]}", os.getloadavg()
    env = {k: v for k, v in os.environ.items() if not k.startswith("OP7_")} | {"OP7_TOPIC_PREFIX": prefix}
    env |= {"OP7_EMBEDDED_PATH": str(tmp / "embedded.db")} if args.embedded else {"OP7_BOOTSTRAP": args.bootstrap}
    fr, nl = homes(tmp, env)
    op7(nl, env, "topics", "create")
    port = free_port()
    listener = start_listener(env | {"OP7_HOME": str(nl)}, port)
    samples: list[dict[str, Any]] = []
    seconds = args.minutes * 60
    transport: Transport = (
        EmbeddedTransport(tmp / "embedded.db") if args.embedded else KafkaTransport(bootstrap_servers=args.bootstrap)
    )
    t0 = time.perf_counter()
    sampler = asyncio.create_task(watch(listener.pid, port, args.every, samples, t0))
    try:
        print(f"sending {args.rate:g} alerts/s of {args.size} B for {args.minutes:g} min to {prefix} ...", flush=True)
        sent = await send(transport, fr, prefix, args.rate, seconds, args.size)
        for _ in range(int(CATCH_UP)):
            if caught_up(samples, sent["sent"]):
                break
            await asyncio.sleep(1)
    finally:
        sampler.cancel()
        listener.send_signal(signal.SIGINT)
        _, err = await asyncio.to_thread(listener.communicate, timeout=60)
        if not args.embedded:
            await procs.delete_topics(args.bootstrap, prefix)
    return {
        "when": now().isoformat(timespec="seconds"),
        "options": {k: v for k, v in vars(args).items() if k != "out"},
        "machine": {"cpus": os.cpu_count(), "load_average_at_start": load, "load_average_at_end": os.getloadavg()},
        "listener_exit": listener.returncode,
        "listener_stderr_tail": err.strip().splitlines()[-5:],
        "sending": sent,
        "summary": summary(samples, sent, seconds),
        "samples": samples,
    }


def report(result: dict[str, Any]) -> None:
    s, o, machine = result["summary"], result["options"], result["machine"]
    where = "embedded" if o["embedded"] else f"Kafka {o['bootstrap']}"
    load = f"{machine['load_average_at_start'][0]:.1f} at the start, {machine['load_average_at_end'][0]:.1f} at the end"
    print(
        f"soak: {o['rate']:g} msg/s for {o['minutes']:g} min ({where}); load average {load} on {machine['cpus']} cores"
    )
    print(
        f"  sent {s['sent']} ({s['send_failed']} failed) at {result['sending']['msg_per_s']} msg/s; "
        f"the listener handled {s['handled']}, refused {s['refused']}"
    )
    print(
        f"  resident memory: first minute {s['rss_mb_first_minute']} MB, last minute {s['rss_mb_last_minute']} MB, "
        f"max {s['rss_mb_max']} MB; after the first minute {s['rss_mb_per_minute_after_the_first']:+.3f} MB/min"
    )
    print(f"  open files: first {s['fds_first']}, last {s['fds_last']}, max {s['fds_max']}")
    print(f"  lag (records not handled yet): max {s['lag_max']}, last {s['lag_last']}")
    print(f"  listener CPU: {s['listener_cpu_us_per_message']} us per message")


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--bootstrap", default=os.environ.get("OP7_BENCH_BOOTSTRAP", "127.0.0.1:9092"))
    parser.add_argument("--embedded", action="store_true", help="the embedded transport instead of Kafka")
    parser.add_argument("--rate", type=float, default=200.0, help="alerts per second")
    parser.add_argument("--minutes", type=float, default=5.0, help="how long the alerts are sent")
    parser.add_argument("--every", type=float, default=5.0, help="seconds between two samples")
    parser.add_argument("--size", type=int, default=1024, help="bytes of each alert's frame")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "soak.json")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse(argv)
    logging.getLogger("op7.home").setLevel(logging.ERROR)  # the homes' keys are unprotected: they live for this run
    with tempfile.TemporaryDirectory(prefix="op7-soak-") as tmp:
        result = asyncio.run(soak(args, Path(tmp)))
    args.out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    report(result)
    return result


if __name__ == "__main__":
    main()
