"""A stream of alerts and directed exchanges over a real cluster, and what it takes to judge it after faults.

The publisher is a node as a national node runs it (:class:`broker.node.node.Node` on a
:class:`~broker.transport.kafka.KafkaTransport`, with its :class:`~broker.node.exchange.ExchangeAgent` reading the
receipts on its inbox); each case is published by its own caller, one message after the other, as a desk would:
every publish has an outcome, and one that raised (or gave none in time) is published again by the caller. The
receivers are the op7 command in real processes, one home per node (``op7 alerts listen --json``,
``op7 inbox watch --json``): what they print is what their handler was handed.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from broker.clock import SystemClock
from broker.config import Home
from broker.errors import DeliveryError
from broker.models import KidnappingAlert, MutualLegalAssistanceRequest
from broker.node.exchange import ExchangeAgent
from broker.node.exchange_store import ExchangeState, ExchangeStore
from broker.node.node import Node
from broker.transport.kafka import KafkaTransport
from broker.trust.replay import ReplayGuard
from tests.conftest import ROOT, example

SENDER, WATCHER, RECEIVER = "FR.GN", "NL.NCC", "ES.PN"
HOMES = {"fr": SENDER, "nl": WATCHER, "es": RECEIVER}
#: Every tenth message of a case is a request to ES.PN (a directed exchange, acknowledged by a signed receipt).
REQUEST_EVERY = 10


def _cli(home: Path, *args: str, extra: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OP7_HOME": str(home), **(extra or {})}
    env.pop("OP7_BOOTSTRAP", None)
    return subprocess.run(
        [sys.executable, "-m", "broker.cli", *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def make_homes(root: Path) -> dict[str, Path]:
    """One home per node, keys made by ``op7 keys new`` and each trusting the others' cards, as operators do."""
    homes = {short: root / short for short in HOMES}
    data = {"XDG_DATA_HOME": str(root / "user-data")}
    for short, node in HOMES.items():
        done = _cli(homes[short], "keys", "new", node, extra=data)
        assert done.returncode == 0, done.stderr
    for short in HOMES:
        for other, node in HOMES.items():
            if other != short:
                done = _cli(homes[short], "keys", "trust", str(homes[other] / "keys" / f"{node}.pub"), extra=data)
                assert done.returncode == 0, done.stderr
    return homes


def copy_homes(template: dict[str, Path], root: Path) -> dict[str, Path]:
    """Fresh copies of the template homes: each test starts with empty replay and exchange stores."""
    copies = {}
    for short, path in template.items():
        copies[short] = root / short
        shutil.copytree(path, copies[short])
    return copies


# --- receivers: the op7 command in real processes -----------------------------------------------------------


@dataclass
class Line:
    """One message a receiver's handler was handed (a JSON line it printed)."""

    at: float
    life: int
    message_id: str
    case: str
    item: str


class Listener:
    """A receiving node's command (``alerts listen`` or ``inbox watch``), killed and restarted as a crash would be.

    Its JSON lines are read as they come (a thread per life); its stderr goes to a file (aiokafka's reconnect
    noise would fill a pipe and stall the process)."""

    def __init__(self, name: str, home: Path, bootstrap: str, prefix: str, args: list[str], logs: Path) -> None:
        self.name = name
        self._args = args
        self._env = {**os.environ, "OP7_HOME": str(home), "OP7_BOOTSTRAP": bootstrap, "OP7_TOPIC_PREFIX": prefix}
        self._env["XDG_DATA_HOME"] = str(logs / "user-data")
        # Dynamic group members (no OP7_KAFKA_GROUP_INSTANCE_ID): each test's receivers join the groups NL.NCC and
        # ES.PN again, and a static member of an earlier test, gone without leaving, would hold the group up to its
        # 45 s session.
        self._env.pop("OP7_KAFKA_GROUP_INSTANCE_ID", None)
        self._logs = logs
        self.lines: list[Line] = []
        self.life = 0
        self.started_at: list[float] = []
        self._process: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None
        #: Lives that ended on their own, not killed or stopped by the test: (life, exit code, end of its stderr).
        self.died: list[tuple[int, int, str]] = []

    def _ended_on_its_own(self) -> bool:
        if self._process is None or self._process.poll() is None:
            return False
        if not any(life == self.life for life, *_ in self.died):
            self.died.append((self.life, self._process.returncode, self.stderr_tail(5)))
        return True

    def start(self) -> None:
        self.life += 1
        stderr = (self._logs / f"{self.name}-{self.life}.err").open("w")
        self._process = subprocess.Popen(
            [sys.executable, "-m", "broker.cli", *self._args],
            env=self._env,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            cwd=ROOT,
        )
        stderr.close()
        self.started_at.append(time.monotonic())
        self._reader = threading.Thread(target=self._read, args=(self._process, self.life), daemon=True)
        self._reader.start()

    def _read(self, process: subprocess.Popen[str], life: int) -> None:
        assert process.stdout is not None
        for text in process.stdout:
            if '"envelope"' not in text:
                continue  # a refusal or an outage, reported as such (counted from stderr and the checks)
            data = json.loads(text)
            envelope = data["envelope"]
            body = data.get("alert") or data.get("message") or {}
            item = body.get("alert_id") or body.get("request_id") or envelope["message_id"]
            self.lines.append(Line(time.monotonic(), life, envelope["message_id"], envelope.get("case_id") or "", item))

    def kill(self) -> None:
        """SIGKILL: no clean-up of any kind."""
        if self._process is not None and not self._ended_on_its_own():
            self._process.send_signal(signal.SIGKILL)
            self._process.wait(30)
        if self._reader is not None:
            self._reader.join(10)

    def stop(self) -> None:
        """Ctrl-C, as an operator ends it; killed if it does not end within 20 s."""
        if self._process is None or self._ended_on_its_own():
            return
        self._process.send_signal(signal.SIGINT)
        try:
            self._process.wait(20)
        except subprocess.TimeoutExpired:
            self.kill()
        if self._reader is not None:
            self._reader.join(10)

    def alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def errors(self) -> int:
        """ERROR lines on its stderr over all its lives (the client's reconnect noise among them)."""
        return sum(p.read_text(errors="replace").count("ERROR") for p in self._logs.glob(f"{self.name}-*.err"))

    def stderr_tail(self, lines: int = 15) -> str:
        path = self._logs / f"{self.name}-{self.life}.err"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""

    def handed(self) -> Counter[str]:
        return Counter(line.message_id for line in self.lines)

    def first_after(self, moment: float, life: int | None = None) -> float | None:
        """When the first message after ``moment`` (of life ``life``) was handed over."""
        times = [x.at for x in self.lines if x.at >= moment and (life is None or x.life == life)]
        return min(times) if times else None


def alert_listener(homes: dict[str, Path], bootstrap: str, prefix: str, logs: Path) -> Listener:
    return Listener(
        "alerts-listen", homes["nl"], bootstrap, prefix, ["alerts", "listen", "--as", WATCHER, "--json"], logs
    )


def inbox_watcher(homes: dict[str, Path], bootstrap: str, prefix: str, logs: Path) -> Listener:
    contact = ["--agency", "Policia Nacional", "--desk", "Sala del 091", "--phone", "+34910000000"]
    args = ["inbox", "watch", "--as", RECEIVER, "--json", "--tick", "1", *contact]
    return Listener("inbox-watch", homes["es"], bootstrap, prefix, args, logs)


# --- the publisher: a node, a caller per case -------------------------------------------------------------


@dataclass
class Attempt:
    """One publish call and its outcome: acknowledged (it returned), or the error it raised."""

    case: str
    item: str
    kind: str
    started: float
    ended: float
    message_id: str | None = None
    partition: int | None = None
    error: str | None = None
    #: A new publish of the message (not the outbox's copy of an earlier one sent again).
    fresh: bool = True

    @property
    def seconds(self) -> float:
        return self.ended - self.started


@dataclass
class Plan:
    """What the stream publishes: ``per_case`` messages for each of ``cases``, at ``rate`` messages a second."""

    cases: list[str]
    per_case: int
    rate: float
    #: Seconds a caller gives one publish for an outcome before it gives up on it and publishes again.
    patience: float = 90.0

    @property
    def total(self) -> int:
        return len(self.cases) * self.per_case


class Pace:
    """A steady rate for all callers together, without catching up after a stall (a real flow does not)."""

    def __init__(self, rate: float) -> None:
        self._gap = 1.0 / rate
        self._next = time.monotonic()

    async def take(self) -> None:
        now = time.monotonic()
        self._next = max(self._next, now) + self._gap
        await asyncio.sleep(max(0.0, self._next - self._gap - now))


@dataclass
class Publisher:
    """FR.GN's node and exchange agent, publishing the plan; every attempt is kept."""

    home: Path
    bootstrap: str
    prefix: str
    plan: Plan
    attempts: list[Attempt] = field(default_factory=list)
    node: Node = field(init=False)
    agent: ExchangeAgent = field(init=False)

    def __post_init__(self) -> None:
        home = Home(self.home)
        self.node = Node(
            KafkaTransport(bootstrap_servers=self.bootstrap),
            home.trust(),
            home.identity(SENDER),
            topic_prefix=self.prefix,
            opener=home.opener(SENDER),
            replay_guard=ReplayGuard(self.home / "replay-FR.GN.db"),
            clock=SystemClock(),
        )
        source = example("MutualLegalAssistanceRequest")
        self.store = ExchangeStore(self.home / "exchanges-FR.GN.db")
        self.agent = ExchangeAgent(self.node, self.store, source.requesting_authority)
        self._request = source.model_dump(mode="json") | {"handling": {"tlp": "AMBER"}}
        self._alert = example("KidnappingAlert").model_dump(mode="json")
        self._final: tuple[int, int] | None = None

    def message(self, case: str, seq: int) -> tuple[str, Any]:
        item = f"{case}-{seq:05d}"
        if seq % REQUEST_EVERY == REQUEST_EVERY - 1:
            return "request", MutualLegalAssistanceRequest.model_validate(
                self._request | {"request_id": item, "case_id": case}
            )
        return "alert", KidnappingAlert.model_validate(self._alert | {"alert_id": item, "case_id": case})

    async def _publish(self, kind: str, case: str, message: Any) -> tuple[str, int]:
        if kind == "request":
            # One conversation per case: its requests share a partition, so their order can be checked.
            sent = await self.agent.send(message, conversation_id=f"conv-{case}")
        else:
            sent = await self.node.publish(message)
        return sent.envelope.message_id, sent.sent.partition

    async def _again(self, message_id: str) -> tuple[str, int | None]:
        """Send a message kept in the outbox again, the same bytes (as ``op7 outbox retry`` does)."""
        partition = None
        # No copy left: the outbox had it acknowledged in the background meanwhile.
        for result in await self.node.courier.retry(self.node.outbox.copies([message_id])):
            if isinstance(result, BaseException):
                raise result
            partition = result.partition
        return message_id, partition

    async def caller(self, case: str, pace: Pace) -> None:
        """One case's desk: each message once acknowledged, in order. A publish that raised is tried again: the
        same bytes when the node kept it in its outbox (DeliveryError names it), else published anew."""
        for seq in range(self.plan.per_case):
            kind, message = self.message(case, seq)
            await pace.take()
            kept: str | None = None
            while True:
                started = time.monotonic()
                attempt = Attempt(case, f"{case}-{seq:05d}", kind, started, started, fresh=kept is None)
                self.attempts.append(attempt)
                try:
                    async with asyncio.timeout(self.plan.patience):
                        if kept is None:
                            attempt.message_id, attempt.partition = await self._publish(kind, case, message)
                        else:
                            attempt.message_id, attempt.partition = await self._again(kept)
                except TimeoutError:
                    attempt.error = f"no outcome after {self.plan.patience:g} s"
                except DeliveryError as exc:
                    attempt.error = f"DeliveryError {exc.outcome}: {exc}"
                    kept = exc.message_id
                except Exception as exc:  # the caller's view: it failed, say why, publish again
                    attempt.error = f"{type(exc).__name__}: {exc}"
                attempt.ended = time.monotonic()
                if attempt.error is None:
                    break
                await asyncio.sleep(0.5)

    async def receipts(self) -> None:
        """The agent reading FR.GN's inbox: receipts of ES.PN move the exchanges to delivered."""
        await self.agent.serve(lambda _d: None, tick_every=1.0)

    # --- what happened ----------------------------------------------------------------------------------

    def acknowledged(self, kind: str | None = None) -> list[Attempt]:
        return [a for a in self.attempts if a.error is None and (kind is None or a.kind == kind)]

    def failed(self) -> list[Attempt]:
        return [a for a in self.attempts if a.error is not None]

    def close(self) -> None:
        """Close the exchange store, keeping what it said of the receipts."""
        self._final = self.delivered()
        self.store.close()

    def delivered(self) -> tuple[int, int]:
        """Acknowledged requests whose receipt came back (delivered or accepted), of all acknowledged requests."""
        if self._final is not None:
            return self._final
        done = (ExchangeState.DELIVERED, ExchangeState.ACCEPTED, ExchangeState.ANSWERED)
        ids = [a.message_id for a in self.acknowledged("request")]
        states = [self.store.get(i) for i in ids if i is not None]
        return sum(1 for s in states if s is not None and s.state in done), len(ids)

    def acked_after(self, moment: float) -> dict[str, float]:
        """For each case, when the first new message published after ``moment`` was acknowledged: the case is
        publishable again (a kept copy sent again would not show that the node can send new ones)."""
        first: dict[str, float] = {}
        for a in sorted(self.acknowledged(), key=lambda a: a.ended):
            if a.fresh and a.started >= moment:
                first.setdefault(a.case, a.ended)
        return first


def cases(count: int) -> list[str]:
    return [f"FR-GN-2026-{n:06d}" for n in range(1, count + 1)]
