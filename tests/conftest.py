"""Shared fixtures: keys, a valid alert, and the real Kafka broker.

Kafka is found at $OP7_TEST_BOOTSTRAP (default 127.0.0.1:9092; `scripts/kafka start` starts one).
When it cannot be reached, Kafka tests are skipped on a developer machine and FAIL under CI=true.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from broker.clock import ManualClock, SystemClock, default_clock, using
from broker.models import KidnappingAlert
from broker.transport import EmbeddedTransport, KafkaSettings, KafkaTransport, Transport
from broker.trust.store import TrustStore
from broker.wire.envelope import NodeIdentity
from broker.wire.signing import SigningKey

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_ALERT = ROOT / "examples" / "kidnapping-alert.json"
#: One example file per message type (short name -> file), all valid and signed by their issuer.
EXAMPLES = {
    "KidnappingAlert": "kidnapping-alert.json",
    "CaseInformation": "case-information.json",
    "MutualLegalAssistanceRequest": "mla-request.json",
    "MutualLegalAssistanceResponse": "mla-response.json",
    "ExtraditionRequest": "extradition-request.json",
    "ExtraditionResponse": "extradition-response.json",
    "CollaborationRequest": "collaboration-request.json",
    "CollaborationResponse": "collaboration-response.json",
    "ProceedsRequest": "proceeds-request.json",
    "ProceedsResponse": "proceeds-response.json",
    "VictimSupportNotification": "victim-support.json",
    "NationalReport": "national-report.json",
    "Receipt": "receipt.json",
    "ErrorReport": "error-report.json",
    "DisseminationRequest": "dissemination-request.json",
    "DisseminationDecision": "dissemination-decision.json",
    "ForwardedMessage": "forwarded-message.json",
    "Reminder": "reminder.json",
}


def example(type_name: str, now: datetime | None = None) -> Any:
    """The example of a message type as the CLI reads it: sent at ``now`` (default: the test clock's time), its
    relative times counted from then."""
    from adapters.native_json import NativeJsonAdapter
    from broker.models import message_model

    adapter = NativeJsonAdapter(message_model(type_name))
    return adapter.translate_file(ROOT / "examples" / EXAMPLES[type_name], now=now or default_clock().now()).message


@pytest.fixture(autouse=True)
def clock() -> Iterator[ManualClock]:
    """The clock of every test: it starts at the real time (so that brokers, files and subprocesses agree) and
    stands still until the test moves it. Installed as the process default, so that anything a test does not
    give a clock to reads this one too."""
    manual = ManualClock(SystemClock().now().replace(microsecond=0))
    with using(manual):
        yield manual


@pytest.fixture(autouse=True)
def user_data(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The machine user's data folder of every test (XDG_DATA_HOME), a fresh one per test: the default embedded
    file (``op7/embedded.db`` in it) is shared by every home of the test, as by a user's homes on one machine, and
    never by the real user's. A developer's own OP7_EMBEDDED_PATH does not reach the tests either."""
    data = tmp_path_factory.mktemp("user-data")
    monkeypatch.setenv("XDG_DATA_HOME", str(data))
    monkeypatch.delenv("OP7_EMBEDDED_PATH", raising=False)
    return data


def under_ci() -> bool:
    """Under CI a missing service fails the run: a skipped test there would prove nothing."""
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _reachable(bootstrap: str) -> bool:
    for server in bootstrap.split(","):
        host, _, port = server.rpartition(":")
        try:
            with socket.create_connection((host, int(port)), timeout=2):
                return True
        except OSError:
            continue
    return False


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    bootstrap = os.environ.get("OP7_TEST_BOOTSTRAP", "127.0.0.1:9092")
    if not _reachable(bootstrap):
        message = f"Kafka is not reachable at {bootstrap} (start one with: scripts/kafka start)"
        if under_ci():
            pytest.fail(message + " -- under CI the Kafka tests must run", pytrace=False)
        pytest.skip(message)
    return bootstrap


def _kafka(bootstrap: str) -> KafkaTransport:
    # Short session timeout: a killed consumer's partitions move on within seconds, not 45 s.
    return KafkaTransport(
        KafkaSettings(bootstrap_servers=bootstrap, session_timeout_ms=6000, heartbeat_interval_ms=1000)
    )


@pytest.fixture
def make_kafka(kafka_bootstrap: str) -> Any:
    return lambda: _kafka(kafka_bootstrap)


@pytest.fixture(params=["embedded", pytest.param("kafka", marks=pytest.mark.kafka)])
def transport_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    """A factory of fresh transports on one shared backend (same file, or same cluster)."""
    if request.param == "kafka":
        bootstrap = request.getfixturevalue("kafka_bootstrap")
        return lambda: _kafka(bootstrap)
    db = tmp_path / "embedded.db"
    return lambda: EmbeddedTransport(db)


@pytest.fixture
async def transport(transport_factory: Any) -> AsyncIterator[Transport]:
    t = transport_factory()
    async with t:
        yield t


@pytest.fixture
def unique() -> str:
    """A unique suffix so that tests on a shared broker never see each other's topics or groups."""
    return uuid.uuid4().hex[:10]


@pytest.fixture(scope="session")
def keys() -> dict[str, SigningKey]:
    return {node: SigningKey.generate() for node in ("FR.GN", "ES.PN", "NL.NCC", "MX.FGR")}


@pytest.fixture
def trust(keys: dict[str, SigningKey]) -> TrustStore:
    """Trusts FR.GN, ES.PN and NL.NCC; MX.FGR is a stranger."""
    return TrustStore({n: [k.public] for n, k in keys.items() if n != "MX.FGR"})


@pytest.fixture
def fr(keys: dict[str, SigningKey]) -> NodeIdentity:
    return NodeIdentity("FR.GN", keys["FR.GN"])


@pytest.fixture
def alert_data() -> dict[str, Any]:
    """The example alert's fields, sent at the test clock's time (relative times resolved)."""
    data: dict[str, Any] = example("KidnappingAlert").model_dump(mode="json", exclude={"alert_id"})
    return data


@pytest.fixture
def alert(alert_data: dict[str, Any]) -> KidnappingAlert:
    return KidnappingAlert.model_validate(alert_data)


def run_op7(home: Path, *args: str, bootstrap: str | None = None, timeout: float = 90) -> Any:
    """Run the op7 command in a real process with ``home`` as OP7_HOME (embedded transport unless ``bootstrap``: the
    test's one embedded file, which every home of the test shares as a user's homes on one machine do)."""
    import subprocess
    import sys

    env = {**os.environ, "OP7_HOME": str(home)}
    env.pop("OP7_BOOTSTRAP", None)
    # XDG_DATA_HOME comes from the autouse fixture user_data: one data folder per test, shared by its homes.
    if bootstrap:
        env["OP7_BOOTSTRAP"] = bootstrap
    return subprocess.run(
        [sys.executable, "-m", "broker.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def trusting_homes(tmp_path: Path, nodes: dict[str, str]) -> dict[str, Path]:
    """One home per node (``{"fr": "FR.GN", ...}``), under ``tmp_path``, each with its keys made by ``op7 keys new``
    and trusting every other's key card, as operators set them up."""
    homes = {short: tmp_path / short for short in nodes}
    for short, node in nodes.items():
        assert run_op7(homes[short], "keys", "new", node).returncode == 0
    for short in nodes:
        for other, node in nodes.items():
            if other != short:
                card = str(homes[other] / "keys" / f"{node}.pub")
                assert run_op7(homes[short], "keys", "trust", card).returncode == 0
    return homes


def cli_of(homes: dict[str, Path], bootstrap: str | None = None) -> Any:
    """``call(who, *args)``: the op7 command in the home ``who``, never ending in a traceback."""

    def call(who: str, *args: str) -> Any:
        result = run_op7(homes[who], *args, bootstrap=bootstrap)
        assert "Traceback" not in result.stderr, result.stderr
        return result

    call.homes = homes  # type: ignore[attr-defined]
    return call


def make_alert(alert_data: dict[str, Any], **changes: Any) -> KidnappingAlert:
    """The example alert sent now (by the test clock), with ``changes``."""
    now = default_clock().now()
    return KidnappingAlert.model_validate({**alert_data, "sent_at": now, **changes}, context={"now": now})


def now() -> datetime:
    """The test clock's time (the process default clock while a test runs)."""
    return default_clock().now()


class Background:
    """An op7 command running in ``home`` until stopped with Ctrl-C (a service: ``adapter run``, ``ops serve``,
    ``inbox watch``), its standard error in a file; embedded transport unless ``bootstrap``."""

    def __init__(self, home: Path, bootstrap: str | None, *args: str) -> None:
        env = {**os.environ, "OP7_HOME": str(home)}
        env.pop("OP7_BOOTSTRAP", None)
        if bootstrap:
            env["OP7_BOOTSTRAP"] = bootstrap
        self.log = home / f"background-{uuid.uuid4().hex[:6]}.err"
        with self.log.open("w") as err:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "broker.cli", *args], env=env, stdout=subprocess.DEVNULL, stderr=err
            )

    def stderr(self) -> str:
        return self.log.read_text()

    def wait_for(self, text: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.stderr():
            assert self.process.poll() is None, f"ended with {self.process.returncode}: {self.stderr()}"
            assert time.monotonic() < deadline, f"no {text!r} within {timeout} s: {self.stderr()}"
            time.sleep(0.2)

    def stop(self) -> str:
        """Ctrl-C (killed after 30 s); its standard error, which holds no traceback."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        err = self.stderr()
        assert "Traceback" not in err, err
        return err
