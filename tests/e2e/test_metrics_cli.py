"""``--metrics-port`` as an operator runs it: a listener serves Prometheus metrics while alerts, and one record it
refuses, arrive; its endpoint is scraped over HTTP. On the embedded transport and on a real Kafka broker."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import EXAMPLE_ALERT, ROOT, run_op7, trusting_homes

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _scrape(port: int) -> Samples | None:
    """Every sample of the endpoint by name and labels; None while nothing answers."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
            text = answer.read().decode()
    except (urllib.error.URLError, ConnectionError):
        return None
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _until(port: int, ready: object, timeout: float = 90) -> Samples:
    """Scrape until ``ready(samples)`` holds; the last samples otherwise (the assertions then say what is missing)."""
    deadline = time.monotonic() + timeout
    samples: Samples = {}
    while time.monotonic() < deadline:
        samples = _scrape(port) or {}
        if samples and ready(samples):  # type: ignore[operator]
            break
        time.sleep(0.5)
    return samples


def _lag(samples: Samples, topic: str) -> dict[str, float]:
    return {
        dict(labels)["partition"]: value
        for (name, labels), value in samples.items()
        if name == "op7_consumer_lag" and dict(labels)["topic"] == topic
    }


@pytest.mark.parametrize("transport", ["embedded", pytest.param("kafka", marks=pytest.mark.kafka)])
def test_a_listener_serves_what_it_handled_refused_and_has_left(
    tmp_path: Path, transport: str, request: pytest.FixtureRequest, unique: str
) -> None:
    bootstrap = request.getfixturevalue("kafka_bootstrap") if transport == "kafka" else None
    prefix = f"op7.t{unique}"
    homes = trusting_homes(tmp_path, {"fr": "FR.GN", "nl": "NL.NCC"})
    impostor = tmp_path / "impostor"  # signs as FR.GN with a key NL.NCC does not know
    assert run_op7(impostor, "keys", "new", "FR.GN").returncode == 0
    if bootstrap:
        assert run_op7(homes["nl"], "--topic-prefix", prefix, "topics", "create", bootstrap=bootstrap).returncode == 0
    port = _free_port()
    env = {**os.environ, "OP7_HOME": str(homes["nl"]), "OP7_TOPIC_PREFIX": prefix}
    env.pop("OP7_BOOTSTRAP", None)
    env |= {"OP7_BOOTSTRAP": bootstrap} if bootstrap else {}
    command = [sys.executable, "-m", "broker.cli", "alerts", "listen", "--as", "NL.NCC", "--metrics-port", str(port)]
    listener = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for home in (homes["fr"], homes["fr"], homes["fr"], impostor):
            sent = run_op7(home, "--topic-prefix", prefix, "alert", "send", str(EXAMPLE_ALERT), bootstrap=bootstrap)
            assert sent.returncode == 0, sent.stderr
        handled = ("op7_messages_handled_total", (("topic", f"{prefix}.alerts"), ("type", "KidnappingAlert")))
        refused = ("op7_messages_refused_total", (("reason", "unknown-key"),))
        samples = _until(port, lambda s: s.get(handled) == 3 and s.get(refused) == 1)
        assert samples.get(handled) == 3, samples
        assert samples.get(refused) == 1, samples
        assert samples[("op7_handler_seconds_count", ())] == 3
        assert samples[("op7_kafka_connected", ())] == 1
        # Lag is sampled every few seconds: once everything is handled, nothing is behind on any partition read.
        samples = _until(port, lambda s: _lag(s, f"{prefix}.alerts") and not any(_lag(s, f"{prefix}.alerts").values()))
        lag = _lag(samples, f"{prefix}.alerts")
        assert lag and set(lag.values()) == {0}, samples
        assert set(lag) <= ({"0", "1", "2"} if bootstrap else {"0"})
    finally:
        listener.send_signal(signal.SIGINT)
        _, err = listener.communicate(timeout=60)
    assert "Traceback" not in err
    assert "unknown-key" in err  # the refusal the label counts is the one the listener reported


def test_a_port_in_use_or_a_bad_setting_is_one_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert run_op7(tmp_path, "keys", "new", "NL.NCC").returncode == 0
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_op7(tmp_path, "alerts", "listen", "--metrics-port", str(port), "--timeout", "1")
    assert result.returncode == 1
    assert f"op7: error: metrics endpoint 127.0.0.1:{port}: in use" in result.stderr
    assert "Traceback" not in result.stderr
    with monkeypatch.context() as patched:
        patched.setenv("OP7_METRICS_PORT", "http")  # run_op7 hands the environment on
        result = run_op7(tmp_path, "alerts", "listen", "--timeout", "1")
    assert result.returncode == 1
    assert "OP7_METRICS_PORT='http': a port number, 1 to 65535" in result.stderr
    result = run_op7(tmp_path, "alerts", "listen", "--metrics-port", "0", "--timeout", "1")
    assert result.returncode == 2 and "--metrics-port" in result.stderr


def test_the_inbox_watcher_serves_its_exchanges_by_state(tmp_path: Path) -> None:
    homes = trusting_homes(tmp_path, {"fr": "FR.GN", "es": "ES.PN"})
    request = str(ROOT / "examples" / "mla-request.json")
    sent = run_op7(homes["fr"], "send", "MutualLegalAssistanceRequest", request, "--seal")
    assert sent.returncode == 0, sent.stderr
    port = _free_port()
    contact = ("--agency", "Policia Nacional", "--desk", "Sala del 091", "--phone", "+34910000000")
    env = {**os.environ, "OP7_HOME": str(homes["es"])}
    env.pop("OP7_BOOTSTRAP", None)
    command = [sys.executable, "-m", "broker.cli", "inbox", "watch", "--as", "ES.PN", *contact]
    watcher = subprocess.Popen(
        [*command, "--metrics-port", str(port)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        received = ("op7_exchanges", (("state", "received"),))

        def handled(samples: Samples) -> list[float]:
            return [v for (name, _), v in samples.items() if name == "op7_messages_handled_total"]

        # the store says "received" as the handler records the request, the counter moves once the handler (which
        # also sends the receipt) returns: wait for both, a busy machine shows the first without the second
        samples = _until(port, lambda s: s.get(received) == 1 and handled(s) == [1])
        assert samples.get(received) == 1, samples
        assert samples[("op7_exchanges", (("state", "sent"),))] == 0  # every state is shown, from the store file
        assert handled(samples) == [1]
    finally:
        watcher.send_signal(signal.SIGINT)
        _, err = watcher.communicate(timeout=60)
    assert "Traceback" not in err
