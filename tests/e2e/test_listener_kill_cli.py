"""A listener killed (SIGKILL) in the middle of a backlog, on a real Kafka broker, set up as operators do: restarted,
it loses nothing, and hands over again at most the one batch it had not made durable (docs/PROTOCOL.md §7)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from broker.config import Home
from broker.node.node import Node
from broker.transport.kafka import KafkaTransport
from tests.conftest import cli_of, make_alert, trusting_homes

pytestmark = pytest.mark.kafka

BACKLOG = 3000
#: The most records a subscription handles before it makes them durable (Subscription.max_batch).
BATCH = 500


async def _backlog(home: Path, bootstrap: str, prefix: str, alert_data: dict[str, object]) -> list[str]:
    fr = Home(home)
    node = Node(KafkaTransport(bootstrap_servers=bootstrap), fr.trust(), fr.identity("FR.GN"), topic_prefix=prefix)
    ids: list[str] = []
    async with node:
        for start in range(0, BACKLOG, 250):
            chunk = [make_alert(alert_data, alert_id=f"A{i}", case_id=f"C-{i % 9}") for i in range(start, start + 250)]
            ids += [p.envelope.message_id for p in await node.publish_batch(chunk)]
    return ids


def _listen(home: Path, bootstrap: str, prefix: str, *extra: str) -> subprocess.Popen[str]:
    env = {**os.environ, "OP7_HOME": str(home), "OP7_BOOTSTRAP": bootstrap, "OP7_TOPIC_PREFIX": prefix}
    return subprocess.Popen(
        [sys.executable, "-m", "broker.cli", "alerts", "listen", "--as", "NL.NCC", "--json", *extra],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _ids(lines: list[str]) -> list[str]:
    return [json.loads(line)["envelope"]["message_id"] for line in lines if '"envelope"' in line]


def test_a_listener_killed_mid_backlog_loses_nothing_and_repeats_at_most_one_batch(
    tmp_path: Path, kafka_bootstrap: str, unique: str, alert_data: dict[str, object]
) -> None:
    homes = trusting_homes(tmp_path, {"fr": "FR.GN", "nl": "NL.NCC"})
    prefix = f"op7.t{unique}"
    assert cli_of(homes, kafka_bootstrap)("nl", "--topic-prefix", prefix, "topics", "create").returncode == 0
    sent = asyncio.run(_backlog(homes["fr"], kafka_bootstrap, prefix, alert_data))

    first = _listen(homes["nl"], kafka_bootstrap, prefix)
    assert first.stdout is not None
    seen: list[str] = []
    deadline = time.monotonic() + 120
    while len(seen) < BACKLOG // 3 and time.monotonic() < deadline:
        seen.append(first.stdout.readline())
    first.send_signal(signal.SIGKILL)  # no clean-up of any kind
    out, _ = first.communicate(timeout=30)
    before = _ids(seen + out.splitlines())
    assert BACKLOG // 3 <= len(before) < BACKLOG, "the listener was not killed in the middle of the backlog"

    second = _listen(homes["nl"], kafka_bootstrap, prefix, "--timeout", "15")
    out, err = second.communicate(timeout=180)
    assert second.returncode == 0, err
    after = _ids(out.splitlines())

    handed = Counter(before + after)
    assert set(handed) == set(sent)  # nothing lost
    assert all(n <= 2 for n in handed.values())
    assert sum(handed.values()) - len(sent) <= BATCH, "more than one batch handed over again"
