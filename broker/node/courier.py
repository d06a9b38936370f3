"""Sending through the outbox: each copy is recorded before it is sent, waited for up to the delivery timeout, and
sent again with the same bytes, in the background, until the transport acknowledges it."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from broker.clock import Clock
from broker.errors import DeliveryError, TransportError
from broker.models.answers import short_name
from broker.node.outbox import Outbox, Outgoing, State
from broker.transport.base import Sent, Transport

__all__ = ["Courier"]

log = logging.getLogger("op7.node.outbox")

Ident = tuple[str, str]
#: A case's copies on one topic: its topic and record key.
Case = tuple[str, bytes | None]


@dataclass
class _Run:
    """Copies of one case sent together, in order; the task's result is each copy's outcome."""

    copies: list[Outgoing]
    task: asyncio.Task[list[BaseException | Sent]]

    def index(self, copy: Outgoing) -> int:
        return next(i for i, c in enumerate(self.copies) if c.ident == copy.ident)

    def succeeded(self) -> bool:
        return not self.task.cancelled() and all(isinstance(r, Sent) for r in self.task.result())


#: The outcome of a copy not sent because an earlier copy of its case is not acknowledged.
_BEHIND = TransportError("an earlier message of its case is not acknowledged yet", retriable=True)


class Courier:
    """Delivers outbox copies on one transport. ``prepare`` is awaited before copies go to a topic (the node makes
    sure it exists); ``on_change`` is told, at most every half second, how many copies are pending (a metric).

    The copies of one case (one topic and record key) handed over together go to the transport together, in order;
    a later group of the case waits until the one before it is acknowledged, and is not sent if that failed (it then
    stays pending behind it): a retry never puts a case's messages out of order.
    """

    def __init__(
        self,
        transport: Transport,
        outbox: Outbox,
        clock: Clock,
        *,
        prepare: Callable[[str], Awaitable[None]],
        timeout: float = 30.0,
        retry_every: float = 2.0,
    ) -> None:
        self.transport = transport
        self.outbox = outbox
        self.clock = clock
        self.timeout = timeout
        self.retry_every = retry_every
        self._prepare = prepare
        self._in_flight: dict[Ident, _Run] = {}
        self._tails: dict[Case, _Run] = {}
        #: Whether the outbox may hold pending copies not in flight: new copies of their case then go after them.
        self._backlog = True
        self._retrier: asyncio.Task[None] | None = None
        self._count_due: asyncio.TimerHandle | None = None
        self.on_change: Callable[[int], None] | None = None
        #: Why nothing can be sent now (the cluster out of reach when the node started): copies are only recorded.
        self.held: str | None = None

    def start(self) -> None:
        """Send again, in the background, what an earlier run or attempt left pending."""
        if self._retrier is None:
            self._retrier = asyncio.create_task(self._retry_forever(), name="op7-outbox")

    async def stop(self) -> None:
        if self._retrier is not None:
            self._retrier.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._retrier
            self._retrier = None
        if self._count_due is not None:
            self._count_due.cancel()
            self._count_due = None
        # Copies in flight settle as the transport stops (acknowledged, or failed and left pending for the next run).
        if self._in_flight:
            await asyncio.wait({run.task for run in self._in_flight.values()}, timeout=self.timeout)

    async def deliver(self, copies: Sequence[Outgoing]) -> list[Sent]:
        """Record ``copies`` in the outbox, send them and wait up to the delivery timeout for all.

        :class:`DeliveryError` names the message, its case and topic, and the outcome: ``pending`` (not acknowledged
        in time or a retriable failure: it stays in the outbox and is sent again with the same bytes) or ``failed``.
        """
        self.outbox.put(copies)
        self._changed()
        if self.held is not None:
            raise self._error(copies[0], self.held, "pending")
        results = await self._wait(copies, self._attempt(copies, older=self._backlog))
        for copy, result in zip(copies, results, strict=True):
            if isinstance(result, DeliveryError):
                raise result
            if isinstance(result, BaseException):
                outcome = "pending" if _retriable(result) else "failed"
                raise self._error(copy, str(result), outcome) from result
        return [r for r in results if isinstance(r, Sent)]

    async def retry(self, copies: Sequence[Outgoing]) -> list[BaseException | Sent]:
        """Send ``copies`` again now (``op7 outbox retry``), waiting up to the delivery timeout for them."""
        waiting = [c for c in copies if c.ident not in self._in_flight]
        self._attempt(waiting, older=False)
        return await self._wait(copies, [self._in_flight[c.ident] for c in copies])

    async def _wait(self, copies: Sequence[Outgoing], runs: Sequence[_Run]) -> list[BaseException | Sent]:
        tasks = {run.task for run in runs}
        done, _ = await asyncio.wait(tasks, timeout=self.timeout) if tasks else (set(), set())
        results: list[BaseException | Sent] = []
        for copy, run in zip(copies, runs, strict=True):
            if run.task not in done or run.task.cancelled():
                results.append(self._error(copy, f"not acknowledged within {self.timeout:g} s", "pending"))
            else:
                results.append(run.task.result()[run.index(copy)])
        return results

    def _attempt(self, copies: Sequence[Outgoing], *, older: bool) -> list[_Run]:
        """Start sending ``copies``, one run per case (after the copies of the case still pending, with ``older``);
        returns each copy's run."""
        cases: dict[Case, list[Outgoing]] = {}
        for copy in copies:
            cases.setdefault((copy.topic, copy.key), []).append(copy)
        for case, group in cases.items():
            if older:
                earlier = [c for c in self.outbox.before(group[0]) if c.ident not in self._in_flight]
                group[:0] = earlier
            run = _Run(group, asyncio.create_task(self._send(group, self._tails.get(case))))
            self._tails[case] = run
            for copy in group:
                self._in_flight[copy.ident] = run
            run.task.add_done_callback(functools.partial(self._settled, case, run))
        return [self._in_flight[copy.ident] for copy in copies]

    async def _send(self, group: list[Outgoing], after: _Run | None) -> list[BaseException | Sent]:
        """The results of sending ``group`` in order: each copy's acknowledgement or error. Never raises."""
        if after is not None:
            await asyncio.wait([after.task])
            if not after.succeeded():
                return [_BEHIND] * len(group)
        try:
            await self._prepare(group[0].topic)
            queued: list[Awaitable[Sent]] = []
            for copy in group:
                queued.append(await self.transport.send_soon(copy.topic, copy.frame, key=copy.key))
        except Exception as exc:  # what was queued is awaited; the rest of the case is not sent, to keep its order
            done = await asyncio.gather(*queued, return_exceptions=True) if queued else []
            return [*done, exc, *([_BEHIND] * (len(group) - len(done) - 1))]
        return list(await asyncio.gather(*queued, return_exceptions=True))

    def _settled(self, case: Case, run: _Run, _: object = None) -> None:
        # A send outlives a caller's deadline: whenever it ends, the outbox learns how.
        if self._tails.get(case) is run:
            del self._tails[case]
        for copy in run.copies:
            if self._in_flight.get(copy.ident) is run:
                del self._in_flight[copy.ident]
        if run.task.cancelled():
            return
        acknowledged = []
        try:
            for copy, result in zip(run.copies, run.task.result(), strict=True):
                if isinstance(result, Sent):
                    acknowledged.append(copy.ident)
                    if copy.attempts:
                        log.info(
                            "%s %s delivered to %s after %d retries",
                            copy.message_type,
                            copy.message_id,
                            copy.topic,
                            copy.attempts,
                        )
                else:
                    self._backlog = True
                    self.outbox.attempted(copy.ident, self.clock.now(), str(result), permanent=not _retriable(result))
            self.outbox.acknowledged(acknowledged)
        except Exception:  # the outbox closed under a late acknowledgement: the copy is sent again, a duplicate
            log.debug("outbox not updated for %s", case, exc_info=True)
        self._changed()

    async def _retry_forever(self) -> None:
        while True:
            try:
                due = [c for c in self.outbox.due(self.clock.now()) if c.ident not in self._in_flight]
                self._attempt(due, older=False)
                self._backlog = bool(due) or self.outbox.count(State.PENDING) > len(self._in_flight)
            except Exception:  # an outbox that cannot be read now is read at the next turn
                log.warning("outbox not readable", exc_info=True)
            await asyncio.sleep(self.retry_every)

    def _changed(self) -> None:
        # Counting is a query: once for however many changes in half a second.
        if self.on_change is not None and self._count_due is None:
            self._count_due = asyncio.get_running_loop().call_later(0.5, self._count)

    def _count(self) -> None:
        self._count_due = None
        if self.on_change is not None:
            with contextlib.suppress(Exception):
                self.on_change(self.outbox.count(State.PENDING))

    def _error(self, copy: Outgoing, why: str, outcome: str) -> DeliveryError:
        case = f" (case {copy.case_id})" if copy.case_id else ""
        what = f"{short_name(copy.message_type)} {copy.message_id}{case} to {copy.topic}"
        then = (
            "kept in the outbox and sent again with the same bytes until acknowledged ('op7 outbox list')"
            if outcome == "pending"
            else "refused for good; kept in the outbox ('op7 outbox retry' or 'op7 outbox drop')"
        )
        return DeliveryError(
            f"{what}: {why}; {then}",
            message_id=copy.message_id,
            message_type=copy.message_type,
            case_id=copy.case_id,
            topic=copy.topic,
            outcome=outcome,
        )


def _retriable(exc: BaseException) -> bool:
    # Anything but a transport error the transport calls final (a bug, a timeout) is worth another attempt.
    return not isinstance(exc, TransportError) or exc.retriable
