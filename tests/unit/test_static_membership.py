"""Static group membership (OP7_KAFKA_GROUP_INSTANCE_ID): one id per process, and a session long enough to restart."""

from __future__ import annotations

import pytest

from broker.cli import workers
from broker.config import STATIC_SESSION_TIMEOUT_MS, Settings
from broker.transport.kafka import KafkaConsumer


async def test_the_setting_reaches_the_kafka_consumer_with_a_longer_session(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OP7_KAFKA_GROUP_INSTANCE_ID", "nl-ncc-listener")
    kafka = Settings.load(bootstrap="127.0.0.1:9092").kafka()
    assert kafka.group_instance_id == "nl-ncc-listener"
    assert kafka.session_timeout_ms == STATIC_SESSION_TIMEOUT_MS > kafka.heartbeat_interval_ms * 3
    consumer = KafkaConsumer(kafka, ["op7.alerts"], "NL.NCC", True)
    assert consumer._consumer._group_instance_id == "nl-ncc-listener"
    await consumer.stop()


def test_without_it_members_are_dynamic(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OP7_KAFKA_GROUP_INSTANCE_ID", raising=False)
    kafka = Settings.load(bootstrap="127.0.0.1:9092").kafka()
    assert kafka.group_instance_id is None and kafka.session_timeout_ms == 10_000


def test_each_worker_is_its_own_static_member(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OP7_KAFKA_GROUP_INSTANCE_ID", "nl-ncc-listener")
    assert workers._static_member(2) == {"OP7_KAFKA_GROUP_INSTANCE_ID": "nl-ncc-listener-2"}
    monkeypatch.delenv("OP7_KAFKA_GROUP_INSTANCE_ID")
    assert workers._static_member(2) == {}
