"""Rewrite docs/PERFORMANCE.md from bench/results.json (and bench/soak.json and bench/audit.json, when those
benchmarks were run), so that the document always shows measured figures.

python3 bench/write_doc.py [RESULTS.json [OUT.md [SOAK.json [AUDIT.json]]]]  (scripts/bench runs it after the benchmark)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
STAGES = [
    ("encode", "Avro encode (model -> bytes)"),
    ("sign", "Ed25519 sign (libsodium)"),
    ("build_single", "whole frame, signed alone"),
    ("build_batched_100", "whole frame, signed in a batch of 100"),
    ("verify_primitive", "Ed25519 verify, the raw primitive"),
    ("verify_signature_op7", "op7 signature check (parse, key lookup, verify)"),
    ("verify_frame_op7", "op7 frame check (+ header decode, key window)"),
    ("decode", "Avro decode + validation (bytes -> model)"),
    ("open_frame_op7", "op7 verify, decode and check, in all (`open_frame`)"),
]
NODE_STAGES = [
    ("replay_remember", "replay store write (`ReplayGuard.remember`, file), CPU / wall"),
    ("subscription_run", "`Subscription.run` per message (file replay store, no-op commits), CPU / wall"),
]
#: Microseconds of the libsodium verify primitive on this machine when idle (runs of 2026-11-30).
IDLE_VERIFY_US = 41.0
PRODUCE = "`Node.publish_batch` (batches of {batch})"
CONSUME = "`node.subscribe(group, ['alerts']).run(handler)` with a file-backed `ReplayGuard` and its own commits"


def _met(ok: bool) -> str:
    return "**met**" if ok else "**not met**"


def _lat(d: dict[str, float]) -> str:
    return f"{d['p50']:.1f} / {d['p99']:.1f} / {d['p99.9']:.1f}"


def targets(r: dict[str, Any]) -> list[str]:
    t = r["throughput"].get("1024")
    rows = ["| target | measured | |", "|---|---|---|"]
    if t:
        rows.append(
            f"| consumer on the node path >= 0.25 of raw (1 KB) | {t['ratio_consumer']:.3f} | "
            f"{_met(t['ratio_consumer'] >= 0.25)} |"
        )
        rows.append(
            f"| producer with publish_batch >= 0.4 of raw (1 KB) | {t['ratio_producer']:.2f} | "
            f"{_met(t['ratio_producer'] >= 0.4)} |"
        )
    for label, margin in (("1/s", 2), ("100/s", 2), ("50%", 10)):
        row = r["latency"].get(label)
        if row:
            raw, op7 = row["raw"]["latency_ms"]["p99"], row["op7"]["latency_ms"]["p99"]
            load = label.replace("/s", " msg/s").replace("%", "% of saturation")
            rows.append(
                f"| single-alert p99 at {load} <= raw + {margin} ms | {op7:.1f} ms (raw {raw:.1f} ms) | "
                f"{_met(op7 <= raw + margin)} |"
            )
    flat, text = memory(r["drain"])
    rows.append(
        f"| resident memory flat while the node drains {r['drain']['messages']:,} (over its second half) | {text} "
        f"| {_met(flat)} |"
    )
    return rows


def memory(d: dict[str, Any]) -> tuple[bool, str]:
    """The drain's resident size at a few points, and whether it is flat: over the second half of the drain (after
    the buffers and caches have filled) it grows by at most 5% (and 2 MB)."""
    rss = [m for _, m in d["rss_mb"]]
    if not rss:
        return False, "no sample"
    n = len(rss)
    half, end = rss[n // 2], rss[-1]
    text = (
        f"start {rss[0]:.0f} MB, after a tenth {rss[n // 10]:.0f}, a quarter {rss[n // 4]:.0f}, half {half:.0f}, "
        f"end {end:.0f}, peak {max(rss):.0f} MB"
    )
    return max(rss[n // 2 :]) <= half * 1.05 + 2, text


def throughput(r: dict[str, Any]) -> list[str]:
    rows = [
        "| frame | producer raw | producer op7 | op7 / raw | consumer raw | consumer op7 | op7 / raw "
        "| CPU us/msg producer raw / op7 | CPU us/msg consumer raw / op7 | op7 consumer: missing / repeated |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for size, t in r["throughput"].items():
        raw, op7 = t["raw"], t["op7"]
        rows.append(
            f"| {size} B | {raw['producer']['msg_per_s']:,.0f} | {op7['producer']['msg_per_s']:,.0f} | "
            f"{t['ratio_producer']:.2f} | {raw['consumer']['msg_per_s']:,.0f} | {op7['consumer']['msg_per_s']:,.0f} | "
            f"{t['ratio_consumer']:.3f} | {raw['producer']['cpu_us_per_msg']:.0f} / "
            f"{op7['producer']['cpu_us_per_msg']:.0f} | {raw['consumer']['cpu_us_per_msg']:.0f} / "
            f"{op7['consumer']['cpu_us_per_msg']:.0f} | {op7['consumer']['missing']} / {op7['consumer']['repeated']} |"
        )
    return rows


def latency(r: dict[str, Any]) -> list[str]:
    rows = [
        "| load | rate msg/s (op7 sent at) | raw p50 / p99 / p99.9 ms | op7 p50 / p99 / p99.9 ms | op7 p99 - raw p99 "
        "| alerts | op7 missing / repeated |",
        "|---|---|---|---|---|---|---|",
    ]
    for label, row in r["latency"].items():
        raw, op7 = row["raw"], row["op7"]
        load = f"{label} of op7's saturation" if label.endswith("%") else label.replace("/s", " msg/s")
        rows.append(
            f"| {load} | {op7['rate_msg_per_s']:,.0f} ({op7['sent_msg_per_s']:,.0f}) | {_lat(raw['latency_ms'])} | "
            f"{_lat(op7['latency_ms'])} | {op7['latency_ms']['p99'] - raw['latency_ms']['p99']:+.1f} ms | "
            f"{row.get('alerts', '')} | {op7['missing']} / {op7['repeated']} |"
        )
    return rows


def stages(r: dict[str, Any]) -> list[str]:
    st, node = r["stages_cpu_us"], r.get("node_stages_us", {})
    sizes = list(st)
    rows = ["| stage (us per message) | " + " | ".join(f"{s} B" for s in sizes) + " |", "|---" * (len(sizes) + 1) + "|"]
    rows += [f"| {label} | " + " | ".join(f"{st[s][k]:.1f}" for s in sizes) + " |" for k, label in STAGES]
    for k, label in NODE_STAGES:
        cells = [f"{node[s][k + '_cpu']:.1f} / {node[s][k + '_wall']:.1f}" if s in node else "" for s in sizes]
        rows.append(f"| {label} | " + " | ".join(cells) + " |")
    cells = [f"{node[s]['commit_requests_per_msg']:.3f}" if s in node else "" for s in sizes]
    rows.append("| offset commit requests per message in `Subscription.run` | " + " | ".join(cells) + " |")
    return rows


def profile_table(prof: dict[str, Any], top: int = 8) -> list[str]:
    rows = ["| where (own time) | share | us per message |", "|---|---|---|"]
    rows += [f"| {p['package']} | {p['share']:.0%} | {p['us_per_msg']:.1f} |" for p in prof["by_package"][:top]]
    rows += ["", "| function (by own time) | calls | own us per message | cumulative s |", "|---|---|---|---|"]
    rows += [
        f"| `{f['function']}` | {f['calls']:,} | {f['own_us_per_msg']:.1f} | {f['cumulative_s']:.2f} |"
        for f in prof["by_own"][:12]
    ]
    return rows


def limits(r: dict[str, Any]) -> str:
    if "profile" not in r:
        return "No profile in this run (`bench/run.py --profile` adds one).\n\n" + latency_limits(r)
    parts = []
    for side, what in (("consumer", "consumer (`Subscription.run`)"), ("producer", "producer (`Node.publish_batch`)")):
        run = r["profile"][side]
        prof = run["profile"]
        lead = ", ".join(f"{p['package']} {p['share']:.0%}" for p in prof["by_package"][:4])
        parts += [
            f"### The node's {what}",
            "",
            f"cProfile of {prof['messages']:,} messages of 1 KB in the {side} process, the measured part only (not "
            f"its start), {run['msg_per_s']:,.0f} msg/s under the profiler: the time goes to {lead}. "
            "`waiting for the network (epoll)` is the event loop idle, waiting for Kafka (fetches, acks, commits): "
            "round trips, not CPU.",
            "",
            *profile_table(prof),
            "",
        ]
    return "\n".join(parts) + "\n" + latency_limits(r)


def scaling(r: dict[str, Any]) -> str:
    sc = r.get("scaling")
    if not sc:
        return "Not measured in this run."
    return (
        f"One consumer process drained the 1 KB backlog at {sc['one_process_msg_per_s']:,.0f} msg/s; two processes "
        f"of one group (each `Subscription.run`, sharing the node's replay store file as two processes of one home "
        f"do) drained it again, under another group, at {sc['two_processes_msg_per_s']:,.0f} msg/s: a speed-up of "
        f"**x{sc['speed_up']:.2f}** on this {r['machine']['cpus']}-core machine, which also runs the broker. The "
        "alert topic has 3 partitions, so two members share them 2 to 1; "
        f"messages per process: {sc['per_process_delivered']}; missing {sc['missing']}, handed over twice "
        f"{sc['repeated']}, refused as already handled (redelivered after the group rebalanced) "
        f"{sc['duplicates_refused']}."
    )


def latency_limits(r: dict[str, Any]) -> str:
    """What the latency figures are made of, from the measured costs of the same run."""
    st = r["stages_cpu_us"].get("1024") or next(iter(r["stages_cpu_us"].values()))
    node = r.get("node_stages_us", {}).get("1024")
    lat = r["latency"]
    gaps = [
        f"{op7['latency_ms']['p50'] - raw['latency_ms']['p50']:+.1f} ms at {label}"
        for label, row in lat.items()
        if label != "alerts"
        for raw, op7 in [(row["raw"], row["op7"])]
    ]
    run = f"{node['subscription_run_cpu']:.0f} us" if node else "the `Subscription.run` cost"
    return (
        "### Single-alert latency\n\n"
        f"op7's median against raw's: {', '.join(gaps)}. Each alert costs the sender {st['build_single']:.0f} us "
        f"of CPU to encode and sign alone and the receiving node {run} to check, decode, hand over and record "
        "(stage costs above), against a few microseconds for raw bytes; an alert fetched with others waits for "
        "those before it in its batch (up to 500 records a fetch), so near the rate the consumer can sustain the "
        "wait grows with the batch, and on two cores shared with the broker and the sender any CPU the sender "
        "takes is the receiver's delay."
    )


def busy(r: dict[str, Any]) -> str:
    """A warning when the machine was busy during the run: the libsodium verify primitive, a fixed amount of work,
    took more than 1.5 times what it takes on this kind of machine when idle (about 41 us)."""
    primitive = (r["stages_cpu_us"].get("1024") or next(iter(r["stages_cpu_us"].values())))["verify_primitive"]
    if primitive <= 1.5 * IDLE_VERIFY_US:
        return ""
    return (
        f"\n\n**The machine was busy during this run**: the Ed25519 verify primitive took {primitive:.0f} us of CPU, "
        f"against about {IDLE_VERIFY_US:.0f} us on this machine when idle; every figure that needs CPU is lower (and "
        "every latency higher) than on an idle machine, op7's more than raw's, which needs less CPU per message."
    )


def backlogs(samples: list[dict[str, Any]], above: int = 100) -> list[tuple[int, float, float]]:
    """Each run of samples whose lag exceeded ``above`` records: (largest lag, first second, last second)."""
    runs: list[tuple[int, float, float]] = []
    current: list[dict[str, Any]] = []
    for sample in [*samples, {}]:
        if sample.get("lag", 0) > above:
            current.append(sample)
        elif current:
            runs.append((int(max(c["lag"] for c in current)), current[0]["t"], current[-1]["t"]))
            current = []
    return runs


def soak_section(r: dict[str, Any]) -> str:
    """The soak's section: how it was run and what the listener's memory, open files and lag did."""
    s, o, machine = r["summary"], r["options"], r["machine"]
    where = "the embedded transport" if o["embedded"] else f"the Kafka broker at {o['bootstrap']}"
    start, end = machine["load_average_at_start"][0], machine["load_average_at_end"][0]
    busy = " (**a busy machine**: more runnable tasks than cores)" if max(start, end) > machine["cpus"] else ""
    lags = sorted(x["lag"] for x in r["samples"] if "lag" in x)
    runs = backlogs(r["samples"])
    spans = [f"{m:,} ({a:.0f}" + (f"-{b:.0f} s)" if b > a else " s)") for m, a, b in runs]
    backlog = (
        "backlogs of more than 100 records: " + ", ".join(spans) if runs else "no backlog of more than 100 records"
    )
    return SOAK.format(
        rate=f"{o['rate']:g}",
        minutes=f"{o['minutes']:g}",
        every=f"{o['every']:g}",
        size=f"{o['size'] / 1024:g} KB" if o["size"] % 1024 == 0 else f"{o['size']} B",
        when=r["when"][:10],
        where=where,
        cpus=machine["cpus"],
        busy=busy,
        load=f"{start:.1f} at the start, {end:.1f} at the end",
        sent=f"{s['sent']:,}",
        sent_rate=r["sending"]["msg_per_s"],
        failed=s["send_failed"],
        handled=f"{s['handled']:,}" if s["handled"] is not None else "no figure (its metrics never answered)",
        refused=s["refused"],
        first=s["rss_mb_first_minute"],
        last=s["rss_mb_last_minute"],
        most=s["rss_mb_max"],
        slope=s["rss_mb_per_minute_after_the_first"],
        fds=f"{s['fds_first']} at the first sample, {s['fds_last']} at the last, at most {s['fds_max']}",
        lag=f"median {lags[len(lags) // 2]:,.0f} records, last {s['lag_last']}; {backlog}" if lags else "no figure",
        cpu=s["listener_cpu_us_per_message"],
    )


SOAK = """

## Soak: a listener under a sustained rate

`python3 bench/soak.py --rate {rate} --minutes {minutes} --every {every}` (results in `bench/soak.json`; not part of
the test suite) runs `op7 alerts listen --as NL.NCC --json --metrics-port PORT` as an operator does (its own home,
trusting the sender's key card) while it writes {rate} signed {size} alerts a second, each at its due time, straight
through the transport to the alerts topic; every {every} s it samples the listener's resident size
(`/proc/PID/status` VmRSS), its open files (`/proc/PID/fd`), its CPU time, and from its metrics endpoint what it
handled and refused and its lag (`op7_consumer_lag`, which the listener itself samples every 5 s).

Latest run, {when} on {where}, {cpus} cores, load average {load}{busy}: {sent} alerts sent at {sent_rate} msg/s,
{failed} failed; the listener handled {handled}, refused {refused}. Resident memory: the first minute's mean {first}
MB (the start-up included), the last minute's {last} MB, at most {most} MB; after the first minute {slope:+.1f}
MB/min. Open files: {fds}. Lag: {lag}. The listener spent {cpu} us of CPU per message (its start-up left out).

A leak shows as resident memory or open files that keep climbing with the messages handled; memory that steps up
while a backlog is held (a fetch holds up to 500 records) and stays there is the fetch buffers' high-water mark. A
run of 30 minutes on a quiet machine (`--minutes 30`) is what shows the slope flat.
"""


AUDIT_STAGES = [
    ("fetch", "fetch (that returned records)"),
    ("judge", "judge (`Judge.draft`)"),
    ("store", "store (`EvidenceStore.append`)"),
    ("commit", "commit the offsets"),
    ("directory", "poll the directory topic (once a loop)"),
    ("checkpoint", "checkpoint (signed every 10,000 entries)"),
    ("idle", "fetches that found nothing (at the end)"),
]


def audit_section(r: dict[str, Any]) -> str:
    """The audit benchmark's section: the auditor's rate against the node's, round by round, and where its time goes."""
    o, b, machine, summary = r["options"], r["backlog"], r["machine"], r["summary"]
    kinds = [(k, name) for k, name in (("sqlite", "SQLite"), ("postgresql", "PostgreSQL")) if k in summary]
    start, end = machine["load_average_at_start"][0], machine["load_average_at_end"][0]
    loaded, slow = max(start, end) > machine["cpus"], machine["verify_primitive_us"] > 1.5 * IDLE_VERIFY_US
    why = "more runnable tasks than cores" if loaded else "the verify primitive, a fixed amount of work, was slow"
    rows = ["| round | node msg/s | " + " | ".join(f"auditor, {n}, msg/s | / node" for _, n in kinds)]
    rows[0] += " | CPU us per record: node / " + " / ".join(n for _, n in kinds) + " |"
    rows.append("|---" * (3 + 2 * len(kinds)) + "|")
    for i, x in enumerate(r["rounds"]):
        cells = [f"{x[k]['msg_per_s']:,.0f} | {x[k]['ratio_to_node']:.2f}" for k, _ in kinds]
        each = " / ".join(f"{x[k]['cpu_us_per_msg']:.0f}" for k in ("node", *(k for k, _ in kinds)))
        rows.append(f"| {i + 1} | {x['node']['msg_per_s']:,.0f} | " + " | ".join(cells) + f" | {each} |")
    rows += ["", "| target | measured: median of the rounds (lowest to highest) | |", "|---|---|---|"]
    for k, n in kinds:
        s = summary[k]
        rows.append(
            f"| the auditor keeps up with the node, {n}: auditor / node >= 1 | {s['ratio_median']:.2f} "
            f"({s['ratio_lowest']:.2f} to {s['ratio_highest']:.2f}) | {_met(s['ratio_median'] >= 1)} |"
        )
    cpu = [f"the auditor into {n} {summary[k]['cpu_us_per_msg']:.0f} us ({summary[k]['busy']:.0%})" for k, n in kinds]
    stages = ["| stage, us per record | " + " | ".join(f"{n}: wall / CPU" for _, n in kinds) + " |"]
    stages.append("|---" * (1 + len(kinds)) + "|")
    for stage, label in AUDIT_STAGES:
        costs = [summary[k]["stages"].get(stage, {}) for k, _ in kinds]
        cells = [f"{c['wall_us']:.0f}" + (f" / {c['cpu_us']:.0f}" if "cpu_us" in c else "") if c else "" for c in costs]
        stages.append(f"| {label} | " + " | ".join(cells) + " |")
    return AUDIT.format(
        command="python3 bench/audit.py " + " ".join(f"--{k.replace('_', '-')} {_arg(v)}" for k, v in o.items()),
        b={k: f"{v:,}" if isinstance(v, int) else v for k, v in b.items()},
        batch=o["batch"],
        when=r["when"],
        cpus=machine["cpus"],
        load=f"{start:.1f} at the start, {end:.1f} at the end",
        busy=f" (**a busy machine**: {why}; every rate is lower than on an idle one)" if loaded or slow else "",
        primitive=machine["verify_primitive_us"],
        idle=IDLE_VERIFY_US,
        postgres="" if r["postgresql"]["used"] else f" PostgreSQL was skipped: {r['postgresql']['why_not']}.",
        seconds=r["seconds"],
        rounds="\n".join(rows),
        cpu=f"the node {summary['node']['cpu_us_per_msg']:.0f} us ({summary['node']['busy']:.0%}), " + ", ".join(cpu),
        stages="\n".join(stages),
        in_process=audit_in_process(r.get("in_process")),
    )


def _arg(value: Any) -> str:
    return ",".join(map(str, value)) if isinstance(value, list) else str(value)


def audit_in_process(ip: dict[str, Any] | None) -> str:
    if not ip:
        return "Not measured in this run (`--profile-records 0`, or no SQLite store)."
    both, node = ip["judge_cpu_us"] + ip["append_sqlite_cpu_us"], ip["node_subscription_run_cpu_us"]
    lines = [
        f"In one thread, without a network, over {ip['records']:,} records of the log: judging took "
        f"{ip['judge_cpu_us']:.0f} us of CPU per record and appending to SQLite {ip['append_sqlite_cpu_us']:.0f} us, "
        f"{both:.0f} us in all, against {node:.0f} us for the node's `Subscription.run` per message in the same run "
        f"(prepared records, as in the stage costs above): x{both / node:.2f} the node's. Each then under cProfile "
        "(wall time, the profiler's own included: compare the shares):",
    ]
    for name, key in (("judge", "judge_profile"), ("SQLite append", "append_profile")):
        lines += ["", f"The {name}:", "", *profile_table(ip[key])]
    return "\n".join(lines)


AUDIT = """

## Audit consumer

Measured with `bench/audit.py` (results in `bench/audit.json`; not part of the test suite or of `scripts/bench`):
does the auditor (`op7 audit run`) keep up with a node on one machine? Under topics of its own it writes a backlog
to the Kafka broker: alerts signed by FR.GN, most with `Node.publish_batch`, some one at a time with `Node.publish`;
mutual legal assistance requests from ES.PN, sealed, in FR.GN's inbox; the network's signed directory version (the
auditor holds its anchor). Each round drains the backlog in separate processes, one after the other (the node first
in odd rounds, last in even ones): the node's consumer of the throughput figures above (`Subscription.run` over the
alerts), and the auditor, `Auditor.run(once=True)` over every topic of the network, each record judged against the
directory version in force when it was signed and appended to a new evidence store (a SQLite file, then a
PostgreSQL schema). A rate runs from the first record handled to the last (start-up and the wait at the end left
out).

Latest run: {when}, {cpus} cores, load average {load}{busy}; the Ed25519 verify primitive took
{primitive:.0f} us (about {idle:.0f} us when the machine is idle).{postgres} The whole run took {seconds:.0f} s:

    {command}

Backlog: {b[alerts]} alerts of {b[frame_bytes]} B ({b[alerts_batched]} in batches of {batch}, {b[alerts_alone]} alone),
{b[sealed_requests]} sealed requests, 1 directory version: {b[records]} records.

{rounds}

CPU per record, the medians of the rounds (and the share of one core the process kept busy while it drained):
{cpu}. What a process does not spend on CPU, it waits: for the broker's fetches and commits, for its store, and
for a core.

### Where the auditor's time goes

Per record, the means of the rounds: wall time at each call, and, for the judge and the store, which run in a worker
thread, that thread's CPU (its wall time beyond its CPU is time it waited for a core or for the interpreter's lock).
While a fetch or a commit waits, the event loop runs the Kafka client's background fetches.

{stages}

{in_process}
"""


def main(
    results: Path | None = None, out: Path | None = None, soak: Path | None = None, audit: Path | None = None
) -> None:
    r = json.loads((results or ROOT / "bench" / "results.json").read_text())
    soak_file = soak or ROOT / "bench" / "soak.json"
    audit_file = audit or ROOT / "bench" / "audit.json"
    opts = r.get("options", {})
    command = "python3 bench/run.py " + " ".join(
        f"--{k.replace('_', '-')}" + ("" if v is True else f" {','.join(map(str, v)) if isinstance(v, list) else v}")
        for k, v in opts.items()
        if v is not False and k != "bootstrap"
    )
    t = r["throughput"].get("1024") or next(iter(r["throughput"].values()))
    d = r["drain"]
    doc = TEMPLATE.format(
        when=r["when"],
        cpus=r["machine"]["cpus"],
        python=r["machine"]["python"],
        platform=r["machine"]["platform"],
        seconds=r["seconds"],
        busy=busy(r),
        phases=", ".join(f"{k} {v:.0f} s" for k, v in r.get("phase_seconds", {}).items()),
        command=command,
        produce=PRODUCE.format(batch=opts.get("batch", "?")),
        consume=CONSUME,
        targets="\n".join(targets(r)),
        throughput="\n".join(throughput(r)),
        latency="\n".join(latency(r)),
        saturation=r["saturation_msg_per_s"],
        stages="\n".join(stages(r)),
        commit_rtt=r.get("commit_round_trip_us") or float("nan"),
        scaling=scaling(r),
        drained=f"{d['messages']:,}",
        drain_rate=d["consumer_msg_per_s"],
        drain_produce=d["backlog_seconds"],
        drain_check=f"missing {d['missing']}, handed over twice {d['repeated']}",
        memory=memory(d)[1],
        limits=limits(r),
        cons_op7=t["op7"]["consumer"]["cpu_us_per_msg"],
        cons_raw=t["raw"]["consumer"]["cpu_us_per_msg"],
        ratio_sig=(r["stages_cpu_us"].get("1024") or next(iter(r["stages_cpu_us"].values())))["verify_ratio_signature"],
    )
    if soak_file.exists():
        doc = doc.rstrip("\n") + soak_section(json.loads(soak_file.read_text()))
    if audit_file.exists():
        doc = doc.rstrip("\n") + audit_section(json.loads(audit_file.read_text()))
    (out or ROOT / "docs" / "PERFORMANCE.md").write_text(doc, encoding="utf-8")


TEMPLATE = """# Performance

Measured with `scripts/bench` (it starts a Kafka broker if none runs, runs `python3 bench/run.py`, then
`python3 bench/write_doc.py`, which writes this page from `bench/results.json`; a chart is in `bench/results.svg`).
Nothing here is asserted by a test.

What each figure measures:

- **op7** is the path a node runs, on the Kafka transport: {produce} for throughput, `Node.publish` one alert at a
  time for latency; {consume}, as `op7 alerts listen` runs it. Producer and consumer are separate processes; each
  node is built as `op7` builds one (a trust store, the sender's identity, the replay store in a file).
- **raw** is aiokafka moving bytes of the same size in the same run on the same broker: acks=all, idempotent
  producer (linger 5 ms and 256 KiB batches for throughput, op7's 2 ms linger for latency), a consumer that commits
  its offsets by hand once per fetch.
- Throughput: the producer writes a backlog alone, then one consumer process drains it (from its first message to
  its last); every message carries its index, and the consumer checks it saw each exactly once.
- Latency: each alert carries the wall-clock time it was due to be sent; latency is the handler's wall-clock time
  minus that (same clock, same machine, nanoseconds; the header's `created_at` has microseconds and is taken when
  `publish` starts). Sends start at their due times whether or not earlier ones finished, so a slow moment is not
  hidden (no coordinated omission). A warm-up message goes first, so that the consumer has joined its group.

Latest run: {when}, {cpus} cores, Python {python}, {platform}, Kafka 4.1.1 (one broker) on the same machine; the
whole run took {seconds:.0f} s ({phases}): `{command}`.{busy}

## Targets

{targets}

## Throughput, msg/s

{throughput}

What limits these figures is in the profiles below. The consumer spends {cons_op7:.0f} us of CPU per message against
{cons_raw:.0f} us for raw bytes.

## Two consumer processes in one group

{scaling}

## Single-alert latency (1 KB), ms

{latency}

op7's saturation rate, the base of the shares, is its end-to-end rate at 1 KB above ({saturation:,.0f} msg/s: the
smaller of the producer's and the consumer's). At 1 msg/s raw and op7 ran at the same time (each its own topics; the
load of either is negligible); the other rates one after the other.

## Memory while the node drains a backlog

A backlog of {drained} alerts of 512 B was written by two `Node.publish_batch` processes (in {drain_produce:,.0f} s,
their start included), then one node consumer drained it through `Subscription.run` with its file-backed replay
store and commits, at {drain_rate:,.0f} msg/s ({drain_check}); its resident size, sampled every 0.5 s: {memory}.

## Cost of each stage, in-process

CPU microseconds per message in one process, no network (the `Subscription.run` row reads prepared records through
a consumer whose commits cost nothing, so it shows what the node adds to `open_frame`: the replay store, the
bookkeeping; CPU / wall, wall including the replay store's disk writes). One offset commit to the broker (a request
and its answer) took {commit_rtt:,.0f} us of wall time in the same run.

{stages}

op7's signature check costs {ratio_sig:.2f}x the raw libsodium primitive measured in the same run.

## What limits each figure

{limits}
"""

if __name__ == "__main__":
    main(*(Path(a) for a in sys.argv[1:5]))
