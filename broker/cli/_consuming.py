"""What every command that consumes tells its user besides the messages: each refusal, and the connection.

A line on standard error for people; in ``--json`` mode also one JSON object on standard output, beside the
messages: ``{"refused": {...}}`` for a refusal, ``{"status": "disconnected"|"connected", "since": ..., "reason": ...}``
when the connection to the cluster is lost or restored.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import click

from broker.cli._common import echo_json
from broker.errors import MessageError
from broker.models import Envelope
from broker.transport import ConnectionStatus, Record

__all__ = ["Reporter"]


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
