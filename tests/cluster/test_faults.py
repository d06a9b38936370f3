"""The fault suite: alerts and directed exchanges stream over a 3-broker KRaft cluster (RF 3, min.insync.replicas 2)
while a broker crashes, the receiving processes crash, and the whole cluster restarts.

Each test streams its share of 10,000 messages (nine alerts to one request, over ten cases) from a node as national
nodes run it, to receivers that are the op7 command in real processes, and injects its fault mid-stream. Then, as
Kafka's replication tests do: consumed equals acknowledged (nothing lost), nothing handed twice to a handler, each
case's messages handed over in the order they were acknowledged, every acknowledged request's receipt back. After the
whole-cluster restart every case must be publishable again by the same node, without restarting it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiokafka import TopicPartition
from aiokafka.client import AIOKafkaClient

from tests.cluster.conftest import Cluster, report
from tests.cluster.stream import (
    Listener,
    Pace,
    Plan,
    Publisher,
    alert_listener,
    cases,
    copy_homes,
    inbox_watcher,
    make_homes,
)
from tests.cluster.verdict import Verdict, handed_again, judge

pytestmark = pytest.mark.kafka

CASES = cases(10)
#: Messages of each test: 10,000 in all.
SHARES = {"broker": 334, "consumers": 333, "cluster": 333}
#: Messages a second from all callers together: each test streams for about 30 s, long enough to span its fault.
RATE = 110.0
#: Seconds the receivers have, once the stream ended, to hand over what was acknowledged and return the receipts.
DRAIN = 90.0
#: Seconds after the brokers are back within which every case must be acknowledged again.
RECOVERY = 60.0
#: The most records a receiver handles before it makes them durable (Subscription.max_batch): what a crash repeats.
BATCH = 500


@dataclass
class Tally:
    """The module's counts, reported once at the end (even when a test failed)."""

    streamed: int = 0
    faults: list[str] = field(default_factory=list)
    lost: int = 0
    duplicated: int = 0
    repeated_by_crash: int = 0
    out_of_order: int = 0
    receipts: list[int] = field(default_factory=lambda: [0, 0])
    figures: list[str] = field(default_factory=list)

    def add(self, run: Run) -> list[Verdict]:
        """Count one run in; its verdicts."""
        verdicts = run.verdicts()
        self.streamed += len(run.publisher.acknowledged())
        self.lost += sum(len(v.lost) for v in verdicts)
        self.duplicated += sum(n - 1 for v in verdicts for n in v.duplicated.values())
        self.out_of_order += sum(len(v.out_of_order) for v in verdicts)
        done, asked = run.publisher.delivered()
        self.receipts[0] += done
        self.receipts[1] += asked
        return verdicts


@pytest.fixture(scope="module")
def tally() -> Iterator[Tally]:
    counts = Tally()
    yield counts
    report(
        f"faults: streamed {counts.streamed}, faults injected {len(counts.faults)} ({', '.join(counts.faults)}), "
        f"lost {counts.lost}, duplicated {counts.duplicated} (of which {counts.repeated_by_crash} the killed "
        f"receivers' last unflushed batch), order violations {counts.out_of_order}, "
        f"receipts {counts.receipts[0]}/{counts.receipts[1]}"
    )
    for line in counts.figures:
        report(f"faults: {line}")


@pytest.fixture(scope="module")
def template_homes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return make_homes(tmp_path_factory.mktemp("fault-homes"))


class Run:
    """One stream over the cluster: the publishing node, the two receiving processes, the fault beside them."""

    def __init__(self, cluster: Cluster, homes: dict[str, Path], logs: Path, per_case: int) -> None:
        self.cluster = cluster
        self.prefix = f"op7.f{uuid.uuid4().hex[:10]}"
        self.plan = Plan(CASES, per_case, RATE)
        self.publisher = Publisher(homes["fr"], cluster.bootstrap, self.prefix, self.plan)
        self.alerts = alert_listener(homes, cluster.bootstrap, self.prefix, logs)
        self.inbox = inbox_watcher(homes, cluster.bootstrap, self.prefix, logs)
        self.stream_ended: float | None = None
        self._began = time.monotonic()
        #: What happened when, in seconds from the start: the figures report it.
        self.timeline: list[str] = []

    def mark(self, what: str) -> None:
        self.timeline.append(f"{what} {time.monotonic() - self._began:.0f}")

    def acked(self) -> int:
        return len(self.publisher.acknowledged())

    async def until(self, done: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not done():
            if time.monotonic() > deadline:
                raise AssertionError(f"{what}: not within {timeout:g} s")
            await asyncio.sleep(0.1)

    async def until_acked(self, share: float) -> None:
        await self.until(
            lambda: self.acked() >= share * self.plan.total, 120, f"{share:.0%} of the stream acknowledged"
        )

    async def in_thread(self, what: str, action: Callable[[], None]) -> float:
        """Run a blocking cluster action beside the stream; returns the seconds it took."""
        started = time.monotonic()
        self.mark(what)
        await asyncio.to_thread(action)
        self.mark("done")
        return time.monotonic() - started

    async def leader(self, partition: int = 0) -> int:
        """The broker leading a partition of the alerts topic (its node id is its number in scripts/kafka)."""
        client = AIOKafkaClient(bootstrap_servers=self.cluster.bootstrap)
        try:
            await client.bootstrap()
            metadata = await client.fetch_all_metadata()
            leader = metadata.leader_for_partition(TopicPartition(f"{self.prefix}.alerts", partition))
        finally:
            await client.close()
        assert isinstance(leader, int) and leader >= 1, f"no leader for {self.prefix}.alerts[{partition}]"
        return leader

    def complete(self) -> bool:
        """Everything acknowledged was handed over, and every acknowledged request's receipt came back."""
        alerts = {a.message_id for a in self.publisher.acknowledged("alert")}
        requests = {a.message_id for a in self.publisher.acknowledged("request")}
        done, asked = self.publisher.delivered()
        return alerts <= set(self.alerts.handed()) and requests <= set(self.inbox.handed()) and done == asked

    async def stream(self, fault: Callable[[Run], Awaitable[None]]) -> None:
        """Publish the plan with ``fault`` beside it, then let the receivers drain."""
        async with self._running():
            callers = [asyncio.create_task(self.publisher.caller(c, self._pace)) for c in CASES]
            try:
                await fault(self)
                # The rest of the stream, with room for what the fault held up.
                left = (self.plan.total - self.acked()) / RATE + RECOVERY
                done, _ = await asyncio.wait(callers, timeout=left)
                for task in done:
                    task.result()
            finally:
                for task in callers:
                    task.cancel()
                await asyncio.gather(*callers, return_exceptions=True)
                self.stream_ended = time.monotonic()
                self.mark("stream ended")
            unfinished = [c for c, t in zip(CASES, callers, strict=True) if t.cancelled()]
            # Drained even when the stream gave up: what was acknowledged must arrive all the same.
            with contextlib.suppress(AssertionError):
                await self.until(self.complete, DRAIN, "drain")
            self.mark("drained" if self.complete() else "drain gave up")
            await asyncio.sleep(1.0)  # a late second copy would show now
            assert not unfinished, self._stuck(unfinished)

    @contextlib.asynccontextmanager
    async def _running(self) -> AsyncIterator[None]:
        self._pace = Pace(RATE)
        self._began = time.monotonic()
        await self.publisher.node.start()
        self.mark("node started")
        receipts = asyncio.create_task(self.publisher.receipts())
        self.alerts.start()
        self.inbox.start()
        try:
            yield
        finally:
            self.alerts.stop()
            self.inbox.stop()
            receipts.cancel()
            await asyncio.gather(receipts, return_exceptions=True)
            with contextlib.suppress(Exception):
                async with asyncio.timeout(30):
                    await self.publisher.node.stop()
            self.publisher.close()

    def _stuck(self, unfinished: list[str]) -> str:
        """Which cases could not be published to the end, where their messages go, and what their last publish said."""
        partitions = {a.case: a.partition for a in self.publisher.acknowledged("alert")}
        lines = [f"{len(unfinished)} of {len(CASES)} cases not published to the end (the stream gave up):"]
        for case in unfinished:
            mine = [a for a in self.publisher.attempts if a.case == case]
            failures = [a for a in mine if a.error is not None]
            last = mine[-1] if mine else None
            lines.append(
                f"  {case} (alerts partition {partitions.get(case)}): {len(failures)} failed publishes, the last "
                f"{last.error if last else '-'} after {last.seconds if last else 0:.1f} s"
            )
        return "\n".join(lines)

    def verdicts(self) -> list[Verdict]:
        return [
            judge("alerts", self.publisher.acknowledged("alert"), self.alerts.lines),
            judge("requests", self.publisher.acknowledged("request"), self.inbox.lines),
        ]

    def failures(self) -> str:
        """What the callers saw fail, by error, for the report."""
        kinds: dict[str, int] = {}
        for a in self.publisher.failed():
            text = (a.error or "").split(":")[0] if "no outcome" not in (a.error or "") else (a.error or "")
            kinds[text] = kinds.get(text, 0) + 1
        return ", ".join(f"{n} x {k}" for k, n in sorted(kinds.items(), key=lambda kv: -kv[1])) or "none"

    def no_outcome(self) -> list[str]:
        return [f"{a.case} {a.kind} {a.item}" for a in self.publisher.failed() if "no outcome" in (a.error or "")]


def check(run: Run, verdicts: list[Verdict], *, repeated: Collection[str] = ()) -> None:
    """Nothing lost, nothing handed twice (but ``repeated``), order kept, receipts complete, every publish answered."""
    problems = []
    for v in verdicts:
        duplicated = {mid: n for mid, n in v.duplicated.items() if mid not in repeated}
        if v.lost or duplicated or v.out_of_order:
            problems.append(v.details())
    for receiver in (run.alerts, run.inbox):
        for life, code, tail in receiver.died:
            problems.append(f"{receiver.name} (life {life}) ended on its own with exit code {code}:\n{tail}")
    done, asked = run.publisher.delivered()
    if done != asked:
        problems.append(f"receipts {done}/{asked}: {asked - done} acknowledged requests without their receipt")
    if run.no_outcome():
        problems.append(f"publishes without an outcome within {run.plan.patience:g} s: {run.no_outcome()[:8]}")
    assert not problems, "\n".join(problems)


@pytest.fixture
def homes(template_homes: dict[str, Path], tmp_path: Path) -> dict[str, Path]:
    return copy_homes(template_homes, tmp_path / "homes")


async def test_a_broker_killed_mid_stream_and_restarted_loses_nothing(
    cluster: Cluster, homes: dict[str, Path], tmp_path: Path, tally: Tally
) -> None:
    run = Run(cluster, homes, tmp_path, SHARES["broker"])
    killed: list[int] = []

    async def crash(run: Run) -> None:
        await run.until_acked(0.2)
        killed.append(await run.leader())
        await run.in_thread("kill", lambda: cluster.kill(killed[0]))
        tally.faults.append(f"broker {killed[0]} SIGKILLed")
        await run.until_acked(0.35)  # on two brokers: min.insync.replicas 2 still holds
        await run.in_thread("restart", lambda: cluster.restart(killed[0]))

    try:
        await run.stream(crash)
    finally:
        await asyncio.to_thread(cluster.start_all)
        verdicts = tally.add(run)
        stall = max((a.seconds for a in run.publisher.attempts), default=0.0)
        tally.figures.append(
            f"broker {killed[0] if killed else '-'} killed: longest publish {stall:.1f} s, failed publishes "
            f"{run.failures()}; receivers' stderr ERROR lines {run.alerts.errors() + run.inbox.errors()}; "
            f"at s: {', '.join(run.timeline)}"
        )
    check(run, verdicts)


async def test_receivers_killed_mid_batch_and_restarted_lose_nothing(
    cluster: Cluster, homes: dict[str, Path], tmp_path: Path, tally: Tally
) -> None:
    run = Run(cluster, homes, tmp_path, SHARES["consumers"])
    restarted: list[float] = []

    async def crash(run: Run) -> None:
        await run.until_acked(0.35)
        # Mid-batch: right after each receiver handed a message over.
        for listener in (run.alerts, run.inbox):
            await run.until(functools.partial(_busy, listener), 30, f"{listener.name} handing messages over")
            listener.kill()
        run.mark("receivers killed")
        tally.faults.append("alerts listener and inbox watcher SIGKILLed")
        await asyncio.sleep(1.0)
        restarted.append(time.monotonic())
        run.alerts.start()
        run.inbox.start()

    repeated: set[str] = set()
    strays: set[str] = set()
    try:
        await run.stream(crash)
    finally:
        await asyncio.to_thread(cluster.start_all)
        verdicts = tally.add(run)
        for listener in (run.alerts, run.inbox):
            again, outside = handed_again(listener.lines, 1, BATCH)
            repeated |= again
            strays |= outside
        tally.repeated_by_crash += len(repeated)
        tally.figures.append(
            f"receivers killed: the restarted ones waited for their partitions {_waits(run, restarted)}; "
            f"handed again {len(repeated)} (bound: one batch of {BATCH}); at s: {', '.join(run.timeline)}"
        )
    assert not strays, f"handed again beyond the killed receivers' last batch: {sorted(strays)[:8]}"
    assert len(repeated) <= BATCH
    check(run, verdicts, repeated=repeated)


def _waits(run: Run, restarted: list[float]) -> str:
    """How long each restarted receiver took to hand its first message over."""
    if not restarted:
        return "-"
    waits = [(lst.name, lst.first_after(restarted[0], 2)) for lst in (run.alerts, run.inbox)]
    return ", ".join(f"{name} {f'{first - restarted[0]:.1f} s' if first else 'never'}" for name, first in waits)


def _busy(listener: Listener) -> bool:
    return bool(listener.lines) and time.monotonic() - listener.lines[-1].at < 0.05


async def test_the_whole_cluster_restarted_mid_stream_every_case_publishable_again_without_restarting_the_node(
    cluster: Cluster, homes: dict[str, Path], tmp_path: Path, tally: Tally
) -> None:
    run = Run(cluster, homes, tmp_path, SHARES["cluster"])
    back: list[float] = []
    figures: dict[str, float] = {}

    async def restart_all(run: Run) -> None:
        await run.until_acked(0.3)
        figures["stop"] = await run.in_thread("stop all", cluster.stop_all)
        tally.faults.append("all 3 brokers stopped and started")
        await asyncio.sleep(3.0)
        figures["start"] = await run.in_thread("start all", cluster.start_all)
        back.append(time.monotonic())
        with contextlib.suppress(AssertionError):
            await run.until(lambda: len(run.publisher.acked_after(back[0])) == len(CASES), RECOVERY, "recovery")

    try:
        await run.stream(restart_all)
    finally:
        await asyncio.to_thread(cluster.start_all)
        verdicts = tally.add(run)
        if back:
            _recovery_figures(run, back[0], figures, tally)
    firsts = run.publisher.acked_after(back[0])
    late = {c: f"{t - back[0]:.1f} s" for c, t in firsts.items() if t - back[0] > RECOVERY}
    assert len(firsts) == len(CASES) and not late, f"cases published again too late (bound {RECOVERY:g} s): {late}"
    check(run, verdicts)


def _recovery_figures(run: Run, back: float, figures: dict[str, float], tally: Tally) -> None:
    firsts = run.publisher.acked_after(back)
    recovered = f"{max(firsts.values()) - back:.1f} s" if len(firsts) == len(CASES) else "never within the test"
    consumed = run.alerts.first_after(back)
    tally.figures.append(
        f"whole cluster restarted (stopped in {figures.get('stop', 0):.0f} s, back in {figures.get('start', 0):.0f} s):"
        f" every case published again after {recovered} ({len(firsts)}/{len(CASES)} cases); alerts listener handing"
        f" over again after {f'{consumed - back:.1f} s' if consumed else 'never'}; failed publishes {run.failures()};"
        f" receivers' stderr ERROR lines {run.alerts.errors() + run.inbox.errors()}; at s: {', '.join(run.timeline)}"
    )
