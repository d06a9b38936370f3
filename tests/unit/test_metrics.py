"""The metrics of one process (broker.node.metrics): counted on the hot path, sampled while served, scraped."""

from __future__ import annotations

import asyncio
import socket
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from broker.cli._common import Env
from broker.cli._consuming import Reporter, serving_metrics
from broker.config import Home, Settings
from broker.errors import ConfigError
from broker.node.exchange_store import Direction, ExchangeState, ExchangeStore
from broker.node.metrics import Lag, Metrics, process_metrics, set_outbox_pending
from broker.transport.health import ConnectionStatus


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of the endpoint, by name and labels."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
        text = answer.read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_handled_and_refused_are_counted_by_label_with_the_short_type_name() -> None:
    m = Metrics()
    for _ in range(3):
        m.handled("op7.alerts", "op7.alert.KidnappingAlert", 0.002)
    m.handled("op7.cases", "op7.case.CaseFile", 0.3)
    m.refused("bad-signature")
    m.refused("bad-signature")
    m.refused("unknown-sender")
    assert m.value("op7_messages_handled_total", topic="op7.alerts", type="KidnappingAlert") == 3
    assert m.value("op7_messages_handled_total", topic="op7.cases", type="CaseFile") == 1
    assert m.value("op7_messages_refused_total", reason="bad-signature") == 2
    assert m.value("op7_messages_refused_total", reason="unknown-sender") == 1
    assert m.value("op7_handler_seconds_count") == 4
    assert m.value("op7_handler_seconds_bucket", le="0.0025") == 3  # the slow one is in a higher bucket
    # Each process has its own registry: a fresh one counts from zero.
    assert Metrics().value("op7_messages_refused_total", reason="bad-signature") is None


def test_served_over_http_and_a_port_in_use_is_one_clear_error() -> None:
    m = Metrics()
    port = free_port()
    m.handled("op7.alerts", "op7.alert.KidnappingAlert", 0.001)
    m.serve("127.0.0.1", port)
    try:
        samples = scrape(port)
        assert samples[("op7_messages_handled_total", (("topic", "op7.alerts"), ("type", "KidnappingAlert")))] == 1
        assert samples[("op7_kafka_connected", ())] == 1
        assert ("process_resident_memory_bytes", ()) in samples  # memory and open files, for a soak
        with pytest.raises(ConfigError, match=rf"metrics endpoint 127.0.0.1:{port}: in use"):
            Metrics().serve("127.0.0.1", port)
    finally:
        m.close()
    assert m.serving is None


async def test_lag_is_sampled_only_while_served_and_forgotten_after() -> None:
    m = Metrics()
    m.lag_interval = 0.05
    calls = 0

    async def sample() -> Lag:
        nonlocal calls
        calls += 1
        return {("op7.alerts", 0): 7, ("op7.alerts", 1): 0}

    async with m.sampling_lag(sample):
        await asyncio.sleep(0.2)
    assert calls == 0  # not served: no work
    m.serving = ("127.0.0.1", 0)
    async with m.sampling_lag(sample):
        await asyncio.sleep(0.2)
        assert m.lags() == {("op7.alerts", 0): 7, ("op7.alerts", 1): 0}
        assert m.value("op7_consumer_lag", topic="op7.alerts", partition="0") == 7
    assert calls >= 2
    assert m.lags() == {} and m.value("op7_consumer_lag", topic="op7.alerts", partition="0") is None


def test_exchanges_by_state_are_read_from_the_store_file(tmp_path: Path) -> None:
    path = tmp_path / "exchanges-FR.GN.db"
    store = ExchangeStore(path)
    at = datetime(2031, 5, 17, tzinfo=UTC)
    for i, direction in enumerate((Direction.OUT, Direction.OUT, Direction.IN)):
        store.add(
            message_id=f"m{i}",
            direction=direction,
            peer="NL.NCC",
            message_type="op7.request.MutualLegalAssistanceRequest",
            case_id="C-1",
            conversation_id=None,
            in_reply_to=None,
            state=ExchangeState.SENT if direction is Direction.OUT else ExchangeState.RECEIVED,
            deadline=None,
            now=at,
            sha256=bytes(32),
            frame=b"frame",
        )
    m = Metrics()
    assert m.value("op7_exchanges", state="sent") is None  # no store watched: no such metric
    m.watch_exchanges(path)
    assert m.value("op7_exchanges", state="sent") == 2
    assert m.value("op7_exchanges", state="received") == 1
    assert m.value("op7_exchanges", state="overdue") == 0  # every state is shown
    store.close()


def test_the_connection_and_the_outbox_gauges() -> None:
    m = process_metrics()
    Reporter("Kafka at 127.0.0.1:1").status(ConnectionStatus("disconnected", datetime(2031, 1, 1, tzinfo=UTC), "down"))
    assert m.value("op7_kafka_connected") == 0
    Reporter("Kafka at 127.0.0.1:1").status(ConnectionStatus("connected", datetime(2031, 1, 1, tzinfo=UTC)))
    assert m.value("op7_kafka_connected") == 1
    set_outbox_pending(12)
    assert m.value("op7_outbox_pending") == 12
    set_outbox_pending(0)


def test_the_endpoint_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OP7_METRICS_PORT", raising=False)
    monkeypatch.delenv("OP7_METRICS_ADDRESS", raising=False)
    assert Settings.load().metrics_endpoint() is None
    assert Settings.load().metrics_endpoint(9464) == ("127.0.0.1", 9464)
    monkeypatch.setenv("OP7_METRICS_PORT", "9500")
    monkeypatch.setenv("OP7_METRICS_ADDRESS", "0.0.0.0")
    assert Settings.load().metrics_endpoint() == ("0.0.0.0", 9500)
    assert Settings.load().metrics_endpoint(9600, "127.0.0.2") == ("127.0.0.2", 9600)  # the options win
    monkeypatch.setenv("OP7_METRICS_PORT", "95000")
    with pytest.raises(ConfigError, match=r"OP7_METRICS_PORT='95000': a port number, 1 to 65535"):
        Settings.load().metrics_endpoint()


def test_worker_i_of_n_serves_the_port_plus_i_minus_one(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("OP7_METRICS_PORT", raising=False)
    settings = Settings.load(home=tmp_path)
    env = Env(settings, Home(tmp_path, settings=settings), 0)
    with serving_metrics(env, None, None) as none:
        assert none is None  # no port given: nothing served
    port = free_port()
    monkeypatch.setenv("OP7_WORKER", "2/3")  # as --workers 3 starts its second worker
    with serving_metrics(env, port - 1, None) as served:
        assert served is not None and served.serving == ("127.0.0.1", port)
        assert scrape(port)[("op7_kafka_connected", ())] == 1
    monkeypatch.setenv("OP7_WORKER", "3/3")
    with pytest.raises(ConfigError, match="past 65535"), serving_metrics(env, 65534, None):
        pass
