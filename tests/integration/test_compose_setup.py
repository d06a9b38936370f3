"""deploy/kafka-setup.sh, the compose file's one-shot set-up, run for real against a broker that enforces ACLs.

A private broker is started through ``scripts/kafka start --acl`` (mutual TLS, KRaft's StandardAuthorizer, nothing
allowed without an ACL; its own OP7_KAFKA_HOME, ports around 9720, the jars of the shared cache). The script runs
as in the kafka-setup service, as the super user op7-admin, with Kafka's own tools (TopicCommand, AclCommand,
BrokerApiVersionsCommand: what /opt/kafka/bin's scripts run in the apache/kafka image) on a few lines of
deploy/topics.conf and the hand-written ACLs of the auditor (deploy/acls/NL.AUDIT.acl). Then the topics are what the
lines say, and `op7 audit run`, as the auditor's principal, reads the alerts and an inbox into its log and signs a
checkpoint on the checkpoint topic, which `op7 audit verify` reads back; but it writes no alert and no quarantine,
and joins no group outside its own. And Kafka itself takes each broker's configuration of the compose file: rendered
into properties as the apache/kafka image renders its KAFKA_* variables, it formats the broker's KRaft storage.
"""

from __future__ import annotations

import asyncio
import os
import re
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from broker import NodeIdentity, SigningKey, SystemClock, TrustStore
from broker.audit.auditor import Auditor, read_published
from broker.audit.checkpoint import Checkpoint
from broker.audit.history import DirectoryHistory
from broker.audit.store import open_store
from broker.errors import TransportError
from broker.node.topics import TopicLayout
from broker.transport import KafkaSettings, KafkaTransport
from tests.conftest import ROOT, under_ci
from tests.unit.test_compose import built_compose_config, compose_model

pytestmark = pytest.mark.kafka

KAFKA = str(ROOT / "scripts" / "kafka")
#: The lines of deploy/topics.conf the set-up creates here (each JVM start of a tool costs seconds).
TOPICS = ("op7.alerts", "op7.directory", "op7.inbox.NL.NCC", "op7.quarantine.NL.AUDIT", "op7.audit.checkpoints")
TOOLS = {
    "kafka-topics.sh": "TopicCommand",
    "kafka-acls.sh": "AclCommand",
    "kafka-broker-api-versions.sh": "BrokerApiVersionsCommand",
}


#: The variables the image's start script leaves out of server.properties (its kafka-propertiesSpec.json).
IMAGE_EXCLUDES = {
    "KAFKA_VERSION",
    "KAFKA_HEAP_OPT",
    "KAFKA_LOG4J_OPTS",
    "KAFKA_OPTS",
    "KAFKA_JMX_OPTS",
    "KAFKA_JVM_PERFORMANCE_OPTS",
    "KAFKA_GC_LOG_OPTS",
    "KAFKA_LOG4J_ROOT_LOGLEVEL",
    "KAFKA_LOG4J_LOGGERS",
    "KAFKA_TOOLS_LOG4J_LOGLEVEL",
}


def _property(variable: str) -> str:
    """KAFKA_X_Y as the image names it: x.y (``__`` for ``_``, ``___`` for ``-``)."""
    name = variable.removeprefix("KAFKA_").lower()
    return name.replace("___", "-").replace("__", "\0").replace("_", ".").replace("\0", "_")


def _free(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


@dataclass
class Cluster:
    env: dict[str, str]
    port: int
    tls: Path
    setup: subprocess.CompletedProcess[str]

    def settings(self, cn: str) -> KafkaSettings:
        nodes = self.tls / "nodes"
        return KafkaSettings(
            bootstrap_servers=f"127.0.0.1:{self.port + 10}",
            security_protocol="SSL",
            ssl_cafile=str(self.tls / "ca.pem"),
            ssl_certfile=str(nodes / f"{cn}.pem"),
            ssl_keyfile=str(nodes / f"{cn}.key"),
            request_timeout_ms=10_000,
        )


def _script(env: dict[str, str], *args: str) -> str:
    result = subprocess.run([KAFKA, *args], env=env, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, f"scripts/kafka {' '.join(args)}: {result.stderr[-2000:]}"
    return result.stdout


def _private_home(tmp: Path) -> tuple[Path, Path, int]:
    cache = ROOT / ".cache" / "kafka"
    libs = sorted(cache.glob("libs-*"))
    port = next((p for p in range(9720, 9730) if all(_free(p + d) for d in (0, 10, 20, 100))), None)
    if not libs or port is None:
        message = "no cached Kafka jars (scripts/kafka fetch) or no free ports 9720-9729 for a private broker"
        if under_ci():
            pytest.fail(message)
        pytest.skip(message)
    home = tmp / "kafka"
    home.mkdir()
    (home / libs[-1].name).symlink_to(libs[-1], target_is_directory=True)  # reuse the jars, fetch nothing
    tools = cache / f"tools-{libs[-1].name.removeprefix('libs-')}"
    if tools.is_dir():
        (home / tools.name).symlink_to(tools, target_is_directory=True)
    return home, home / libs[-1].name, port


def _tool_scripts(folder: Path, libs: Path, tools: Path) -> Path:
    """Kafka's tool scripts as the image has them, each running its class from the pinned jars."""
    folder.mkdir()
    log4j = ROOT / "scripts" / "kafka-runtime" / "tools-log4j2.yaml"
    for name, main in TOOLS.items():
        path = folder / name
        path.write_text(
            "#!/bin/sh\nexec java -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 "
            f'-Dlog4j2.configurationFile={log4j} -cp "{libs}/*:{tools}/*" org.apache.kafka.tools.{main} "$@"\n',
            encoding="utf-8",
        )
        path.chmod(0o755)
    return folder


def _setup_dir(folder: Path) -> Path:
    """A copy of deploy/ with some of its topics and the auditor's ACLs."""
    (folder / "acls").mkdir(parents=True)
    lines = (ROOT / "deploy" / "topics.conf").read_text(encoding="utf-8").splitlines()
    chosen = [line for line in lines if line.split(" ")[0] in TOPICS]
    assert len(chosen) == len(TOPICS)
    (folder / "topics.conf").write_text("\n".join(["# a comment", *chosen, ""]), encoding="utf-8")
    acl = (ROOT / "deploy" / "acls" / "NL.AUDIT.acl").read_text(encoding="utf-8")
    (folder / "acls" / "NL.AUDIT.acl").write_text(acl, encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    tmp = tmp_path_factory.mktemp("setup")
    home, libs, port = _private_home(tmp)
    env = {**os.environ, "OP7_KAFKA_HOME": str(home), "OP7_KAFKA_HEAP": "-Xms128m -Xmx256m"}
    tls = home / "run" / "tls"
    try:
        _script(env, "start", "--acl", "--port", str(port))
        _script(env, "acls", "--version")  # fetches kafka-tools once, if the shared cache has none
        for cn in ("NL.AUDIT", "NL.NCC"):
            _script(env, "cert", cn)
        keystore = tmp / "op7-admin.keystore.pem"  # key then certificate, as make-dev-certs.sh writes it
        keystore.write_bytes(b"".join((tls / "nodes" / f"op7-admin.{s}").read_bytes() for s in ("key", "pem")))
        setup_env = {
            "PATH": os.environ["PATH"],
            "SETUP_BOOTSTRAP": f"127.0.0.1:{port + 10}",
            "SETUP_CA": str(tls / "ca.pem"),
            "SETUP_KEYSTORE": str(keystore),
            "SETUP_REPLICATION_FACTOR": "1",
            "SETUP_MIN_INSYNC_REPLICAS": "1",
            "SETUP_BROKERS": "1",
            "SETUP_TIMEOUT": "60",
            "SETUP_DIR": str(_setup_dir(tmp / "deploy")),
            "SETUP_KAFKA_BIN": str(_tool_scripts(tmp / "bin", libs, home / libs.name.replace("libs-", "tools-"))),
        }
        setup = subprocess.run(
            ["bash", str(ROOT / "deploy" / "kafka-setup.sh")], env=setup_env, capture_output=True, text=True
        )
        yield Cluster(env, port, tls, setup)
    finally:
        _script(env, "stop")


async def test_setup_creates_the_topics_as_topics_conf_says(cluster: Cluster) -> None:
    assert cluster.setup.returncode == 0, cluster.setup.stderr[-3000:]
    said = cluster.setup.stderr.splitlines()
    assert [f"kafka-setup: topic {t}" for t in TOPICS] == [line for line in said if " topic " in line]
    assert "kafka-setup: ACLs of NL.AUDIT" in said and said[-1] == "kafka-setup: done"
    lines = {line.split()[0]: line.split()[1:] for line in (ROOT / "deploy" / "topics.conf").read_text().splitlines()}
    admin = AIOKafkaAdminClient(**cluster.settings("op7-admin").common())
    await admin.start()
    try:
        described = {t["topic"]: len(t["partitions"]) for t in await admin.describe_topics(list(TOPICS))}
        resources = [ConfigResource(ConfigResourceType.TOPIC, t) for t in TOPICS]
        configs = await admin.describe_configs(resources)
    finally:
        await admin.close()
    found = {}
    for response in configs:
        for _code, _message, _type, name, entries in response.resources:
            found[name] = {e[0]: e[1] for e in entries}
    for topic in TOPICS:
        partitions, *settings = lines[topic]
        assert described[topic] == int(partitions), topic
        for setting in [*settings, "min.insync.replicas=1"]:
            key, value = setting.split("=")
            assert found[topic][key] == value, f"{topic}: {key}"


async def test_the_auditor_reads_every_topic_and_writes_only_its_checkpoints(cluster: Cluster, tmp_path: Path) -> None:
    assert cluster.setup.returncode == 0, cluster.setup.stderr[-3000:]
    records = {"op7.alerts": b"an alert, as far as Kafka knows", "op7.inbox.NL.NCC": b"a request to NL.NCC"}
    async with KafkaTransport(cluster.settings("op7-admin")) as admin:
        for topic, value in records.items():
            await admin.send(topic, value)
    layout = TopicLayout("op7")
    history = DirectoryHistory(None, TrustStore())
    identity = NodeIdentity("NL.AUDIT", SigningKey.generate())
    with open_store(str(tmp_path / "audit.db")) as store:
        async with KafkaTransport(cluster.settings("NL.AUDIT")) as auditor:
            # The topics of the layout that this cluster lacks are read as empty.
            run = Auditor(auditor, store, history, identity, SystemClock(), layout=layout, nodes=["NL.NCC", "NL.AUDIT"])
            stats = await asyncio.wait_for(run.run(once=True), timeout=120)
            published = await read_published(auditor, layout)
            for topic in ("op7.alerts", "op7.quarantine.NL.AUDIT"):
                with pytest.raises(TransportError, match=rf"TopicAuthorizationFailedError.*{re.escape(topic)}"):
                    await auditor.send(topic, b"written by the auditor")
            with pytest.raises(TransportError, match="GroupAuthorizationFailedError"):
                async with auditor.consumer(["op7.alerts"], "NL.NCC", from_beginning=True) as consumer:
                    await consumer.fetch(timeout=2.0)
        logged = {(e.topic, e.value) for e in store.entries()}
    assert logged == set(records.items())
    assert (stats.logged, stats.refused) == (2, 2)  # kept, though no signed frame
    assert [Checkpoint.from_bytes(data).size for data in published] == [2]


def test_kafka_takes_each_broker_configuration(tmp_path: Path) -> None:
    libs = sorted((ROOT / ".cache" / "kafka").glob("libs-*"))
    if not libs:
        if under_ci():
            pytest.fail("no cached Kafka jars (scripts/kafka fetch)")
        pytest.skip("no cached Kafka jars (scripts/kafka fetch)")
    services = compose_model(built_compose_config())["services"]
    for name in ("kafka-1", "kafka-2", "kafka-3"):
        env = services[name]["environment"]
        properties = {_property(k): v for k, v in env.items() if k.startswith("KAFKA_") and k not in IMAGE_EXCLUDES}
        properties["log.dirs"] = str(tmp_path / name / "data")  # the volume's place, here
        config = tmp_path / f"{name}.properties"
        config.write_text("".join(f"{k}={v}\n" for k, v in sorted(properties.items())), encoding="utf-8")
        command = ["java", "-Xmx256m", "-XX:+UseSerialGC", "-cp", f"{libs[-1]}/*", "kafka.tools.StorageTool"]
        command += ["format", "-t", env["CLUSTER_ID"], "-c", str(config)]
        formatted = subprocess.run(command, capture_output=True, text=True, timeout=120)
        assert formatted.returncode == 0, f"{name}: {formatted.stdout[-1500:]} {formatted.stderr[-1500:]}"
        meta = (tmp_path / name / "data" / "meta.properties").read_text(encoding="utf-8")
        assert f"node.id={env['KAFKA_NODE_ID']}" in meta and f"cluster.id={env['CLUSTER_ID']}" in meta
