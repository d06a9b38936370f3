"""A quarantine entry: a refused record as kept on the node's quarantine topic (docs/PROTOCOL.md §6)."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import datetime
from typing import Any

from broker.errors import MessageError
from broker.node.receive_state import Keep
from broker.transport.base import Record
from broker.wire.envelope import MAX_FRAME_SIZE

__all__ = ["quarantine_entry"]

#: What a quarantine entry keeps of a record key, and of a value larger than any valid frame.
_KEEP_OF_KEY = 1024
_KEEP_OF_OVERSIZED = 65_536


def quarantine_entry(record: Record, error: MessageError, group: str, now: datetime, keep: Keep | None = None) -> bytes:
    """A refused record as kept in quarantine (docs/PROTOCOL.md §6): the reason, where it came from, its bytes
    (unless ``keep`` says the entry goes without them)."""
    value = record.value  # a Kafka tombstone's null value arrives as b"" (broker.transport.kafka)
    entry: dict[str, Any] = {
        "reason": error.reason,
        "detail": str(error),
        "topic": record.topic,
        "partition": record.partition,
        "offset": record.offset,
        "record_timestamp_ms": record.timestamp_ms,
        "quarantined_at": now.isoformat(),
        "consumer_group": group,
        "key": base64.b64encode(record.key[:_KEEP_OF_KEY]).decode() if record.key is not None else None,
        "value_sha256": hashlib.sha256(value).hexdigest(),
        "value_length": len(value),
    }
    if keep is not None and keep.omitted is not None:
        entry["omitted"] = keep.omitted
        if keep.first is not None:
            entry |= {"copy": keep.copy, "first": keep.first}
    elif len(value) <= MAX_FRAME_SIZE:
        entry["value"] = base64.b64encode(value).decode()
    else:
        # Too large to keep whole in one record: keep its digest, its length and its beginning.
        entry["value_prefix"] = base64.b64encode(value[:_KEEP_OF_OVERSIZED]).decode()
    return json.dumps(entry).encode()
