"""A node that fails to start leaves its transport stopped (no producer, connection or thread behind)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from broker.errors import TransportError
from broker.node.node import Node
from broker.transport.embedded import EmbeddedTransport
from broker.trust.store import TrustStore


class _NoTopics(EmbeddedTransport):
    async def create_topic(self, topic: str, **options: Any) -> None:
        raise TransportError(f"Kafka: create topic {topic}: TopicAuthorizationFailedError")


async def test_a_node_whose_topics_cannot_be_made_stops_its_transport(tmp_path: Path, trust: TrustStore) -> None:
    transport = _NoTopics(tmp_path / "embedded.db")
    with pytest.raises(TransportError, match="TopicAuthorizationFailed"):
        async with Node(transport, trust):
            pass
    assert transport._executor is None  # stopped
