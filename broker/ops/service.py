"""The operations centre as one running service: the alerts subscription folding cases, the acknowledgements sent
back to issuing nodes, the feed's health, and the dashboard's web server, in one event loop."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import uvicorn

from broker.errors import DeliveryError
from broker.models import Authority, Receipt, ReceiptState
from broker.node.node import Delivery, Node
from broker.node.topics import ALERTS
from broker.ops.accounts import Accounts, Session
from broker.ops.cases import CaseBook, CaseView
from broker.ops.server import Dashboard, FeedHealth, Hub
from broker.transport.health import ConnectionStatus

__all__ = ["OpsCentre"]

log = logging.getLogger("op7.ops")

#: Seconds between two samples of the lag, and two looks for cases that expired.
SAMPLE_EVERY = 5.0


@dataclass
class OpsCentre:
    """One operations centre: ``node`` reads the alerts as ``group`` and signs acknowledgements as ``authority``."""

    node: Node
    book: CaseBook
    accounts: Accounts
    authority: Authority
    group: str
    hub: Hub = field(default_factory=Hub)
    health: FeedHealth = field(init=False)
    _open: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.health = FeedHealth(self.node.clock, since=self.node.clock.now())
        self._open = {c.case_id for c in self.book.cases("open")}

    async def handle(self, delivery: Delivery) -> None:
        view = self.book.apply(delivery)
        self.health.last_message_at = self.node.clock.now()
        if view is not None:
            self._changed(view)

    def _changed(self, view: CaseView) -> None:
        if view.state == "open":
            self._open.add(view.case_id)
        else:
            self._open.discard(view.case_id)
        self.hub.publish("case", view.summary())

    async def acknowledge(self, case_id: str, session: Session) -> tuple[CaseView, str]:
        """Send the issuing node a signed receipt saying this centre's operator saw the case's latest alert."""
        view = self.book.view(case_id)
        if view is None:
            raise LookupError(case_id)
        entry = next(e for e in self.book.store.entries(case_id) if e.message_id == view.last_message_id)
        alert = entry.message
        receipt = Receipt.model_validate(
            {
                "status": alert.status,
                "sent_at": self.node.clock.now(),
                "handling": alert.handling,
                "issuer": self.authority,
                "message_id": entry.message_id,
                "message_sender": entry.sender,
                "message_sha256": hashlib.sha256(entry.raw).hexdigest(),
                "case_id": alert.case_id,
                "state": ReceiptState.ACKNOWLEDGED,
                "note": f"acknowledged by operator {session.operator.name} of {self.authority.name}",
            }
        )
        try:
            published = await self.node.publish(receipt, recipients=(entry.sender,))
            receipt_id = published.envelope.message_id
        except DeliveryError as exc:
            if exc.outcome != "pending":
                raise
            # Signed and in the outbox, sent when the cluster answers: acknowledged all the same (a second click
            # would send a second receipt).
            receipt_id = exc.message_id
            log.warning("ops: the acknowledgement of %s waits in the outbox: %s", case_id, exc)
        operator = session.operator.name
        log.info("ops: %s acknowledged case %s (%s) to %s", operator, case_id, entry.message_id, entry.sender)
        return self.book.acknowledge(case_id, operator, self.authority.node, receipt_id), receipt_id

    def status(self, status: ConnectionStatus) -> None:
        self.health.broker = "connected" if status.connected else "unreachable"
        self.health.since = status.since
        self.hub.publish("health", self.health.to_json())

    async def _sample(self, lag: Callable[[], Awaitable[Mapping[Any, int]]]) -> None:
        """Every few seconds: the lag, the health to the browsers, and cases that expired meanwhile."""
        while True:
            await asyncio.sleep(SAMPLE_EVERY)
            try:
                behind = await lag()
                self.health.lag = int(sum(behind.values()))
            except Exception as exc:  # the broker out of reach: the connection watch says so
                log.debug("ops: lag not sampled: %s", exc)
            self.hub.publish("health", self.health.to_json())
            still = {c.case_id for c in self.book.cases("open")}
            for case_id in self._open - still:
                view = self.book.view(case_id)
                if view is not None:
                    self._changed(view)

    async def serve(
        self, host: str, port: int, *, secure_cookies: bool = False, ready: asyncio.Event | None = None
    ) -> None:
        """Read the alerts and serve the dashboard until cancelled."""
        server: uvicorn.Server | None = None
        dashboard = Dashboard(
            self.book,
            self.accounts,
            self.hub,
            self.health,
            self.acknowledge,
            self.authority.node,
            secure_cookies,
            closing=lambda: server is not None and server.should_exit,
        )
        # uvicorn takes Ctrl-C and asks the connections to end: the event streams end with it (``closing``).
        config = uvicorn.Config(
            dashboard.app(), host=host, port=port, log_level="warning", lifespan="off", timeout_graceful_shutdown=5
        )
        server = uvicorn.Server(config)
        async with self.node.subscribe(self.group, [ALERTS]) as sub:
            tasks = [
                asyncio.create_task(sub.run(self.handle, on_status=self.status)),
                asyncio.create_task(self._sample(sub.lag)),
                asyncio.create_task(server.serve()),
            ]
            if ready is not None:
                ready.set()
            try:
                done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    task.result()
            finally:
                server.should_exit = True
                await asyncio.wait({tasks[2]}, timeout=10)
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
