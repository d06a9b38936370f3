"""Transports: one interface (:class:`Transport`), a Kafka and an embedded implementation."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from broker.clock import Clock
from broker.transport.base import Consumer, Record, Sent, Transport
from broker.transport.embedded import EmbeddedTransport
from broker.transport.kafka import KafkaSettings, KafkaTransport, check_bootstrap

__all__ = [
    "Consumer",
    "EmbeddedTransport",
    "KafkaSettings",
    "KafkaTransport",
    "Record",
    "Sent",
    "Transport",
    "check_bootstrap",
    "make_transport",
]


def make_transport(
    bootstrap: str | None = None, embedded_path: Path | None = None, *, clock: Clock | None = None, **kafka: Any
) -> Transport:
    """Kafka when ``bootstrap`` servers are given (settings from ``OP7_KAFKA_*``, then ``kafka`` overrides),
    otherwise the embedded transport (file, or memory; its record times from ``clock``)."""
    if bootstrap:
        settings = KafkaSettings.from_env(bootstrap)
        return KafkaTransport(dataclasses.replace(settings, **{k: v for k, v in kafka.items() if v is not None}))
    return EmbeddedTransport(embedded_path, clock=clock)
