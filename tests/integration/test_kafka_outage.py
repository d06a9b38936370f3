"""Listeners tell their user when the cluster is out of reach and when it is back; what is sent meanwhile waits in
the sender's outbox until ``op7 outbox retry``.

The test starts a private single-broker cluster (scripts/kafka with its own OP7_KAFKA_HOME and port; the jars of the
shared cache are reused), runs ``op7 alerts listen --json`` and ``op7 inbox watch --json`` against it, stops the
broker, sees both report ``disconnected``, starts it again, sees ``connected`` and an alert sent afterwards arrive.
The shared broker of the other tests is never touched.
"""

from __future__ import annotations

import json
import os
import queue
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import EXAMPLE_ALERT, ROOT, run_op7, under_ci

pytestmark = pytest.mark.kafka

NL_CONTACT = ("--agency", "National Crime Agency", "--desk", "NCC duty officer", "--phone", "+31793459911")


def _free(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


class PrivateKafka:
    """One broker of our own, through scripts/kafka, on ``port`` (its controller on ``port`` + 100)."""

    def __init__(self, home: Path, port: int) -> None:
        self.bootstrap = f"127.0.0.1:{port}"
        self.env = {
            **os.environ,
            "OP7_KAFKA_HOME": str(home),
            "OP7_KAFKA_PORT": str(port),
            "OP7_KAFKA_HEAP": "-Xms128m -Xmx256m",
        }

    def run(self, command: str) -> None:
        result = subprocess.run(
            [str(ROOT / "scripts" / "kafka"), command],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=150,
            check=False,
        )
        assert result.returncode == 0, f"scripts/kafka {command}: {result.stderr}"


@pytest.fixture
def private_kafka(tmp_path: Path) -> Iterator[PrivateKafka]:
    libs = sorted((ROOT / ".cache" / "kafka").glob("libs-*"))
    port = next((p for p in range(19392, 19492, 7) if _free(p) and _free(p + 100)), None)
    if not libs or port is None:
        message = "no cached Kafka jars (scripts/kafka fetch) or no free port for a private broker"
        if under_ci():
            pytest.fail(message)
        pytest.skip(message)
    home = tmp_path / "kafka"
    home.mkdir()
    (home / libs[-1].name).symlink_to(libs[-1], target_is_directory=True)  # reuse the jars, fetch nothing
    kafka = PrivateKafka(home, port)
    try:
        kafka.run("start")
        yield kafka
    finally:
        kafka.run("stop")


class Listener:
    """An ``op7`` command running in the background; its standard output read line by line."""

    def __init__(self, home: Path, bootstrap: str, *args: str) -> None:
        env = {**os.environ, "OP7_HOME": str(home), "OP7_BOOTSTRAP": bootstrap}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "broker.cli", *args],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.stderr: list[str] = []
        threading.Thread(target=self._read, args=(self.process.stdout, self.lines.put), daemon=True).start()
        threading.Thread(target=self._read, args=(self.process.stderr, self.stderr.append), daemon=True).start()

    @staticmethod
    def _read(stream: Any, put: Any) -> None:
        for line in stream:
            put(line)

    def wait_for(self, predicate: Any, timeout: float) -> dict[str, Any]:
        """The first JSON line on standard output that ``predicate`` accepts, within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                break
            value: dict[str, Any] = json.loads(line)
            if predicate(value):
                return value
        raise AssertionError(f"nothing expected within {timeout} s; stderr: {''.join(self.stderr)}")

    def said(self, text: str, timeout: float = 10) -> bool:
        """Whether ``text`` appears on standard error within ``timeout`` seconds (it is read by another thread)."""
        deadline = time.monotonic() + timeout
        while text not in "".join(self.stderr) and time.monotonic() < deadline:
            time.sleep(0.1)
        return text in "".join(self.stderr)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()


def _alert(value: dict[str, Any]) -> bool:
    return "alert" in value


def _status(status: str) -> Any:
    return lambda value: value.get("status") == status


def test_listeners_report_a_lost_and_a_restored_connection(private_kafka: PrivateKafka, tmp_path: Path) -> None:
    bootstrap = private_kafka.bootstrap
    fr, nl = tmp_path / "fr", tmp_path / "nl"
    assert run_op7(fr, "keys", "new", "FR.GN").returncode == 0
    assert run_op7(nl, "keys", "new", "NL.NCC").returncode == 0
    assert run_op7(nl, "keys", "trust", str(fr / "keys" / "FR.GN.pub")).returncode == 0
    alerts = Listener(nl, bootstrap, "alerts", "listen", "--as", "NL.NCC", "--json")
    inbox = Listener(nl, bootstrap, "inbox", "watch", "--as", "NL.NCC", "--json", "--tick", "1", *NL_CONTACT)
    try:
        sent = run_op7(fr, "alert", "send", str(EXAMPLE_ALERT), bootstrap=bootstrap)
        assert sent.returncode == 0, sent.stderr
        assert alerts.wait_for(_alert, 60)["envelope"]["sender"] == "FR.GN"

        private_kafka.run("stop")
        for listener in (alerts, inbox):
            lost = listener.wait_for(_status("disconnected"), 30)
            assert lost["since"] and f"cannot reach {bootstrap}" in lost["reason"]
            assert listener.said(f"op7: connection to Kafka at {bootstrap} lost since"), listener.stderr
        # Sent while the cluster is away: signed, kept in the outbox, and said so (exit 75, try again later).
        kept = run_op7(fr, "alert", "send", str(EXAMPLE_ALERT), bootstrap=bootstrap)
        assert kept.returncode == 75, kept.stderr
        assert "op7: pending:" in kept.stderr and "kept in the outbox" in kept.stderr, kept.stderr
        listed = run_op7(fr, "outbox", "list", "--as", "FR.GN", "--json", bootstrap=bootstrap)
        [waiting] = json.loads(listed.stdout)
        assert waiting["state"] == "pending" and waiting["message_type"].endswith("KidnappingAlert")

        private_kafka.run("start")
        for listener in (alerts, inbox):
            assert listener.wait_for(_status("connected"), 60)["reason"] is None
            assert listener.said(f"op7: connection to Kafka at {bootstrap} restored at"), listener.stderr
        retried = run_op7(fr, "outbox", "retry", "--as", "FR.GN", bootstrap=bootstrap)
        assert retried.returncode == 0, retried.stderr
        assert alerts.wait_for(_alert, 60)["envelope"]["message_id"] == waiting["message_id"]
        assert json.loads(run_op7(fr, "outbox", "list", "--as", "FR.GN", "--json", bootstrap=bootstrap).stdout) == []
        sent = run_op7(fr, "alert", "send", str(EXAMPLE_ALERT), "--json", bootstrap=bootstrap)
        assert sent.returncode == 0, sent.stderr
        after = json.loads(sent.stdout)["message_id"]
        assert alerts.wait_for(_alert, 60)["envelope"]["message_id"] == after
    finally:
        alerts.stop()
        inbox.stop()
