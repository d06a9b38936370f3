"""``op7 listen --workers N`` and ``op7 alerts listen --workers N``: N consumer processes of one group, as an operations
centre runs them on a machine with several cores. Every alert is printed once, in whole lines; the workers share the
partitions; one that dies stops the command with its status; SIGTERM stops them all; what cannot work is refused."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from broker.config import Home
from broker.models import KidnappingAlert
from broker.node.node import Node
from broker.transport import KafkaTransport
from broker.trust.store import TrustStore
from tests.conftest import example, now, run_op7, trusting_homes


@pytest.fixture
def homes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """FR.GN and NL.NCC, each in its own home, trusting each other, on topics of their own."""
    monkeypatch.setenv("OP7_TOPIC_PREFIX", f"op7w{uuid.uuid4().hex[:10]}")
    return trusting_homes(tmp_path, {"fr": "FR.GN", "nl": "NL.NCC"})


class Running:
    """An op7 command running in the background, its standard output and error read as they come."""

    def __init__(self, home: Path, bootstrap: str, *args: str) -> None:
        env = {**os.environ, "OP7_HOME": str(home), "OP7_BOOTSTRAP": bootstrap}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "broker.cli", *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        self.out: list[bytes] = []
        self.err: list[bytes] = []
        for pipe, into in ((self.process.stdout, self.out), (self.process.stderr, self.err)):
            threading.Thread(target=self._read, args=(pipe, into), daemon=True).start()

    @staticmethod
    def _read(pipe: Any, into: list[bytes]) -> None:
        for line in iter(pipe.readline, b""):
            into.append(line)

    def stderr(self) -> str:
        return b"".join(self.err).decode()

    def wait_for(self, pattern: str, timeout: float = 60) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = re.search(pattern, self.stderr())
            if found:
                return found
            assert self.process.poll() is None, self.stderr()
            time.sleep(0.1)
        raise AssertionError(f"no {pattern!r} on standard error within {timeout} s:\n{self.stderr()}")

    def end(self, timeout: float = 60) -> int:
        try:
            return self.process.wait(timeout=timeout)
        finally:
            if self.process.poll() is None:
                self.process.kill()


def _alerts(count: int, start: int) -> list[KidnappingAlert]:
    """Alerts of distinct cases (keys), so that they spread over the partitions."""
    data = example("KidnappingAlert").model_dump(mode="json", exclude={"alert_id"})
    return [
        KidnappingAlert.model_validate({**data, "case_id": f"FR-GN-WORKERS-{i:06d}"}, context={"now": now()})
        for i in range(start, start + count)
    ]


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.mark.kafka
def test_two_workers_print_each_alert_once_in_whole_lines(homes: dict[str, Path], kafka_bootstrap: str) -> None:
    prefix = os.environ["OP7_TOPIC_PREFIX"]
    sender = Home(homes["fr"]).identity("FR.GN")

    async def send(alerts: list[KidnappingAlert]) -> list[str]:
        async with Node(
            KafkaTransport(bootstrap_servers=kafka_bootstrap), TrustStore(), sender, topic_prefix=prefix
        ) as node:
            return [p.envelope.message_id for p in await node.publish_batch(alerts)]

    sent = asyncio.run(send(_alerts(3, 0)))  # the topic exists before the workers subscribe
    listening = Running(
        homes["nl"], kafka_bootstrap, "alerts", "listen", "--as", "NL.NCC", "--workers", "2", "--json", "--timeout", "8"
    )
    # Send until each worker has handed over an alert (the second may join the group a little after the first),
    # and at least 60 in all.
    deadline = time.monotonic() + 120
    while len(sent) < 60 or not all(f"worker {i} of 2 (pid" in listening.stderr() for i in (1, 2)):
        assert time.monotonic() < deadline, listening.stderr()
        assert listening.process.poll() is None, listening.stderr()
        sent += asyncio.run(send(_alerts(6, len(sent))))
        time.sleep(0.3)
    assert listening.end(timeout=120) == 0, listening.stderr()

    lines = [json.loads(line) for line in listening.out]  # each line whole: one JSON object each
    printed = [line["envelope"]["message_id"] for line in lines]
    assert sorted(printed) == sorted(sent), listening.stderr()  # every alert once, none twice
    tallies = {
        int(m[1]): int(m[2])
        for m in re.finditer(r"worker (\d) of 2 \(pid \d+\) handed over (\d+) message", listening.stderr())
    }
    assert set(tallies) == {1, 2} and all(tallies.values()) and sum(tallies.values()) == len(sent), tallies
    # Each partition's alerts in order: a partition is read by one worker at a time, in order.
    for partition in {line["partition"] for line in lines}:
        offsets = [line["offset"] for line in lines if line["partition"] == partition]
        assert offsets == sorted(offsets)
    assert "Traceback" not in listening.stderr()


@pytest.mark.kafka
def test_a_worker_killed_stops_the_others_and_the_command_fails(homes: dict[str, Path], kafka_bootstrap: str) -> None:
    listening = Running(homes["nl"], kafka_bootstrap, "listen", "--as", "NL.NCC", "--workers", "2")
    found = listening.wait_for(r"with 2 workers \(pids (\d+), (\d+);")
    first, second = int(found[1]), int(found[2])
    os.kill(second, signal.SIGKILL)
    assert listening.end() == 128 + signal.SIGKILL
    assert f"worker 2 of 2 (pid {second}) was killed by SIGKILL (exit status 137); stopping the other workers" in (
        listening.stderr()
    )
    assert _gone(first) and _gone(second)


@pytest.mark.kafka
def test_sigterm_stops_every_worker(homes: dict[str, Path], kafka_bootstrap: str) -> None:
    listening = Running(homes["nl"], kafka_bootstrap, "alerts", "listen", "--group", "NL.NCC", "--workers", "2")
    found = listening.wait_for(r"with 2 workers \(pids (\d+), (\d+);")
    time.sleep(3)  # the workers started their consumers
    listening.process.send_signal(signal.SIGTERM)
    assert listening.end(timeout=30) == 128 + signal.SIGTERM
    assert _gone(int(found[1])) and _gone(int(found[2]))
    assert "stopping the other workers" not in listening.stderr()  # asked to stop: no worker failed


def test_workers_need_kafka(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert run_op7(home, "keys", "new", "NL.NCC").returncode == 0
    refused = run_op7(home, "alerts", "listen", "--workers", "2", "--timeout", "1")
    assert refused.returncode == 1
    assert "op7: error: --workers 2: the embedded transport does not share a group's records among its members" in (
        refused.stderr
    )
    assert "--workers needs Kafka (--bootstrap or OP7_BOOTSTRAP)" in refused.stderr
    assert "Traceback" not in refused.stderr and refused.stdout == ""


def test_workers_refuse_a_count(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert run_op7(home, "keys", "new", "NL.NCC").returncode == 0
    refused = run_op7(home, "listen", "--workers", "3", "--count", "10", bootstrap="127.0.0.1:9")
    assert refused.returncode == 1
    assert "op7: error: --count with --workers 3: each worker would stop at its own count" in refused.stderr
    assert "Traceback" not in refused.stderr
    zero = run_op7(home, "listen", "--workers", "0")
    assert zero.returncode == 2 and "0 is not at least 1" in zero.stderr


@pytest.mark.kafka
def test_from_now_fixes_a_new_groups_start_before_the_workers_join(
    homes: dict[str, Path], kafka_bootstrap: str
) -> None:
    """Each worker would otherwise start a partition at its end when it gets it: a record arriving while the second
    worker joins (a partition moving to it) would be skipped. The start is the end of each partition at the command's
    start, committed for the group, so the group's next run reads what came after, and nothing before."""
    prefix = os.environ["OP7_TOPIC_PREFIX"]
    sender = Home(homes["fr"]).identity("FR.GN")

    async def send(alerts: list[KidnappingAlert]) -> list[str]:
        async with Node(
            KafkaTransport(bootstrap_servers=kafka_bootstrap), TrustStore(), sender, topic_prefix=prefix
        ) as node:
            return [p.envelope.message_id for p in await node.publish_batch(alerts)]

    asyncio.run(send(_alerts(6, 0)))  # before: not for this group
    group = ("alerts", "listen", "--group", "NL.NCC.desk", "--workers", "2", "--json", "--timeout", "3")
    first = run_op7(homes["nl"], *group, "--from-now", bootstrap=kafka_bootstrap)
    assert first.returncode == 0 and first.stdout == "", first.stderr
    after = asyncio.run(send(_alerts(6, 6)))
    second = run_op7(homes["nl"], *group, bootstrap=kafka_bootstrap)
    assert second.returncode == 0, second.stderr
    assert sorted(json.loads(line)["envelope"]["message_id"] for line in second.stdout.splitlines()) == sorted(after)
