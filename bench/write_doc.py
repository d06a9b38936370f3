"""Rewrite docs/PERFORMANCE.md from bench/results.json, so that the document always shows measured figures.

python3 bench/write_doc.py      (scripts/bench runs it after the benchmark)
"""

from __future__ import annotations

import json
from pathlib import Path

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
    ("open_frame_op7", "op7 verify, decode and check, in all"),
]


def main() -> None:
    r = json.loads((ROOT / "bench" / "results.json").read_text())
    st, t = r["stages_cpu_us"], r["throughput"]
    sizes = list(st)
    stages = [
        "| stage (CPU us per message) | " + " | ".join(f"{s} B" for s in sizes) + " |",
        "|---" * (len(sizes) + 1) + "|",
    ]
    stages += [f"| {label} | " + " | ".join(f"{st[s][k]:.1f}" for s in sizes) + " |" for k, label in STAGES]
    thr = [
        "| frame size | raw aiokafka msg/s | op7 msg/s (batch-signed) | op7 / raw | op7 signed one by one "
        "| producer CPU us/msg raw / op7 | consumer CPU us/msg raw / op7 |",
        "|---|---|---|---|---|---|---|",
    ]
    for s, v in t.items():
        thr.append(
            f"| {s} B | {v['raw']['end_to_end_msg_per_s']:,.0f} | {v['op7']['end_to_end_msg_per_s']:,.0f} | "
            f"{v['ratio_op7_to_raw']:.2f} | {v['op7_unbatched']['end_to_end_msg_per_s']:,.0f} | "
            f"{v['raw']['producer']['cpu_us_per_msg']:.0f} / {v['op7']['producer']['cpu_us_per_msg']:.0f} | "
            f"{v['raw']['consumer']['cpu_us_per_msg']:.0f} / {v['op7']['consumer']['cpu_us_per_msg']:.0f} |"
        )
    lat = [
        "| load (share of op7's saturation) | rate msg/s | raw p50 / p99 / p99.9 ms | op7 p50 / p99 / p99.9 ms |",
        "|---|---|---|---|",
    ]
    for share, row in r["latency"].items():
        a, b = row["raw_ms"], row["op7_ms"]
        lat.append(
            f"| {share} | {row['rate_msg_per_s']:,.0f} | {a['p50']:.1f} / {a['p99']:.1f} / {a['p99.9']:.1f} | "
            f"{b['p50']:.1f} / {b['p99']:.1f} / {b['p99.9']:.1f} |"
        )
    rss = [m for _, m in r["drain"]["rss_mb"]]
    n = len(rss)
    mem = (
        f"start {rss[0]:.0f} MB, after a quarter {rss[n // 4]:.0f} MB, half {rss[n // 2]:.0f} MB, three quarters "
        f"{rss[3 * n // 4]:.0f} MB, end {rss[-1]:.0f} MB; {r['drain']['consumer_msg_per_s']:,.0f} msg/s"
    )
    one = st["1024"]
    ratios = [v["ratio_op7_to_raw"] for v in t.values()]
    k = t["1024"]
    doc = TEMPLATE.format(
        when=r["when"],
        cpus=r["machine"]["cpus"],
        python=r["machine"]["python"],
        platform=r["machine"]["platform"],
        seconds=r["seconds"],
        stages="\n".join(stages),
        throughput="\n".join(thr),
        latency="\n".join(lat),
        memory=mem,
        drained=f"{r['drain']['messages']:,}",
        ratio_sig=one["verify_ratio_signature"],
        ratio_frame=one["verify_ratio_frame"],
        primitive=one["verify_primitive"],
        low=min(ratios),
        high=max(ratios),
        cons_op7=k["op7"]["consumer"]["cpu_us_per_msg"],
        cons_raw=k["raw"]["consumer"]["cpu_us_per_msg"],
        prod_op7=k["op7"]["producer"]["cpu_us_per_msg"],
        prod_raw=k["raw"]["producer"]["cpu_us_per_msg"],
    )
    (ROOT / "docs" / "PERFORMANCE.md").write_text(doc, encoding="utf-8")


TEMPLATE = """# Performance

Measured with `scripts/bench` (it starts a Kafka broker like `scripts/test`, runs `python3 bench/run.py`, then
`python3 bench/write_doc.py`, which writes this page from `bench/results.json`; a chart is in `bench/results.svg`).
Everything is measured in one run, on one broker, side by side: raw aiokafka moving bytes, and op7 moving signed
frames of the same size. Producer and consumer run in separate processes. Nothing here is asserted by a test.

Latest run: {when}, {cpus} cores, Python {python}, {platform}, Kafka 4.1.1 (one broker, 1 GiB heap) on the same
machine; the whole run took {seconds:.0f} s.

## Cost of each stage

{stages}

- **Single-message verification**: op7's signature check costs **{ratio_sig:.2f}x** the raw libsodium primitive
  measured in the same run (target: at most 1.2x). The whole frame check, which also decodes and validates the
  header and checks the key's validity window, costs {ratio_frame:.2f}x.
- libsodium (PyNaCl) verifies Ed25519 in about {primitive:.0f} us here; OpenSSL through the cryptography package
  took about 65 us in the same conditions, which is why op7 signs and verifies with libsodium.
- Batch signatures (scheme 2, docs/PROTOCOL.md section 4.3) take the signature out of the per-message cost on both
  sides: one signature per batch for the producer, one verification per batch for the consumer (verified roots are
  cached), while every frame still verifies alone.

## Throughput, end to end

{throughput}

op7 reaches **{low:.2f}-{high:.2f}** of raw aiokafka's throughput with the same bytes: the target of 0.5 is **not**
met. What limits it is Python CPU per message on two shared cores, not Kafka: for 1 KB messages the op7 consumer
spends about {cons_op7:.0f} us of CPU per message against {cons_raw:.0f} us for raw bytes, and the producer
{prod_op7:.0f} us against {prod_raw:.0f} us. With batch signatures the signature is no longer the main cost; Avro
encoding and decoding (fastavro) and the validation of every header and payload against the shared model (pydantic)
are, about two thirds of it. Validation stays on purpose: it is where ISO codes, ranges, node ids and the rules
between fields are enforced on what other countries send.

## Alert latency at fixed rates (1 KB)

{latency}

The target (op7 p99 at most raw p99 + 2 ms at half load) is **not** met. At these rates the op7 producer and consumer
together need more than one of the two cores next to the broker, so messages queue; at a quarter of the saturation
rate the median is within a few milliseconds of raw, the tail is not. One alert on its own costs about 0.1 ms of CPU
on each side (see the stage costs).

## Memory while draining a backlog

The consumer drained {drained} messages produced beforehand (512 B frames, batch-signed): {memory}. Resident memory
is flat after the first seconds: nothing is kept per message (the verified-root cache is bounded; the replay store is
on disk and pruned past the freshness window).

## What would move the figures

- Check the header with compiled rules instead of a full pydantic model for every frame (the header is small, its
  rules few), and decode payloads lazily for consumers that route or audit without reading content.
- Spread verification and decoding over processes: with more cores than this machine has, each consumer partition
  can be checked in its own process.
- Keep producer batches large: the batched path signs once per batch; the unbatched column shows the cost of signing
  every message alone.
"""

if __name__ == "__main__":
    main()
