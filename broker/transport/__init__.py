"""Transports: one interface (:class:`Transport`), a Kafka and an embedded implementation."""

from __future__ import annotations

from pathlib import Path

from broker.clock import Clock
from broker.transport.base import Consumer, Record, Sent, Transport
from broker.transport.embedded import EmbeddedTransport
from broker.transport.health import ConnectionStatus, ConnectionWatch, StatusHook
from broker.transport.kafka import KafkaSettings, KafkaTransport, check_bootstrap

__all__ = [
    "ConnectionStatus",
    "ConnectionWatch",
    "Consumer",
    "EmbeddedTransport",
    "KafkaSettings",
    "KafkaTransport",
    "Record",
    "Sent",
    "StatusHook",
    "Transport",
    "check_bootstrap",
    "make_transport",
]


def make_transport(
    kafka: KafkaSettings | None = None, embedded_path: Path | None = None, *, clock: Clock | None = None
) -> Transport:
    """Kafka with ``kafka`` settings, otherwise the embedded transport (a file, or memory)."""
    if kafka is not None:
        return KafkaTransport(kafka)
    return EmbeddedTransport(embedded_path, clock=clock)
