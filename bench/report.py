"""What the benchmark prints at the end of a run, and its SVG chart (no plotting library needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

STAGE_NAMES = (
    "encode",
    "sign",
    "build_single",
    "build_batched_100",
    "verify_primitive",
    "verify_signature_op7",
    "verify_frame_op7",
    "decode",
    "open_frame_op7",
)


def svg_chart(results: dict[str, Any], path: Path) -> None:
    """Producer and consumer msg/s, raw aiokafka against the node path, per frame size."""
    rows = []
    for size, t in results["throughput"].items():
        for side in ("producer", "consumer"):
            rows.append((f"{size} B {side}", t["raw"][side]["msg_per_s"], t["op7"][side]["msg_per_s"]))
    top = max(max(r, o) for _, r, o in rows) or 1
    bar, gap = 30, 14
    width, height = 60 + len(rows) * (2 * bar + gap + 10), 280
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" '
        'font-size="11">',
        '<text x="10" y="18">Messages per second: raw aiokafka (grey) and the node path (green: Node.publish_batch; '
        "Subscription.run with its replay store and commits)</text>",
    ]
    for n, (label, raw, op7) in enumerate(rows):
        x = 30 + n * (2 * bar + gap + 10)
        for m, (value, colour) in enumerate(((raw, "#888"), (op7, "#2a6"))):
            h = max(1.0, (height - 90) * value / top)
            left = x + m * (bar + 2)
            parts.append(f'<rect x="{left}" y="{height - 50 - h:.0f}" width="{bar}" height="{h:.0f}" fill="{colour}"/>')
            parts.append(f'<text x="{left}" y="{height - 54 - h:.0f}">{value:,.0f}</text>')
        parts.append(f'<text x="{x}" y="{height - 34}">{label.split(" ", 2)[0]} B</text>')
        parts.append(f'<text x="{x}" y="{height - 20}">{label.rsplit(" ", 1)[1]}</text>')
    parts.append("</svg>")
    path.write_text("\n".join(parts) + "\n", encoding="utf-8")


def _ms(d: dict[str, float]) -> str:
    return f"p50 {d['p50']:.1f} p99 {d['p99']:.1f} p99.9 {d['p99.9']:.1f}"


def report(r: dict[str, Any]) -> None:
    s = r["stages_cpu_us"].get("1024") or next(iter(r["stages_cpu_us"].values()))
    print("\nstage costs, CPU us per message (1 KB):")
    for name in STAGE_NAMES:
        print(f"  {name:<22} {s[name]:8.1f}")
    for size, row in r["node_stages_us"].items():
        print(
            f"  node path, {size} B: replay store write {row['replay_remember_cpu']:.1f} CPU / "
            f"{row['replay_remember_wall']:.1f} wall; Subscription.run {row['subscription_run_cpu']:.1f} CPU / "
            f"{row['subscription_run_wall']:.1f} wall; {row['commit_requests_per_msg']:.3f} commit requests per msg"
        )
    print(f"  one offset commit round trip: {r['commit_round_trip_us'] or float('nan'):,.0f} us wall")
    print("\nthroughput, msg/s (raw aiokafka | node path, ratio):")
    for size, t in r["throughput"].items():
        raw, op7 = t["raw"], t["op7"]
        print(
            f"  {size:>5} B  producer {raw['producer']['msg_per_s']:9,.0f} | {op7['producer']['msg_per_s']:8,.0f} "
            f"({t['ratio_producer']:.2f})   consumer {raw['consumer']['msg_per_s']:9,.0f} | "
            f"{op7['consumer']['msg_per_s']:8,.0f} ({t['ratio_consumer']:.3f})   "
            f"exactly once: missing {op7['consumer']['missing']}, repeated {op7['consumer']['repeated']}"
        )
    sc = r.get("scaling")
    if sc:
        print(
            f"\n1 vs 2 consumer processes (one group): {sc['one_process_msg_per_s']:,.0f} vs "
            f"{sc['two_processes_msg_per_s']:,.0f} msg/s, x{sc['speed_up']:.2f} (split {sc['per_process_delivered']}, "
            f"missing {sc['missing']}, repeated {sc['repeated']})"
        )
    print(f"\nlatency, 1 KB, ms (op7 saturation {r['saturation_msg_per_s']:,.0f} msg/s):")
    for label, row in r["latency"].items():
        raw, op7 = row["raw"], row["op7"]
        print(
            f"  {label:>5} ({op7['rate_msg_per_s']:,.0f}/s)  raw {_ms(raw['latency_ms'])} | "
            f"op7 {_ms(op7['latency_ms'])}  (op7 missing {op7['missing']}, repeated {op7['repeated']})"
        )
    d = r["drain"]
    rss = [m for _, m in d["rss_mb"]]
    if rss:
        print(
            f"\nnode consumer RSS while draining {d['messages']:,}: start {rss[0]:.0f} MB, peak {max(rss):.0f} MB, "
            f"end {rss[-1]:.0f} MB ({d['consumer_msg_per_s']:,.0f} msg/s; missing {d['missing']}, "
            f"repeated {d['repeated']})"
        )
    if "profile" in r:
        for side in ("producer", "consumer"):
            prof = r["profile"][side]["profile"]
            top = ", ".join(f"{p['package']} {p['share']:.0%}" for p in prof["by_package"][:6])
            print(f"\nprofile of the node {side}: {top}")
    print(f"\nwhole run: {r['seconds']:.0f} s")
