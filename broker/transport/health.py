"""Whether a transport reaches its cluster: a probe at intervals, and a status each time that changes.

A Kafka client reconnects by itself and, while it cannot, simply returns no records: a listener cannot tell an
outage from a quiet network. :class:`ConnectionWatch` asks the transport (:meth:`Transport.probe`) at intervals and
reports ``disconnected`` once no probe has succeeded for a grace period, then ``connected`` when one succeeds again.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from broker.clock import Clock, default_clock
from broker.errors import TransportError
from broker.transport.base import Transport

__all__ = ["ConnectionStatus", "ConnectionWatch", "StatusHook"]

log = logging.getLogger("op7.transport")

CONNECTED = "connected"
DISCONNECTED = "disconnected"


@dataclass(frozen=True)
class ConnectionStatus:
    """A change of the connection to the cluster."""

    #: ``connected`` or ``disconnected``.
    status: str
    #: When the present state began: the first failed probe of an outage, the first good probe after it.
    since: datetime
    #: Why the cluster could not be reached (the last probe's error), for ``disconnected``.
    reason: str | None = None

    @property
    def connected(self) -> bool:
        return self.status == CONNECTED

    def to_json(self) -> dict[str, Any]:
        return {"status": self.status, "since": self.since.isoformat(), "reason": self.reason}


StatusHook = Callable[[ConnectionStatus], Awaitable[None] | None]


class ConnectionWatch:
    """Probe ``transport`` every ``interval`` seconds; tell ``on_status`` when the connection is lost (no good
    probe for ``grace`` seconds, and at least two failed in a row) and when it is restored. The transport is taken
    to be connected at the start."""

    def __init__(
        self,
        transport: Transport,
        on_status: StatusHook,
        *,
        grace: float = 5.0,
        interval: float = 1.0,
        clock: Clock | None = None,
    ) -> None:
        self._transport = transport
        self._on_status = on_status
        self.grace = grace
        self.interval = interval
        self._clock = clock or default_clock()
        self.connected = True

    async def run(self) -> None:
        """Watch until cancelled."""
        loop = asyncio.get_running_loop()
        last_good = loop.time()
        down_since: datetime | None = None
        failed = 0
        while True:
            try:
                # Half the grace: a slow answer from a busy broker is one failure, not an outage by itself.
                await self._transport.probe(timeout=max(self.grace / 2, self.interval))
            except TransportError as exc:
                down_since = down_since or self._clock.now()
                failed += 1
                if self.connected and failed >= 2 and loop.time() - last_good >= self.grace:
                    self.connected = False
                    log.info("connection lost since %s: %s", down_since.isoformat(), exc)
                    await self._tell(ConnectionStatus(DISCONNECTED, down_since, str(exc)))
            else:
                last_good, down_since, failed = loop.time(), None, 0
                if not self.connected:
                    self.connected = True
                    log.info("connection restored")
                    await self._tell(ConnectionStatus(CONNECTED, self._clock.now()))
            await asyncio.sleep(self.interval)

    async def _tell(self, status: ConnectionStatus) -> None:
        result = self._on_status(status)
        if inspect.isawaitable(result):
            await result
