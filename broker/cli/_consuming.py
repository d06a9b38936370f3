"""What every command that consumes tells its user besides the messages: each refusal, and the connection; and
its Prometheus endpoint (``--metrics-port``).

A line on standard error for people; in ``--json`` mode also one JSON object on standard output, beside the
messages: ``{"refused": {...}}`` for a refusal, ``{"status": "disconnected"|"connected", "since": ..., "reason": ...}``
when the connection to the cluster is lost or restored.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import click

from broker.cli._common import Env, echo_json
from broker.cli.workers import WORKER_VARIABLE
from broker.errors import ConfigError, MessageError
from broker.models import Envelope
from broker.node.metrics import Metrics, process_metrics
from broker.transport import ConnectionStatus, Record

__all__ = ["Reporter", "metrics_options", "serving_metrics"]

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class Reporter:
    """Reports of one consuming command; ``where`` names the transport (e.g. ``Kafka at 127.0.0.1:9092``)."""

    where: str
    as_json: bool = False

    def refused(self, record: Record, error: MessageError) -> None:
        """A record refused and quarantined."""
        click.echo(
            f"op7: refused {record.topic}[{record.partition}]@{record.offset}: {error.reason}: {error} (quarantined)",
            err=True,
        )
        if self.as_json:
            echo_json({"refused": refusal_json(record, error)})

    def status(self, status: ConnectionStatus) -> None:
        """The connection to the cluster lost or restored."""
        since = f"{status.since:%Y-%m-%dT%H:%M:%SZ}"
        process_metrics().set_connected(status.connected)
        if status.connected:
            click.echo(f"op7: connection to {self.where} restored at {since}", err=True)
        else:
            click.echo(
                f"op7: connection to {self.where} lost since {since}: {status.reason}; still trying to reconnect",
                err=True,
            )
        if self.as_json:
            echo_json(status.to_json())


def refusal_json(record: Record, error: MessageError) -> dict[str, Any]:
    """A refusal as a JSON object: the reason, where the record was, and the verified sender when there is one."""
    envelope = error.envelope if isinstance(error.envelope, Envelope) else None
    return {
        "reason": error.reason,
        "detail": str(error),
        "topic": record.topic,
        "partition": record.partition,
        "offset": record.offset,
        "sender": envelope.sender if envelope else None,
        "message_id": envelope.message_id if envelope else None,
        "message_type": envelope.message_type if envelope else None,
        "quarantined": True,
    }


def metrics_options(f: F) -> F:
    """``--metrics-port PORT`` and ``--metrics-address ADDRESS`` of the long-running commands."""
    f = click.option(
        "--metrics-address",
        metavar="ADDRESS",
        help="address of the metrics endpoint (default $OP7_METRICS_ADDRESS or 127.0.0.1; 0.0.0.0: every interface)",
    )(f)
    return click.option(
        "--metrics-port",
        type=click.IntRange(1, 65535),
        metavar="PORT",
        help="serve Prometheus metrics on http://ADDRESS:PORT/metrics (default $OP7_METRICS_PORT; with --workers N, "
        "worker I serves PORT+I-1)",
    )(f)


@contextmanager
def serving_metrics(env: Env, port: int | None, address: str | None) -> Iterator[Metrics | None]:
    """This process's metrics served while the block runs, when a port is given (the option, else
    ``OP7_METRICS_PORT``); worker I of ``--workers N`` serves the port + I - 1. A port in use: :class:`ConfigError`."""
    endpoint = env.settings.metrics_endpoint(port, address)
    if endpoint is None:
        yield None
        return
    host, port = endpoint
    index, _, count = os.environ.get(WORKER_VARIABLE, "").partition("/")
    if index.isdigit() and count.isdigit():
        port += int(index) - 1
    if port > 65535:
        raise ConfigError(f"metrics port {port} (worker {index} of {count}): past 65535; choose a lower --metrics-port")
    metrics = process_metrics()
    metrics.serve(host, port)
    try:
        yield metrics
    finally:
        metrics.close()
