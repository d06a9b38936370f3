"""Sending through the outbox: each copy is recorded before it is sent, waited for up to the delivery timeout, and
sent again with the same bytes, in the background, until the transport acknowledges it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence

from broker.clock import Clock
from broker.errors import DeliveryError, TransportError
from broker.models.answers import short_name
from broker.node.outbox import Outbox, Outgoing, State
from broker.transport.base import Sent, Transport

__all__ = ["Courier"]

log = logging.getLogger("op7.node.outbox")

Ident = tuple[str, str]


class Courier:
    """Delivers outbox copies on one transport. ``prepare`` is awaited before a copy is sent (the node makes sure its
    topic exists); ``on_change`` is told the number of pending copies after each change (a metric)."""

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
        self._in_flight: dict[Ident, asyncio.Task[Sent]] = {}
        # The last copy sent of each topic and key: the next one of that case waits for it, and is not sent if it
        # failed (it then stays pending behind it), so a retry never puts a case's messages out of order.
        self._tails: dict[tuple[str, bytes | None], asyncio.Task[Sent]] = {}
        self._retrier: asyncio.Task[None] | None = None
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
        # Copies in flight settle as the transport stops (acknowledged, or failed and left pending for the next run).
        if self._in_flight:
            await asyncio.wait(list(self._in_flight.values()), timeout=self.timeout)

    async def deliver(self, copies: Sequence[Outgoing]) -> list[Sent]:
        """Record ``copies`` in the outbox, send them together and wait up to the delivery timeout for all.

        :class:`DeliveryError` names the message, its case and topic, and the outcome: ``pending`` (not acknowledged
        in time or a retriable failure: it stays in the outbox and is sent again with the same bytes) or ``failed``.
        """
        self.outbox.put(copies)
        self._changed()
        if self.held is not None:
            raise self._error(copies[0], self.held, "pending")
        tasks = []
        for copy in copies:
            for older in self.outbox.before(copy):
                if older.ident not in self._in_flight:
                    self._attempt(older)
            tasks.append(self._attempt(copy))
        done, _ = await asyncio.wait(tasks, timeout=self.timeout)
        for copy, task in zip(copies, tasks, strict=True):
            if task not in done:
                raise self._error(copy, f"not acknowledged within {self.timeout:g} s", "pending")
            exc = task.exception()
            if exc is not None:
                outcome = "pending" if _retriable(exc) else "failed"
                raise self._error(copy, str(exc), outcome) from exc
        return [task.result() for task in tasks]

    async def retry(self, copies: Sequence[Outgoing]) -> list[BaseException | Sent]:
        """Send ``copies`` again now (``op7 outbox retry``), waiting up to the delivery timeout for each."""
        tasks = [self._in_flight.get(c.ident) or self._attempt(c) for c in copies]
        done, _ = await asyncio.wait(tasks, timeout=self.timeout) if tasks else (set(), set())
        results: list[BaseException | Sent] = []
        for copy, task in zip(copies, tasks, strict=True):
            if task not in done:
                results.append(self._error(copy, f"not acknowledged within {self.timeout:g} s", "pending"))
            else:
                results.append(task.exception() or task.result())
        return results

    def _attempt(self, copy: Outgoing) -> asyncio.Task[Sent]:
        case = (copy.topic, copy.key)
        task = asyncio.create_task(self._send(copy, self._tails.get(case)))
        self._in_flight[copy.ident] = task
        self._tails[case] = task
        task.add_done_callback(lambda t: self._settled(copy, t))
        return task

    async def _send(self, copy: Outgoing, after: asyncio.Task[Sent] | None) -> Sent:
        if after is not None:
            await asyncio.wait([after])
            if after.cancelled() or after.exception() is not None:
                raise TransportError("an earlier message of its case is not acknowledged yet", retriable=True)
        await self._prepare(copy.topic)
        return await self.transport.send(copy.topic, copy.frame, key=copy.key)

    def _settled(self, copy: Outgoing, task: asyncio.Task[Sent]) -> None:
        # A send outlives a caller's deadline: whenever it ends, the outbox learns how.
        self._in_flight.pop(copy.ident, None)
        if self._tails.get((copy.topic, copy.key)) is task:
            del self._tails[(copy.topic, copy.key)]
        if task.cancelled():
            return
        exc = task.exception()
        try:
            if exc is None:
                self.outbox.acknowledged(copy.ident)
                if copy.attempts:
                    log.info(
                        "%s %s delivered to %s after %d retries",
                        copy.message_type,
                        copy.message_id,
                        copy.topic,
                        copy.attempts,
                    )
            else:
                self.outbox.attempted(copy.ident, self.clock.now(), str(exc), permanent=not _retriable(exc))
        except Exception:  # the outbox closed under a late acknowledgement: the copy is sent again, a duplicate
            log.debug("outbox not updated for %s", copy.message_id, exc_info=True)
        self._changed()

    async def _retry_forever(self) -> None:
        while True:
            await asyncio.sleep(self.retry_every)
            try:
                for copy in self.outbox.due(self.clock.now()):
                    if copy.ident not in self._in_flight:
                        self._attempt(copy)
            except Exception:  # an outbox that cannot be read now is read at the next turn
                log.warning("outbox not readable", exc_info=True)

    def _changed(self) -> None:
        if self.on_change is not None:
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
