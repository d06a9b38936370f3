"""Live listeners under attack: what was sent where, what became of each record, and the command-line listener.

A :class:`Ledger` knows every hostile record by where it landed (topic, partition, offset) and its category, and is
told by the listener's callbacks what became of each: refused with a reason (quarantined), held until the directory
knows its sender (with its reason), or recognised as a duplicate; the handler's deliveries are kept apart.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from broker.errors import MessageError
from broker.models import Envelope
from broker.node.subscription import Delivery, Subscription
from broker.transport.base import Record

__all__ = ["CliListener", "Hostile", "Ledger", "Place", "eventually"]

Place = tuple[str, int, int]


async def eventually(condition: Callable[[], bool], timeout: float, what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, f"not within {timeout:.0f} s: {what}"
        await asyncio.sleep(0.1)


@dataclass(frozen=True)
class Hostile:
    """One hostile record to send: its category, what it is, the reasons it may be refused with (``duplicate`` for
    a copy of a message already handled), where and how it goes."""

    category: str
    label: str
    expect: frozenset[str]
    topic: str
    value: bytes
    key: bytes | None = None


@dataclass
class Ledger:
    """Every hostile record sent, what the listener did with it, and what it handed to the handler."""

    sent: dict[Place, Hostile] = field(default_factory=dict)
    outcomes: dict[Place, list[str]] = field(default_factory=lambda: defaultdict(list))
    delivered: list[Delivery] = field(default_factory=list)
    #: Where each delivered message was read: a hostile record found here reached the handler.
    delivered_at: dict[Place, str] = field(default_factory=dict)
    #: Refusals without a usable reason or detail (there must be none).
    strays: list[str] = field(default_factory=list)
    legit: dict[str, str] = field(default_factory=dict)

    def place(self, where: Place, hostile: Hostile) -> None:
        self.sent[where] = hostile

    def handler(self, delivery: Delivery) -> None:
        self.delivered.append(delivery)
        record = delivery.record
        self.delivered_at[(record.topic, record.partition, record.offset)] = delivery.envelope.message_id

    def refused(self, record: Record, error: MessageError) -> None:
        where = (record.topic, record.partition, record.offset)
        if not error.reason or not str(error) or error.reason == "internal-error":
            self.strays.append(f"{where}: refused without a usable reason: {error.reason!r}: {error}")
        self.outcomes[where].append(error.reason)

    def strangers(self) -> list[str]:
        """Records refused or passed over that were not sent as hostile (a legitimate message, say): none may be."""
        outcomes = self.outcomes.items()
        return [f"{where}: {seen}, not sent as hostile" for where, seen in outcomes if where not in self.sent]

    def duplicate(self, record: Record, envelope: Envelope) -> None:
        self.outcomes[(record.topic, record.partition, record.offset)].append("duplicate")

    def note_held(self, sub: Subscription) -> None:
        """The frames ``sub`` holds until the directory lists their sender: refused for now, with their reason."""
        for held in sub.held.frames():
            where = (held.record.topic, held.record.partition, held.record.offset)
            mark = f"held:{held.reason}"
            if mark not in self.outcomes[where]:
                self.outcomes[where].append(mark)

    def of(self, category: str) -> list[tuple[Place, Hostile]]:
        return [(where, h) for where, h in self.sent.items() if h.category == category]

    def settled(self, category: str) -> bool:
        return all(self.outcomes.get(where) or where in self.delivered_at for where, _ in self.of(category))

    def wrong(self, category: str) -> list[str]:
        """Records of ``category`` with an outcome they were not expected to have."""
        out = []
        for where, hostile in self.of(category):
            seen = [o.removeprefix("held:") for o in self.outcomes.get(where, [])]
            if where in self.delivered_at:
                seen.append("handed to the handler")
            if not seen or any(o not in hostile.expect for o in seen):
                out.append(
                    f"{hostile.label} at {where}: {seen or 'no outcome'}, expected one of {sorted(hostile.expect)}"
                )
        return out

    def reasons(self, category: str) -> Counter[str]:
        return Counter(self.outcomes[where][0] for where, _ in self.of(category) if self.outcomes.get(where))

    def delivered_ids(self) -> Counter[str]:
        return Counter(d.envelope.message_id for d in self.delivered)


class CliListener:
    """``op7 alerts listen --as NODE --json`` in a real process, as a user runs it: its JSON lines as they come."""

    def __init__(self, home: Path, node: str, bootstrap: str, prefix: str, stderr: Path) -> None:
        self.home, self.node, self.bootstrap, self.prefix, self.stderr_path = home, node, bootstrap, prefix, stderr
        self.lines: list[dict[str, Any]] = []
        self.unparsed: list[str] = []
        self.proc: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None

    async def start(self) -> None:
        env = {
            **os.environ,
            "OP7_HOME": str(self.home),
            "OP7_BOOTSTRAP": self.bootstrap,
            "OP7_TOPIC_PREFIX": self.prefix,
        }
        self._stderr = self.stderr_path.open("wb")
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "broker.cli",
            "alerts",
            "listen",
            "--as",
            self.node,
            "--json",
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=self._stderr,
            limit=1 << 24,
        )
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        while line := await self.proc.stdout.readline():
            try:
                self.lines.append(json.loads(line))
            except ValueError:
                self.unparsed.append(line.decode(errors="replace"))

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    def delivered_ids(self) -> Counter[str]:
        return Counter(line["envelope"]["message_id"] for line in self.lines if "envelope" in line)

    def refused(self) -> list[dict[str, Any]]:
        return [line["refused"] for line in self.lines if "refused" in line]

    def held(self) -> list[str]:
        """The stderr lines that say a frame is held until the directory lists its sender."""
        return [line for line in self.stderr_path.read_text(errors="replace").splitlines() if " held " in f" {line}"]

    async def stop(self) -> int:
        assert self.proc is not None
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                await asyncio.wait_for(self.proc.wait(), 30)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        if self._reader is not None:
            await self._reader
        self._stderr.close()
        return self.proc.returncode or 0
