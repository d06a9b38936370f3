"""The benchmark harness still runs and measures what it says (its figures are measured by scripts/bench, never
asserted here): stage costs on tiny numbers, the document written from results, and, against a real broker, the
whole run on a few hundred messages through the node's path, each message handed over exactly once."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from bench import audit, run, stages, write_doc
from broker.wire.envelope import build
from tests.conftest import ROOT

SECTIONS = {
    "machine",
    "options",
    "stages_cpu_us",
    "node_stages_us",
    "throughput",
    "scaling",
    "commit_round_trip_us",
    "saturation_msg_per_s",
    "latency",
    "drain",
    "seconds",
}
LOADS = {"1/s", "100/s", "25%", "50%", "75%"}


def test_stage_costs_work_on_tiny_numbers() -> None:
    row = stages.stage_row(512, n=20)
    assert set(row) >= {"encode", "sign", "verify_primitive", "verify_frame_op7", "decode", "verify_ratio_signature"}
    assert all(v > 0 for v in row.values())
    assert row["frame_bytes"] == 512  # the alert is padded to the requested frame size


def test_the_node_stages_run_subscription_over_a_file_backed_replay_store() -> None:
    row = stages.node_stage_row(1024, n=60)
    assert row["replay_remember_cpu"] > 0 and row["subscription_run_wall"] > 0
    assert 0 < row["commit_requests_per_msg"] <= 1  # the subscription committed what it handled


def test_a_stamped_alert_keeps_its_frame_size_and_carries_its_index_and_send_time() -> None:
    base = stages.alert_of_size(1024)
    due = time.time_ns()
    alert = stages.stamped(base, 1234, due)
    assert stages.index_and_stamp(alert) == (1234, due)
    assert len(build(stages.identity(), alert, now=stages.now())[1]) == 1024
    assert alert.case_id != stages.stamped(base, 1235, due).case_id  # records spread over partitions


def _check(results: dict[str, Any]) -> None:
    assert set(results) >= SECTIONS
    assert set(results["latency"]) == LOADS
    for t in results["throughput"].values():
        assert {"raw", "op7", "ratio_consumer", "ratio_producer"} <= set(t)


def test_the_committed_results_have_every_section_and_the_document_says_which_path(tmp_path: Path) -> None:
    results = json.loads((ROOT / "bench" / "results.json").read_text())
    _check(results)
    assert "1024" in results["throughput"]
    write_doc.main(ROOT / "bench" / "results.json", tmp_path / "PERFORMANCE.md")
    doc = (tmp_path / "PERFORMANCE.md").read_text()
    for named in ("Node.publish_batch", "Node.publish", "Subscription.run", "ReplayGuard", "raw", "## Targets"):
        assert named in doc
    assert "## Soak" in doc  # bench/soak.json is committed, so its section is written too
    assert doc == (ROOT / "docs" / "PERFORMANCE.md").read_text()  # the document is the committed results'


def test_the_soak_section_names_each_backlog_with_its_largest_lag_and_its_seconds() -> None:
    samples = [{"t": 0.1}, {"t": 5, "lag": 3}, {"t": 10, "lag": 900}, {"t": 15, "lag": 1400}, {"t": 20, "lag": 0}]
    samples += [{"t": 25, "lag": 150}]
    assert write_doc.backlogs(samples) == [(1400, 10, 15), (150, 25, 25)]


@pytest.mark.kafka
def test_a_tiny_run_measures_the_node_path_and_hands_each_message_over_once(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    out = tmp_path / "results.json"
    options = "--messages 200 --sizes 1024 --batch 50 --slow-messages 2 --latency-messages 30 --drain 300"
    options += " --stage-calls 20 --profile --profile-messages 100"
    results = run.main([*options.split(), "--bootstrap", kafka_bootstrap, "--out", str(out)])
    assert json.loads(out.read_text()) == json.loads(json.dumps(results))
    _check(results)
    assert results["profile"]["consumer"]["profile"]["by_package"]
    op7 = results["throughput"]["1024"]["op7"]
    assert op7["consumer"]["delivered"] == 200
    assert (op7["consumer"]["missing"], op7["consumer"]["repeated"]) == (0, 0)
    assert (results["scaling"]["missing"], results["scaling"]["repeated"]) == (0, 0)
    assert sum(results["scaling"]["per_process_delivered"]) >= 200
    for row in results["latency"].values():
        assert (row["op7"]["missing"], row["op7"]["repeated"], row["raw"]["missing"]) == (0, 0, 0)
    assert (results["drain"]["missing"], results["drain"]["repeated"]) == (0, 0)
    assert results["drain"]["rss_mb"]
    write_doc.main(out, tmp_path / "PERFORMANCE.md")
    assert "Subscription.run" in (tmp_path / "PERFORMANCE.md").read_text()


@pytest.mark.kafka
def test_the_audit_benchmark_drains_a_small_backlog_and_its_section_renders(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    out = tmp_path / "audit.json"
    small = ["--messages", "1500", "--alone", "50", "--sealed", "10", "--rounds", "1", "--profile-records", "200"]
    results = audit.main(["--bootstrap", kafka_bootstrap, *small, "--stores", "sqlite", "--out", str(out)])
    (only,) = results["rounds"]
    assert only["node"]["missing"] == 0 and only["node"]["repeated"] == 0
    assert only["sqlite"]["logged"] == only["sqlite"]["read"] == 1500 + 10 + 1 and only["sqlite"]["refused"] == 0
    write_doc.main(ROOT / "bench" / "results.json", tmp_path / "PERFORMANCE.md", audit=out)
    assert "## Audit consumer" in (tmp_path / "PERFORMANCE.md").read_text()
