"""Kafka ACLs on a real broker: each node may do what ``op7 topics acls`` grants it, and nothing more.

A private broker is started through ``scripts/kafka start --acl`` (mutual TLS, KRaft's StandardAuthorizer, nothing
allowed without an ACL; its own OP7_KAFKA_HOME, ports around 9600, the jars of the shared cache). Certificates are
issued for FR.GN and ES.PN (``scripts/kafka cert``); the operator (the super user op7-admin) creates the topics with
``op7 topics create`` and runs the kafka-acls.sh lines ``op7 topics acls`` prints with Kafka's own AclCommand. Then
two homes, one per node, exchange an alert and a directed request with its receipt, and the refusals are seen: FR.GN
cannot read the inbox of ES.PN nor join its group, cannot write the directory; a client without ACLs, or on the
PLAINTEXT port, can do nothing.
"""

from __future__ import annotations

import os
import shlex
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from broker.errors import TransportError
from broker.transport import KafkaSettings, KafkaTransport
from tests.conftest import EXAMPLE_ALERT, ROOT, trusting_homes, under_ci

pytestmark = pytest.mark.kafka

NODES = {"fr": "FR.GN", "es": "ES.PN"}
CONTACT = ("--agency", "An agency", "--desk", "Duty desk", "--phone", "+34910000000")
KAFKA = str(ROOT / "scripts" / "kafka")


def _free(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


@dataclass
class AclCluster:
    """The private broker: its script environment, TLS listener and certificates folder."""

    env: dict[str, str]
    port: int
    tls: Path
    homes: dict[str, Path]

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port + 10}"

    def script(self, *args: str, timeout: float = 180) -> str:
        result = subprocess.run(
            [KAFKA, *args], env=self.env, capture_output=True, text=True, timeout=timeout, check=False
        )
        assert result.returncode == 0, f"scripts/kafka {' '.join(args)}: {result.stderr[-2000:]}"
        return result.stdout

    def settings(self, cn: str) -> KafkaSettings:
        """op7's Kafka settings for the principal of certificate ``cn``, on the TLS listener."""
        return KafkaSettings(
            bootstrap_servers=self.bootstrap,
            security_protocol="SSL",
            ssl_cafile=str(self.tls / "ca.pem"),
            ssl_certfile=str(self.tls / "nodes" / f"{cn}.pem"),
            ssl_keyfile=str(self.tls / "nodes" / f"{cn}.key"),
            request_timeout_ms=10_000,
        )

    def op7(self, home: Path, cn: str, *args: str, timeout: float = 90) -> Any:
        """The op7 command in ``home``, connecting over mutual TLS with the certificate of ``cn``."""
        env = {
            **os.environ,
            "OP7_HOME": str(home),
            "OP7_BOOTSTRAP": self.bootstrap,
            "OP7_KAFKA_SECURITY_PROTOCOL": "SSL",
            "OP7_KAFKA_CA": str(self.tls / "ca.pem"),
            "OP7_KAFKA_CERT": str(self.tls / "nodes" / f"{cn}.pem"),
            "OP7_KAFKA_KEY": str(self.tls / "nodes" / f"{cn}.key"),
        }
        result = subprocess.run(
            [sys.executable, "-m", "broker.cli", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        assert "Traceback" not in result.stderr, result.stderr
        return result


def _private_home(tmp: Path) -> tuple[Path, int]:
    libs = sorted((ROOT / ".cache" / "kafka").glob("libs-*"))
    port = next((p for p in range(9600, 9610) if all(_free(p + d) for d in (0, 10, 20, 100))), None)
    if not libs or port is None:
        message = "no cached Kafka jars (scripts/kafka fetch) or no free ports 96xx/97xx for a private broker"
        if under_ci():
            pytest.fail(message)
        pytest.skip(message)
    home = tmp / "kafka"
    home.mkdir()
    (home / libs[-1].name).symlink_to(libs[-1], target_is_directory=True)  # reuse the jars, fetch nothing
    for tools in (ROOT / ".cache" / "kafka").glob(f"tools-{libs[-1].name.removeprefix('libs-')}"):
        (home / tools.name).symlink_to(tools, target_is_directory=True)  # kafka-tools, if fetched already
    return home, port


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AclCluster]:
    tmp = tmp_path_factory.mktemp("acls")
    home, port = _private_home(tmp)
    env = {**os.environ, "OP7_KAFKA_HOME": str(home), "OP7_KAFKA_HEAP": "-Xms128m -Xmx256m"}
    kafka = AclCluster(env, port, home / "run" / "tls", trusting_homes(tmp, NODES))
    try:
        kafka.script("start", "--acl", "--port", str(port))
        for node in NODES.values():
            kafka.script("cert", node)
        admin = tmp / "admin"
        created = kafka.op7(admin, "op7-admin", "topics", "create", *(a for n in NODES.values() for a in ("--node", n)))
        assert created.returncode == 0, created.stderr
        config = str(kafka.tls / "nodes" / "op7-admin.properties")
        for node in NODES.values():
            printed = kafka.op7(admin, "op7-admin", "topics", "acls", node, "--command-config", config)
            assert printed.returncode == 0, printed.stderr
            for line in printed.stdout.splitlines():
                words = shlex.split(line)
                assert words[0] == "kafka-acls.sh"
                kafka.script("acls", *words[1:])  # Kafka's own AclCommand, as kafka-acls.sh runs it
        yield kafka
    finally:
        kafka.script("stop")


def test_an_alert_and_a_directed_request_with_its_receipt(cluster: AclCluster) -> None:
    fr, es = cluster.homes["fr"], cluster.homes["es"]
    sent = cluster.op7(fr, "FR.GN", "alert", "send", str(EXAMPLE_ALERT))
    assert sent.returncode == 0, sent.stderr
    heard = cluster.op7(es, "ES.PN", "alerts", "listen", "--as", "ES.PN", "--count", "1", "--timeout", "30")
    assert heard.returncode == 0, heard.stderr
    assert "from FR.GN" in heard.stdout and "(signature verified)" in heard.stdout

    request = str(ROOT / "examples" / "mla-request.json")
    sent = cluster.op7(fr, "FR.GN", "send", "MutualLegalAssistanceRequest", request, "--seal")
    assert sent.returncode == 0, sent.stderr
    assert "to ES.PN via op7.inbox.ES.PN" in sent.stdout
    watched = cluster.op7(es, "ES.PN", "inbox", "watch", "--as", "ES.PN", "--timeout", "5", *CONTACT)
    assert watched.returncode == 0, watched.stderr
    assert "MutualLegalAssistanceRequest from FR.GN" in watched.stdout and "receipt sent" in watched.stdout
    # The receipt went into the inbox of FR.GN, which ES.PN may write but not read.
    back = cluster.op7(fr, "FR.GN", "inbox", "watch", "--as", "FR.GN", "--timeout", "5", *CONTACT)
    assert back.returncode == 0, back.stderr
    assert "delivered: receipt from ES.PN" in back.stdout


def test_a_node_cannot_read_another_inbox(cluster: AclCluster) -> None:
    fr = cluster.homes["fr"]
    # In its own group, on the inbox of ES.PN: the topic is refused, at once and in one line.
    topic = cluster.op7(
        fr, "FR.GN", "listen", "--as", "ES.PN", "--group", "FR.GN", "--topic", "inbox", "--timeout", "20"
    )
    assert topic.returncode == 1
    assert "TopicAuthorizationFailedError" in topic.stderr and "op7.inbox.ES.PN" in topic.stderr
    assert topic.stdout == ""
    # In the group of ES.PN (the default of --as): the group is refused.
    group = cluster.op7(fr, "FR.GN", "listen", "--as", "ES.PN", "--topic", "inbox", "--timeout", "20")
    assert group.returncode == 1
    assert "GroupAuthorizationFailedError" in group.stderr and "ES.PN" in group.stderr


async def test_a_node_cannot_write_the_directory_but_may_write_another_inbox(cluster: AclCluster) -> None:
    async with KafkaTransport(cluster.settings("FR.GN")) as transport:
        with pytest.raises(TransportError, match=r"TopicAuthorizationFailedError.*op7\.directory"):
            await transport.send("op7.directory", b"a forged directory", key=b"op7/0000000099")
        with pytest.raises(TransportError, match="may not create it"):
            await transport.create_topic("op7.inbox.BR.PF")
        # Write, never read: an empty record, refused by its reader like any other that is no op7 frame.
        assert (await transport.send("op7.inbox.ES.PN", b"")).topic == "op7.inbox.ES.PN"


async def test_without_acls_nothing_is_allowed(cluster: AclCluster) -> None:
    cluster.script("cert", "XX.NONE")
    for settings in (cluster.settings("XX.NONE"), KafkaSettings(bootstrap_servers=f"127.0.0.1:{cluster.port}")):
        with pytest.raises(TransportError, match="AuthorizationFailed"):
            async with KafkaTransport(settings) as transport:
                await transport.send("op7.alerts", b"")
