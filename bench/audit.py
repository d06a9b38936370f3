"""The auditor's consumer beside the node's, on the same records of one Kafka broker, in one run.

    python3 bench/audit.py [--bootstrap HOST:PORT] [--messages N] [--alone N] [--sealed N] [--rounds N]
                           [--stores sqlite,postgresql] [--postgres URL] [--profile-records N] [--out bench/audit.json]

A directory network (one authority, one signed version, its anchor taken from it) lists two senders. Under a topic
prefix of the run's own, FR.GN (the key of the node benchmark's sender) publishes ``--messages`` stamped alerts of
``--size`` bytes, all but ``--alone`` of them with ``Node.publish_batch``, those one at a time with ``Node.publish``;
ES.PN publishes ``--sealed`` mutual legal assistance requests to FR.GN, each sealed to its inbox; the directory
version is on the directory topic. Then, each round, one process after the other drains the same records:

- the node: ``bench/procs.py``'s consumer (``Subscription.run`` over the alerts, as ``bench/run.py`` measures it);
- the auditor: ``Auditor.run(once=True)`` over every topic of the network into a new SQLite file, then into a new
  PostgreSQL schema (``--postgres``, else $OP7_BENCH_POSTGRES, else ``scripts/postgres url``; skipped, and said so,
  without a server), its judge, store, fetches, commits and checkpoints timed.

Each rate runs from the first handled record to the last (start-up and the wait at the end left out). Afterwards,
in-process and without a network: the node's ``Subscription.run`` per message (``bench/stages.py``), and the
auditor's judge and SQLite append over records of the log, profiled. Writes JSON; ``bench/write_doc.py`` renders it
into docs/PERFORMANCE.md. Nothing here is a test.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import inspect
import json
import os
import platform
import pstats
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import closing, contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402

from bench import procs  # noqa: E402
from bench.run import _one  # noqa: E402
from bench.stages import SEED, alert_of_size, node_stage_row, now, stage_row, stamped  # noqa: E402
from broker.audit.auditor import Auditor  # noqa: E402
from broker.audit.entry import Entry  # noqa: E402
from broker.audit.history import DirectoryHistory  # noqa: E402
from broker.audit.judge import Judge  # noqa: E402
from broker.audit.store import open_store  # noqa: E402
from broker.clock import default_clock  # noqa: E402
from broker.models import MutualLegalAssistanceRequest  # noqa: E402
from broker.models.directory import Role  # noqa: E402
from broker.node.node import Node  # noqa: E402
from broker.node.topics import TopicLayout  # noqa: E402
from broker.transport.base import Consumer, Record  # noqa: E402
from broker.transport.kafka import KafkaSettings, KafkaTransport  # noqa: E402
from broker.trust import admin  # noqa: E402
from broker.trust.directory import DirectoryAnchor, DirectoryDocument, DirectoryTrust  # noqa: E402
from broker.trust.store import PublicKeyCard  # noqa: E402
from broker.wire.envelope import NodeIdentity  # noqa: E402
from broker.wire.signing import EncryptionKey, SigningKey  # noqa: E402

NETWORK = "op7-bench"
#: The second sender's key; FR.GN signs with the node benchmark's key (:data:`bench.stages.SEED`), which the node's
#: consumer there trusts.
SECOND_SEED = bytes(range(1, 33))
AUDITOR = "NL.AUDIT"
#: Records per append in the in-process measurement: what one fetch of the auditor holds at most.
CHUNK = 500


def kafka(bootstrap: str) -> KafkaTransport:
    return KafkaTransport(KafkaSettings(bootstrap_servers=bootstrap, client_id="op7-bench-audit"))


# --- the network ----------------------------------------------------------------------------------------------


def directory() -> bytes:
    """Version 1 of the bench network's directory, signed by its one authority (threshold 1): FR.GN and ES.PN, each
    allowed every type, their keys valid from an hour ago (before anything the run signs)."""
    at = now() - timedelta(hours=1)
    authority = SigningKey.generate()
    signed = admin.create(NETWORK, 1, [PublicKeyCard("NL.NA", authority.public)], now=at)
    for node, seed in (("FR.GN", SEED), ("ES.PN", SECOND_SEED)):
        card = PublicKeyCard(node, SigningKey.from_seed(seed).public, EncryptionKey.generate().public)
        signed = admin.add_node(signed, card, "Agency", [Role.NATIONAL_NODE], ["all"], now=at)
    return DirectoryDocument(admin.sign(signed, authority)).to_bytes()


def anchor(data: bytes) -> DirectoryAnchor:
    """The network's anchor: its first version's authorities and threshold (installed out of band in a network)."""
    return DirectoryAnchor.of(DirectoryDocument.from_bytes(data).directory)


def sender(bootstrap: str, prefix: str, data: bytes, node: str, seed: bytes) -> Node:
    """A node of the network that signs as ``node``, holding the directory ``data``."""
    trust = DirectoryTrust(anchor(data))
    trust.offer(DirectoryDocument.from_bytes(data).signed, now())
    identity = NodeIdentity(node, SigningKey.from_seed(seed), NETWORK)
    return Node(kafka(bootstrap), trust, identity, topic_prefix=prefix, follow_directory=False)


def request(index: int) -> MutualLegalAssistanceRequest:
    """The example request, sent by ES.PN to FR.GN (TLP:RED: a directed copy is always sealed)."""
    data = json.loads((ROOT / "examples" / "mla-request.json").read_text())
    spanish, french = data["requested_authority"], data["requesting_authority"]
    at = now()
    data |= {"sent_at": at, "issuer": spanish, "requesting_authority": spanish, "requested_authority": french}
    data["case_id"] = f"ES-PN-2026-{index:06d}"
    return MutualLegalAssistanceRequest.model_validate(data, context={"now": at})


async def fill(cfg: dict[str, Any]) -> dict[str, Any]:
    """Write the backlog: the directory version, FR.GN's alerts (batched, then alone), ES.PN's sealed requests."""
    bootstrap, prefix, count, alone = cfg["bootstrap"], cfg["prefix"], cfg["count"], cfg["alone"]
    base = alert_of_size(cfg["size"])
    started = time.perf_counter()
    fr = sender(bootstrap, prefix, cfg["directory"], "FR.GN", SEED)
    es = sender(bootstrap, prefix, cfg["directory"], "ES.PN", SECOND_SEED)
    async with fr, es:
        signed = DirectoryDocument.from_bytes(cfg["directory"]).signed
        await fr.publish_directory(signed, NETWORK, 1)
        batched = count - alone
        for first in range(0, batched, cfg["batch"]):
            await fr.publish_batch([stamped(base, i, 0) for i in range(first, min(first + cfg["batch"], batched))])
        # Several in flight at once, as a node's callers would have them (each waits for its acknowledgement).
        for first in range(batched, count, 50):
            await asyncio.gather(*(fr.publish(stamped(base, i, 0)) for i in range(first, min(first + 50, count))))
        for first in range(0, cfg["sealed"], 50):
            await asyncio.gather(*(es.publish(request(i)) for i in range(first, min(first + 50, cfg["sealed"]))))
    return {
        "alerts": count,
        "alerts_batched": batched,
        "alerts_alone": alone,
        "sealed_requests": cfg["sealed"],
        "records": count + cfg["sealed"] + 1,
        "frame_bytes": cfg["size"],
        "seconds": time.perf_counter() - started,
    }


# --- the auditor's consumer, in its own process ----------------------------------------------------------------


class Stopwatch:
    """Wall seconds (and CPU seconds of the calling thread, for functions) spent in timed methods, by stage, from the
    first records read on (not the start-up): each method is replaced on its instance by a timed wrapper."""

    def __init__(self) -> None:
        self.wall: dict[str, float] = {}
        self.cpu: dict[str, float] = {}
        self.started = False

    def add(self, stage: str, wall: float, cpu: float | None) -> None:
        if not self.started:
            return
        self.wall[stage] = self.wall.get(stage, 0.0) + wall
        if cpu is not None:
            self.cpu[stage] = self.cpu.get(stage, 0.0) + cpu

    def wrap(self, obj: object, method: str, stage: str, idle: str | None = None, starts: bool = False) -> None:
        """Time ``obj.method`` as ``stage``; a coroutine's empty result as ``idle`` (a fetch that found nothing);
        with ``starts``, its first result that is not empty starts the count."""
        original = getattr(obj, method)
        if inspect.iscoroutinefunction(original):

            async def timed_coroutine(*args: Any, **kwargs: Any) -> Any:
                t = time.perf_counter()
                result = await original(*args, **kwargs)
                self.started = self.started or (starts and bool(result))
                # The event loop runs other tasks while this one waits: wall time only.
                self.add(idle if idle and not result else stage, time.perf_counter() - t, None)
                return result

            setattr(obj, method, timed_coroutine)
            return

        def timed(*args: Any, **kwargs: Any) -> Any:
            t, c = time.perf_counter(), time.thread_time()
            result = original(*args, **kwargs)
            self.add(stage, time.perf_counter() - t, time.thread_time() - c)
            return result

        setattr(obj, method, timed)


class Window:
    """When the auditor logged each batch: the measured window runs from the first batch logged to the last."""

    def __init__(self) -> None:
        self.batches: list[tuple[float, float, int]] = []

    def saw(self, entries: list[Entry]) -> None:
        self.batches.append((time.perf_counter(), time.process_time(), len(entries)))

    def result(self) -> dict[str, Any]:
        if len(self.batches) < 2:
            raise RuntimeError(f"the auditor logged {len(self.batches)} batches: too few to time a rate")
        (t0, c0, n0), (t1, c1, _) = self.batches[0], self.batches[-1]
        counted = sum(n for _, _, n in self.batches) - n0
        return {
            "logged": counted + n0,
            "seconds": t1 - t0,
            "msg_per_s": counted / (t1 - t0),
            "cpu_us_per_msg": (c1 - c0) / counted * 1e6,
        }


def audit_consumer(cfg: dict[str, Any], out: Any) -> None:
    out.put(asyncio.run(_audit(cfg)))


async def _audit(cfg: dict[str, Any]) -> dict[str, Any]:
    transport = kafka(cfg["bootstrap"])
    watch, window = Stopwatch(), Window()
    directory_topic = TopicLayout(cfg["prefix"]).name("directory")
    consumer_of = transport.consumer

    def timed_consumer(topics: list[str], group: str, *, from_beginning: bool = True) -> Consumer:
        consumer = consumer_of(topics, group, from_beginning=from_beginning)
        if list(topics) == [directory_topic]:
            watch.wrap(consumer, "fetch", "directory")  # polled once a loop, for versions published meanwhile
        else:
            watch.wrap(consumer, "fetch", "fetch", idle="idle", starts=True)  # idle: at the end, making sure
        watch.wrap(consumer, "commit_many", "commit")
        return consumer

    setattr(transport, "consumer", timed_consumer)  # noqa: B010 (an instance's method, replaced)
    with closing(open_store(cfg["store"])) as store:
        identity = NodeIdentity(AUDITOR, SigningKey.generate(), NETWORK)
        history = DirectoryHistory(anchor(cfg["directory"]))
        auditor = Auditor(transport, store, history, identity, default_clock(), layout=TopicLayout(cfg["prefix"]))
        auditor.on_entries = window.saw
        watch.wrap(auditor.judge, "draft", "judge")
        watch.wrap(store, "append", "store")
        watch.wrap(auditor, "checkpoint", "checkpoint")
        started = time.perf_counter()
        async with transport:
            stats = await auditor.run(once=True)
        whole, records = time.perf_counter() - started, max(1, stats.read)
    return window.result() | {
        "read": stats.read,
        "refused": stats.refused,
        "checkpoints": len(stats.checkpoints),
        "run_seconds": whole,
        "stages": {
            stage: {
                "wall_us_per_record": watch.wall[stage] / records * 1e6,
                **({"cpu_us_per_record": watch.cpu[stage] / records * 1e6} if stage in watch.cpu else {}),
            }
            for stage in sorted(watch.wall, key=lambda s: -watch.wall[s])
        },
    }


# --- PostgreSQL -----------------------------------------------------------------------------------------------


def postgres_server(given: str | None) -> tuple[str | None, str]:
    """The PostgreSQL server's URL, or None and why there is none: ``given``, else $OP7_BENCH_POSTGRES, else what
    ``scripts/postgres url`` prints; one that does not answer counts as none."""
    url = given or os.environ.get("OP7_BENCH_POSTGRES")
    if not url:
        done = subprocess.run(  # noqa: S603 (the repository's own script)
            [str(ROOT / "scripts" / "postgres"), "url"], capture_output=True, text=True, check=False
        )
        if done.returncode != 0 or not done.stdout.strip():
            return None, f"no server: `scripts/postgres url` said {done.stderr.strip() or 'nothing'}"
        url = done.stdout.strip()
    try:
        psycopg.connect(url, connect_timeout=5).close()
    except psycopg.Error as exc:
        return None, f"the server does not answer: {str(exc).strip().splitlines()[0]}"
    return url, ""


@contextmanager
def postgres_schema(url: str) -> Iterator[str]:
    """The URL of a new, empty evidence store: a schema of its own on the server (its ``search_path``), dropped at
    the end."""
    schema = f"bench_audit_{uuid.uuid4().hex[:12]}"
    with closing(psycopg.connect(url, autocommit=True)) as db:
        db.execute("SET lock_timeout = '30s'")  # a store left open would hold its locks: fail rather than wait
        db.execute(f"CREATE SCHEMA {schema}")
        try:
            separator = "&" if "?" in url else "?"
            yield f"{url}{separator}options={quote(f'-csearch_path={schema}', safe='')}"
        finally:
            db.execute(f"DROP SCHEMA {schema} CASCADE")


# --- a round, and what the auditor spends in-process -----------------------------------------------------------


def one_round(cfg: dict[str, Any], stores: list[str], postgres: str | None, tmp: Path, n: int) -> dict[str, Any]:
    """The node's consumer and the auditor into each store, one after the other over the same records (the node
    first in the first round, last in the second, and so on, so that a drift of the machine's load favours neither);
    the auditor's rate against the node's."""
    drains = ["node", *(s for s in stores if s == "sqlite" or postgres is not None)]
    result: dict[str, Any] = {}
    for drain in drains if n % 2 == 0 else drains[::-1]:
        if drain == "node":
            print(f"round {n + 1}: the node drains {cfg['count']:,} alerts ...", flush=True)
            replay = str(tmp / f"replay-{n}.db")
            node = _one(procs.node_consumer, cfg | {"group": f"{cfg['prefix']}-node-{n}", "replay": replay})
            result["node"] = {k: node[k] for k in ("seconds", "msg_per_s", "cpu_us_per_msg", "missing", "repeated")}
            continue
        print(f"round {n + 1}: the auditor logs every record into {drain} ...", flush=True)
        if drain == "sqlite":
            result[drain] = _one(audit_consumer, cfg | {"store": str(tmp / f"evidence-{n}.db")})
        else:
            assert postgres is not None
            with postgres_schema(postgres) as url:
                result[drain] = _one(audit_consumer, cfg | {"store": url})
        if result[drain]["read"] != cfg["records"] or result[drain]["refused"]:
            raise RuntimeError(
                f"the auditor read {result[drain]['read']} of {cfg['records']} records and refused "
                f"{result[drain]['refused']}: it did not log the backlog as written"
            )
    for drain in drains[1:]:
        result[drain]["ratio_to_node"] = result[drain]["msg_per_s"] / result["node"]["msg_per_s"]
    return result


def records_of(path: Path, n: int) -> list[Record]:
    """About ``n`` records as the auditor read them, taken evenly across the SQLite log at ``path``."""
    with closing(open_store(str(path))) as store:
        step = max(1, store.size() // n)
        return [
            Record(e.topic, e.partition, e.offset, e.key, e.value, e.record_ms)
            for i, e in enumerate(store.entries())
            if i % step == 0
        ]


def in_process(cfg: dict[str, Any], log: Path, n: int, tmp: Path) -> dict[str, Any]:
    """CPU microseconds per record, one thread, no network: the auditor's judge and its SQLite append over records
    of the log, each then profiled; the node's ``Subscription.run`` per message beside them."""
    records = records_of(log, n)
    history = DirectoryHistory(anchor(cfg["directory"]))
    history.offer(cfg["directory"])  # as the auditor takes it from the directory topic before it reads the others
    judge = Judge(history, TopicLayout(cfg["prefix"]))
    cpu = time.process_time()
    drafts = [judge.draft(r) for r in records]
    judged = (time.process_time() - cpu) / len(records) * 1e6
    refused = [d for d in drafts if d.outcome != "verified"]
    if refused:
        raise RuntimeError(f"{len(refused)} of {len(drafts)} records refused in-process, e.g. {refused[0].detail}")
    profiler = cProfile.Profile()
    with profiler:
        for r in records:
            judge.draft(r)
    judge_profile = procs.profile_summary(pstats.Stats(profiler), len(records))
    with closing(open_store(str(tmp / "in-process.db"))) as store:
        cpu = time.process_time()
        for first in range(0, len(drafts), CHUNK):
            store.append(drafts[first : first + CHUNK], now())
        appended = (time.process_time() - cpu) / len(drafts) * 1e6
    with closing(open_store(str(tmp / "in-process-profiled.db"))) as store, cProfile.Profile() as profiler:
        for first in range(0, len(drafts), CHUNK):
            store.append(drafts[first : first + CHUNK], now())
    node = node_stage_row(cfg["size"], len(records))
    return {
        "records": len(records),
        "judge_cpu_us": judged,
        "append_sqlite_cpu_us": appended,
        "node_subscription_run_cpu_us": node["subscription_run_cpu"],
        "judge_profile": judge_profile,
        "append_profile": procs.profile_summary(pstats.Stats(profiler), len(drafts)),
    }


# --- the run --------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse(argv)
    started = time.perf_counter()
    postgres, why = postgres_server(args.postgres) if "postgresql" in args.stores else (None, "not asked for")
    if "postgresql" in args.stores and postgres is None:
        if args.stores == ["postgresql"]:
            raise SystemExit(f"nothing to measure: PostgreSQL is the only store asked for, and {why}")
        print(f"PostgreSQL skipped: {why}", flush=True)
    prefix = f"op7bench-audit-{uuid.uuid4().hex[:8]}"
    cfg: dict[str, Any] = {"bootstrap": args.bootstrap, "prefix": prefix, "count": args.messages}
    cfg |= {"alone": args.alone, "sealed": args.sealed, "size": args.size, "batch": args.batch}
    cfg["directory"] = directory()
    results: dict[str, Any] = {
        "when": now().isoformat(timespec="seconds"),
        "options": {k: v for k, v in vars(args).items() if k not in ("out", "postgres", "bootstrap")},
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "postgresql": {"used": postgres is not None, "why_not": why},
    }
    results["machine"]["load_average_at_start"] = os.getloadavg()
    results["machine"]["verify_primitive_us"] = stage_row(args.size, 1000)["verify_primitive"]
    try:
        print(f"writing the backlog under {prefix} ...", flush=True)
        results["backlog"] = asyncio.run(fill(cfg))
        cfg["records"] = results["backlog"]["records"]
        with tempfile.TemporaryDirectory(prefix="op7-bench-audit-") as tmp:
            results["rounds"] = [one_round(cfg, args.stores, postgres, Path(tmp), n) for n in range(args.rounds)]
            results["summary"] = summary(results["rounds"])
            if args.profile_records and "sqlite" in args.stores:
                print(f"in-process costs over {args.profile_records:,} records ...", flush=True)
                results["in_process"] = in_process(cfg, Path(tmp) / "evidence-0.db", args.profile_records, Path(tmp))
    finally:
        asyncio.run(procs.delete_topics(args.bootstrap, prefix))
    results["machine"]["load_average_at_end"] = os.getloadavg()
    results["seconds"] = time.perf_counter() - started
    args.out.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    report(results)
    return results


def summary(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Over the rounds: the medians of each drain's rate, CPU per record and busy share of one core; the auditor's
    rate against the node's (median, lowest, highest) per store; the mean cost of each of its stages per record."""

    def medians(runs: list[dict[str, Any]]) -> dict[str, float]:
        return {
            "msg_per_s": statistics.median(x["msg_per_s"] for x in runs),
            "cpu_us_per_msg": statistics.median(x["cpu_us_per_msg"] for x in runs),
            "busy": statistics.median(x["cpu_us_per_msg"] * x["msg_per_s"] / 1e6 for x in runs),
        }

    out: dict[str, Any] = {"node": medians([r["node"] for r in rounds])}
    for kind in ("sqlite", "postgresql"):
        runs = [r[kind] for r in rounds if kind in r]
        if not runs:
            continue
        ratios = [x["ratio_to_node"] for x in runs]
        stages: dict[str, dict[str, float]] = {}
        for stage in {s for x in runs for s in x["stages"]}:
            having = [x["stages"][stage] for x in runs if stage in x["stages"]]
            stages[stage] = {"wall_us": statistics.mean(h["wall_us_per_record"] for h in having)}
            if "cpu_us_per_record" in having[0]:
                stages[stage]["cpu_us"] = statistics.mean(h["cpu_us_per_record"] for h in having)
        out[kind] = medians(runs) | {
            "ratio_median": statistics.median(ratios),
            "ratio_lowest": min(ratios),
            "ratio_highest": max(ratios),
            "stages": stages,
        }
    return out


def report(results: dict[str, Any]) -> None:
    summary, node = results["summary"], results["summary"]["node"]
    print(f"node: {node['msg_per_s']:,.0f} msg/s, {node['cpu_us_per_msg']:.0f} us CPU/msg (medians of the rounds)")
    for kind, s in ((k, summary[k]) for k in ("sqlite", "postgresql") if k in summary):
        print(
            f"auditor, {kind}: {s['msg_per_s']:,.0f} msg/s, {s['cpu_us_per_msg']:.0f} us CPU/msg; auditor / node "
            f"x{s['ratio_median']:.2f} ({s['ratio_lowest']:.2f} to {s['ratio_highest']:.2f})"
        )
    if not results["postgresql"]["used"]:
        print(f"PostgreSQL skipped: {results['postgresql']['why_not']}")
    print(f"the whole run took {results['seconds']:.0f} s")


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--bootstrap", default=os.environ.get("OP7_BENCH_BOOTSTRAP", "127.0.0.1:9092"))
    parser.add_argument("--messages", type=int, default=20_000, help="alerts in the backlog")
    parser.add_argument("--alone", type=int, default=1_000, help="of those, alerts signed alone (Node.publish)")
    parser.add_argument("--sealed", type=int, default=100, help="sealed requests to an inbox, from the second sender")
    parser.add_argument("--size", type=int, default=1024, help="bytes of each alert's frame")
    parser.add_argument("--batch", type=int, default=200, help="alerts per Node.publish_batch call")
    parser.add_argument("--rounds", type=int, default=3, help="times the node and the auditor drain the backlog")
    parser.add_argument(
        "--stores",
        type=lambda v: [s.strip() for s in v.split(",")],
        default=["sqlite", "postgresql"],
        help="evidence stores to fill: sqlite, postgresql",
    )
    parser.add_argument("--postgres", metavar="URL", help="PostgreSQL server (a schema of the run's own is made)")
    parser.add_argument("--profile-records", type=int, default=5_000, help="records judged and appended in-process")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "audit.json")
    args = parser.parse_args(argv)
    unknown = set(args.stores) - {"sqlite", "postgresql"}
    if unknown or not args.stores:
        parser.error(f"--stores: sqlite and/or postgresql, not {', '.join(sorted(unknown)) or 'nothing'}")
    if not 0 <= args.alone <= args.messages or args.messages < 2 or args.rounds < 1:
        parser.error("--messages must be at least 2, --alone between 0 and --messages, --rounds at least 1")
    return args


if __name__ == "__main__":
    main()
