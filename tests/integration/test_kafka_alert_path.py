"""The alert path on a real Apache Kafka broker: CLI, demo, and at-least-once delivery across a crash."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from broker.models import KidnappingAlert
from broker.node.node import Delivery, Node
from broker.trust.store import TrustStore
from broker.wire.envelope import NodeIdentity
from tests.conftest import EXAMPLE_ALERT, ROOT, make_alert, run_op7

pytestmark = pytest.mark.kafka


def op7(home: Path, bootstrap: str, *args: str) -> subprocess.CompletedProcess[str]:
    return run_op7(home, *args, bootstrap=bootstrap)  # type: ignore[no-any-return]


def test_demo_through_kafka(tmp_path: Path, kafka_bootstrap: str) -> None:
    result = op7(tmp_path, kafka_bootstrap, "demo")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "op7 demo on the kafka transport" in result.stdout
    assert "Lifecycle complete: Alert -> Update -> AllClear." in result.stdout


def test_cli_send_and_listen_through_kafka(tmp_path: Path, kafka_bootstrap: str, unique: str) -> None:
    prefix = f"op7.cli-{unique}"
    assert op7(tmp_path, kafka_bootstrap, "keys", "new", "FR.GN").returncode == 0
    sent = op7(tmp_path, kafka_bootstrap, "--topic-prefix", prefix, "alert", "send", str(EXAMPLE_ALERT), "--json")
    assert sent.returncode == 0, sent.stderr
    assert json.loads(sent.stdout)["topic"] == f"{prefix}.alerts"
    got = op7(
        tmp_path,
        kafka_bootstrap,
        "--topic-prefix",
        prefix,
        "alerts",
        "listen",
        "--json",
        "--count",
        "1",
        "--group",
        "NL.NCC",
    )
    assert got.returncode == 0, got.stderr
    line = json.loads(got.stdout)
    assert line["envelope"]["message_id"] == json.loads(sent.stdout)["message_id"]
    assert line["alert"]["victims"][0]["family_names"] == "Victim-One"


CRASHING_CONSUMER = textwrap.dedent(
    """
    import asyncio, sys
    from pathlib import Path
    from broker.trust.store import TrustStore
    from broker.node.node import Node
    from broker.transport import KafkaSettings, KafkaTransport

    bootstrap, prefix, trust_path = sys.argv[1:4]

    async def handler(delivery):
        print("HANDLING", delivery.message.alert_id, flush=True)
        await asyncio.sleep(3600)  # killed here, before the handler returns

    async def main():
        transport = KafkaTransport(KafkaSettings(bootstrap_servers=bootstrap, session_timeout_ms=6000,
                                                 heartbeat_interval_ms=1000))
        async with Node(transport, TrustStore.load(Path(trust_path)), topic_prefix=prefix) as node:
            async with node.subscribe("NL.NCC") as sub:
                await sub.run(handler)

    asyncio.run(main())
    """
)


async def test_consumer_killed_mid_handler_gets_the_message_again(
    tmp_path: Path,
    kafka_bootstrap: str,
    make_kafka: Any,
    trust: TrustStore,
    fr: NodeIdentity,
    alert_data: dict[str, Any],
    unique: str,
) -> None:
    prefix = f"op7.crash-{unique}"
    trust_path = tmp_path / "trust.json"
    trust.save(trust_path)
    alert = make_alert(alert_data, alert_id="CRASH-1")
    async with Node(make_kafka(), trust, fr, topic_prefix=prefix) as sender:
        await sender.publish(alert)

    script = tmp_path / "consumer.py"
    script.write_text(CRASHING_CONSUMER)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(script),
        kafka_bootstrap,
        prefix,
        str(trust_path),
        stdout=asyncio.subprocess.PIPE,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 60)
        assert line.decode().strip() == "HANDLING CRASH-1"
        # Longer than aiokafka's auto-commit interval (5 s): an auto-committing consumer would lose the alert.
        await asyncio.sleep(6)
    finally:
        proc.send_signal(signal.SIGKILL)
        await proc.wait()

    got: list[Delivery] = []
    async with Node(make_kafka(), trust, topic_prefix=prefix) as ops, ops.subscribe("NL.NCC") as sub:
        await asyncio.wait_for(sub.run(got.append, limit=1, idle_timeout=60), 90)
    assert len(got) == 1
    assert isinstance(got[0].message, KidnappingAlert)
    assert got[0].message.alert_id == "CRASH-1"


async def test_broker_grants_the_producer_an_idempotent_id(make_kafka: Any, unique: str) -> None:
    transport = make_kafka()
    async with transport:
        await transport.create_topic(f"op7.idem-{unique}")
        await transport.send(f"op7.idem-{unique}", b"x")
        producer = transport._producer
        # aiokafka asks the broker for a producer id only when idempotence is on (acks=all is implied).
        assert producer._txn_manager is not None
        assert producer._txn_manager.producer_id >= 0


async def test_topics_create_sets_up_inboxes_with_retention_and_min_insync(
    tmp_path: Path, kafka_bootstrap: str, unique: str
) -> None:
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

    prefix = f"op7.topics-{unique}"
    result = op7(
        tmp_path,
        kafka_bootstrap,
        "--topic-prefix",
        prefix,
        "topics",
        "create",
        "--node",
        "FR.GN",
        "--node",
        "ES.PN",
        "--min-insync-replicas",
        "1",
    )
    assert result.returncode == 0, result.stderr
    created = result.stdout.split()
    assert f"{prefix}.inbox.FR.GN" in created and f"{prefix}.quarantine.ES.PN" in created
    assert f"{prefix}.directory" in created and f"{prefix}.alerts" in created
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        described = await admin.describe_configs(
            [
                ConfigResource(ConfigResourceType.TOPIC, f"{prefix}.inbox.FR.GN"),
                ConfigResource(ConfigResourceType.TOPIC, f"{prefix}.directory"),
            ]
        )
    finally:
        await admin.close()
    configs = {}
    for response in described:
        for resource in response.resources:
            configs[resource[3]] = {entry[0]: entry[1] for entry in resource[4]}
    assert configs[f"{prefix}.inbox.FR.GN"]["retention.ms"] == str(90 * 24 * 3600 * 1000)
    assert configs[f"{prefix}.inbox.FR.GN"]["min.insync.replicas"] == "1"
    assert configs[f"{prefix}.directory"]["cleanup.policy"] == "compact"
