"""Prometheus metrics of one process: what its subscriptions handled and refused, how far behind they are, how long
handlers took, the state of its exchanges, its connection to the cluster and its outbox.

Everything is in one registry per process (:func:`process_metrics`), not prometheus-client's global one: a program
that embeds op7 and has metrics of its own keeps them apart. The counters are always kept (an increment costs well
under a microsecond, against the 100-600 us a message costs to check); what needs work to be known (lag, exchange
states) is sampled only while the metrics are served (:meth:`Metrics.serve`). Names and meanings are in
docs/OPERATIONS.md ("Monitoring").
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import sqlite3
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from broker.errors import ConfigError
from broker.node.exchange_store import ExchangeState

__all__ = ["Lag", "Metrics", "process_metrics", "set_outbox_pending"]

log = logging.getLogger("op7.metrics")

#: Records behind the end of each partition: ``{(topic, partition): records}``.
Lag = dict[tuple[str, int], int]

#: Handler durations, seconds: from a dictionary look-up to a slow application (a database, a printer).
HANDLER_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class Metrics:
    """The metrics of one process (see the module's text); ``registry`` is what an HTTP endpoint exposes."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        # Resident memory, open files, CPU: what a soak watches, under the names every Prometheus user knows.
        ProcessCollector(registry=self.registry)
        r = self.registry
        self._handled = Counter(
            "op7_messages_handled",
            "messages handed to the application, by topic and type",
            ["topic", "type"],
            registry=r,
        )
        self._refused = Counter(
            "op7_messages_refused", "records refused and quarantined, by reason", ["reason"], registry=r
        )
        self._seconds = Histogram(
            "op7_handler_seconds",
            "time the application's handler took per message",
            buckets=HANDLER_BUCKETS,
            registry=r,
        )
        self.kafka_connected = Gauge(
            "op7_kafka_connected",
            "1 while the cluster is reached, 0 once the connection watch reports it lost",
            registry=r,
        )
        self.outbox_pending = Gauge(
            "op7_outbox_pending", "outgoing frames in the outbox not yet acknowledged", registry=r
        )
        # The hot path takes a label set's child from here: one dictionary look-up, no label validation or lock.
        self._handled_of: dict[tuple[str, str], Any] = {}
        self._refused_of: dict[str, Any] = {}
        #: The last lag sample of each subscription that is running (read by the HTTP thread).
        self._lags: dict[int, Lag] = {}
        self._exchange_stores: list[Path] = []
        r.register(_Sampled(self))
        #: Seconds between two lag samples.
        self.lag_interval = 5.0
        self.serving: tuple[str, int] | None = None
        self._server: Any = None

    # --- the hot path --------------------------------------------------------------------------------------------

    def handled(self, topic: str, message_type: str, seconds: float) -> None:
        """One message handed to the application, whose handler took ``seconds``."""
        child = self._handled_of.get((topic, message_type))
        if child is None:
            short = message_type.rsplit(".", 1)[-1]  # KidnappingAlert, not op7.KidnappingAlert
            child = self._handled_of[(topic, message_type)] = self._handled.labels(topic=topic, type=short)
        child.inc()
        self._seconds.observe(seconds)

    def refused(self, reason: str) -> None:
        """One record refused (and quarantined) with ``reason``."""
        child = self._refused_of.get(reason)
        if child is None:
            child = self._refused_of[reason] = self._refused.labels(reason=reason)
        child.inc()

    # --- sampled -------------------------------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def sampling_lag(self, sample: Callable[[], Awaitable[Lag]]) -> AsyncIterator[None]:
        """While the block runs and the metrics are served, ``sample`` every :attr:`lag_interval` seconds; its last
        sample is what a scrape shows, and none once the block is left (the partitions are no longer read here)."""
        if self.serving is None:
            yield
            return
        key = id(sample)
        task = asyncio.create_task(self._sample_lag(key, sample), name="op7-lag-sample")
        try:
            yield
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            self._lags.pop(key, None)

    async def _sample_lag(self, key: int, sample: Callable[[], Awaitable[Lag]]) -> None:
        while True:
            try:
                async with asyncio.timeout(max(self.lag_interval, 1.0)):
                    self._lags[key] = dict(await sample())
            except Exception as exc:  # an outage: the last sample stays, and the connection gauge says why
                log.debug("lag not sampled: %s", exc)
            await asyncio.sleep(self.lag_interval)

    def lags(self) -> Lag:
        """The last lag sample of every running subscription."""
        merged: Lag = {}
        for lag in list(self._lags.values()):
            merged.update(lag)
        return merged

    def watch_exchanges(self, store: Path) -> None:
        """Show the exchanges of the store file ``store`` by state (read at each scrape, read-only)."""
        if store not in self._exchange_stores:
            self._exchange_stores.append(store)

    def set_connected(self, connected: bool) -> None:
        self.kafka_connected.set(1 if connected else 0)

    # --- serving -------------------------------------------------------------------------------------------------

    def serve(self, address: str, port: int) -> None:
        """Serve ``/metrics`` on ``address:port`` in a thread of this process; :class:`ConfigError` if it cannot."""
        try:
            self._server, _ = start_http_server(port, addr=address, registry=self.registry)
        except OSError as exc:
            reason = "in use" if exc.errno == errno.EADDRINUSE else exc.strerror or str(exc)
            raise ConfigError(f"metrics endpoint {address}:{port}: {reason} (choose another --metrics-port)") from None
        self.serving = (address, port)
        self.set_connected(True)  # as the connection watch assumes at its start
        log.info("metrics on http://%s:%d/metrics", address, port)

    def close(self) -> None:
        """Stop serving (the counts are kept)."""
        if self._server is not None:
            server, self._server = self._server, None
            threading.Thread(target=server.shutdown, daemon=True).start()  # shutdown waits for the serving loop
            server.server_close()
        self.serving = None

    def value(self, name: str, **labels: str) -> float | None:
        """The current value of one sample (``op7_messages_handled_total``, ...), None when there is none."""
        return self.registry.get_sample_value(name, labels)


class _Sampled(Collector):
    """The gauges computed at each scrape: lag from the last samples, exchanges from their store files."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterable[GaugeMetricFamily]:
        lag = GaugeMetricFamily(
            "op7_consumer_lag",
            "records of a partition not handled yet (behind its end), sampled every few seconds",
            labels=["topic", "partition"],
        )
        for (topic, partition), behind in sorted(self._metrics.lags().items()):
            lag.add_metric([topic, str(partition)], behind)
        yield lag
        exchanges = GaugeMetricFamily("op7_exchanges", "directed exchanges of this node by state", labels=["state"])
        counts = dict.fromkeys((s.value for s in ExchangeState), 0)
        for store in self._metrics._exchange_stores:
            for state, count in _states(store):
                counts[state] = counts.get(state, 0) + count
        for state, count in counts.items():
            exchanges.add_metric([state], count)
        if self._metrics._exchange_stores:
            yield exchanges

    def describe(self) -> Iterable[GaugeMetricFamily]:
        return []


def _states(store: Path) -> Iterator[tuple[str, int]]:
    """The number of exchanges in each state in the store file ``store``, through a read-only connection of this
    thread (the store's own belongs to the event loop's)."""
    if not store.exists():
        return
    try:
        db = sqlite3.connect(f"{store.resolve().as_uri()}?mode=ro", uri=True, timeout=2)
        try:
            yield from db.execute("SELECT state, COUNT(*) FROM exchanges GROUP BY state").fetchall()
        finally:
            db.close()
    except sqlite3.Error as exc:
        log.warning("exchange states of %s not read: %s", store, exc)


_process = Metrics()


def process_metrics() -> Metrics:
    """This process's metrics."""
    return _process


def set_outbox_pending(count: int) -> None:
    """Tell the metrics how many outgoing frames wait in the outbox (called by the outbox when that changes)."""
    _process.outbox_pending.set(count)
