"""A private 3-broker KRaft cluster for the fault and adversarial suites.

``scripts/kafka start --cluster 3`` with its own state directory and ports (brokers 9400-9402, controllers 9500-9502;
the jars of the shared cache are reused): replication factor 3, min.insync.replicas 2, unclean leader election off
(Kafka's default). The suites kill and restart its brokers without touching the shared broker of the other tests.
Each suite adds its counts with :func:`report`; they are printed at the end of the run.
"""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT, under_ci

BASE_PORT = int(os.environ.get("OP7_TEST_CLUSTER_PORT", "9400"))
_REPORTS: list[str] = []


def report(line: str) -> None:
    """A line for the run's summary (the counts a suite is asked to show)."""
    _REPORTS.append(line)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _REPORTS:
        terminalreporter.section("fault and adversarial counts")
        for line in _REPORTS:
            terminalreporter.write_line(line)


def _free(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


class Cluster:
    """Three brokers on loopback, driven through scripts/kafka."""

    def __init__(self, home: Path, port: int) -> None:
        self.port = port
        self.bootstrap = ",".join(f"127.0.0.1:{port + i}" for i in range(3))
        self.env = {
            **os.environ,
            "OP7_KAFKA_HOME": str(home),
            "OP7_KAFKA_PORT": str(port),
            "OP7_KAFKA_HEAP": "-Xms128m -Xmx320m",
        }

    def run(self, *args: str) -> str:
        result = subprocess.run(
            [str(ROOT / "scripts" / "kafka"), *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=200,
            check=False,
        )
        assert result.returncode == 0, f"scripts/kafka {' '.join(args)}: {result.stderr}"
        return result.stdout

    def kill(self, broker: int) -> None:
        """SIGKILL one broker (a crash: no controlled shutdown)."""
        self.run("kill", str(broker))

    def restart(self, broker: int) -> None:
        """Start a killed or stopped broker again; returns once it is ready."""
        self.run("restart", str(broker))

    def stop_all(self) -> None:
        self.run("stop")

    def start_all(self) -> None:
        self.run("start", "--port", str(self.port), "--cluster", "3")


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    libs = sorted((ROOT / ".cache" / "kafka").glob("libs-*"))
    ports = [BASE_PORT + i for i in range(3)] + [BASE_PORT + 100 + i for i in range(3)]
    if not libs or not all(_free(p) for p in ports):
        message = f"no cached Kafka jars (scripts/kafka fetch) or ports {BASE_PORT}-{BASE_PORT + 102} are taken"
        if under_ci():
            pytest.fail(message)
        pytest.skip(message)
    home = tmp_path_factory.mktemp("cluster")
    (home / libs[-1].name).symlink_to(libs[-1], target_is_directory=True)  # reuse the jars, fetch nothing
    cluster = Cluster(home, BASE_PORT)
    try:
        cluster.start_all()
        yield cluster
    finally:
        cluster.stop_all()
