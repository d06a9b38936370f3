"""Kafka connection security on the real broker: mutual TLS and SASL (SCRAM) over TLS.

scripts/kafka start --tls opens these listeners and generates the certificates; scripts/test exports where.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from broker.errors import TransportError
from broker.transport import KafkaSettings, KafkaTransport
from tests.conftest import _reachable, run_op7, under_ci

pytestmark = pytest.mark.kafka


@pytest.fixture(scope="module")
def tls() -> dict[str, str]:
    env = {k: os.environ.get(f"OP7_TEST_{k}", "") for k in ("TLS_BOOTSTRAP", "SASL_BOOTSTRAP", "TLS_DIR")}
    if not all(env.values()) or not _reachable(env["TLS_BOOTSTRAP"]):
        message = "no TLS listener (start Kafka with: scripts/kafka start --tls; scripts/test does)"
        if under_ci():
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return env


def mtls_env(tls: dict[str, str]) -> dict[str, str]:
    d = Path(tls["TLS_DIR"])
    return {
        "OP7_KAFKA_SECURITY_PROTOCOL": "SSL",
        "OP7_KAFKA_CA": str(d / "ca.pem"),
        "OP7_KAFKA_CERT": str(d / "client.pem"),
        "OP7_KAFKA_KEY": str(d / "client.key"),
    }


def test_the_whole_alert_path_over_mutual_tls(
    tls: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in mtls_env(tls).items():
        monkeypatch.setenv(name, value)
    result = run_op7(tmp_path, "demo", bootstrap=tls["TLS_BOOTSTRAP"])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Lifecycle complete" in result.stdout


async def test_a_client_without_a_certificate_is_refused(tls: dict[str, str]) -> None:
    settings = KafkaSettings(
        bootstrap_servers=tls["TLS_BOOTSTRAP"],
        security_protocol="SSL",
        ssl_cafile=str(Path(tls["TLS_DIR"]) / "ca.pem"),
        request_timeout_ms=5000,
    )
    with pytest.raises(TransportError, match="cannot reach"):
        async with KafkaTransport(settings):
            pass


async def test_sasl_scram_over_tls(tls: dict[str, str], unique: str) -> None:
    def settings(password: str) -> KafkaSettings:
        return KafkaSettings(
            bootstrap_servers=tls["SASL_BOOTSTRAP"],
            security_protocol="SASL_SSL",
            ssl_cafile=str(Path(tls["TLS_DIR"]) / "ca.pem"),
            sasl_mechanism="SCRAM-SHA-256",
            sasl_username="op7",
            sasl_password=password,
            request_timeout_ms=5000,
        )

    async with KafkaTransport(settings("op7-secret")) as transport:
        await transport.create_topic(f"op7.sasl-{unique}")
        sent = await transport.send(f"op7.sasl-{unique}", b"over SASL_SSL")
        assert sent.offset == 0
    with pytest.raises(TransportError):
        async with KafkaTransport(settings("wrong")):
            pass


def test_bad_security_settings_are_one_clear_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tls: dict[str, str]
) -> None:
    monkeypatch.setenv("OP7_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    result = run_op7(tmp_path, "demo", bootstrap=tls["SASL_BOOTSTRAP"])
    assert result.returncode == 1
    assert "SASL needs a mechanism, a user name and a password" in result.stderr
    assert "Traceback" not in result.stderr
