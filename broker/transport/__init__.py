"""Transports: one interface (:class:`Transport`), a Kafka and an embedded implementation."""

from __future__ import annotations

from pathlib import Path

from .base import Consumer, Record, Sent, Transport
from .embedded import EmbeddedTransport
from .kafka import KafkaSettings, KafkaTransport, check_bootstrap

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


def make_transport(bootstrap: str | None = None, embedded_path: Path | None = None) -> Transport:
    """Kafka when ``bootstrap`` servers are given, otherwise the embedded transport (file, or memory)."""
    if bootstrap:
        return KafkaTransport(KafkaSettings.from_env(bootstrap))
    return EmbeddedTransport(embedded_path)
