"""Directed exchanges: send a request, get a signed receipt, get an answer within a deadline, follow it.

:class:`ExchangeAgent` runs on a :class:`~broker.node.Node` with an :class:`ExchangeStore`:

- ``send`` publishes a directed message to its recipients' inboxes and records the exchange (with its answer
  deadline when it is a request), resending it with back-off until a receipt arrives;
- ``serve`` reads the node's inbox: each verified message is recorded, handed to the application once, and
  acknowledged with a signed ``Receipt`` carrying the SHA-256 of the exact bytes received (a resend gets the
  same receipt again); receipts, error reports and answers (of the type the request expects) update the sender's
  exchanges; a message refused after its sender was verified is answered with a signed ``ErrorReport``, once per
  frame and at most :attr:`ExchangeAgent.reports_per_minute` a minute per sender;
- ``tick`` resends what is unacknowledged and, past a deadline, marks an exchange overdue and sends the
  addressee a signed ``Reminder``.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from broker.clock import Clock
from broker.errors import ConfigError, DeliveryError, MessageError, Op7Error
from broker.models import (
    Authority,
    DisseminationDecision,
    Envelope,
    ErrorReport,
    Message,
    Receipt,
    ReceiptState,
    Reminder,
    Request,
    Response,
    new_message_id,
)
from broker.node.acknowledge import receipt_frame, reminder
from broker.node.deadlines import DeadlinePolicy, ResendPolicy
from broker.node.exchange_store import OPEN_OUT, Direction, ExchangeState, ExchangeStore
from broker.node.node import Node, Published
from broker.node.outgoing import answers, check_answer
from broker.node.refusal import refusal_report
from broker.node.subscription import Delivery, RefusalHook, SubscriptionStats, chain_refusals, maybe_await
from broker.node.topics import record_key
from broker.transport import Record
from broker.wire.envelope import Opened

__all__ = ["DeadlinePolicy", "ExchangeAgent", "ExchangeEvent", "ResendPolicy"]

log = logging.getLogger("op7.exchange")

_ANSWERS = (Response, DisseminationDecision)
_BOOKKEEPING = (Receipt, ErrorReport)


@dataclass(frozen=True)
class ExchangeEvent:
    """Something that happened to an exchange, for whoever watches the inbox."""

    message_id: str
    state: str
    detail: str


EventHook = Callable[[ExchangeEvent], None]
AppHandler = Callable[[Delivery], Awaitable[None] | None]


class ExchangeAgent:
    """Directed exchanges of one node: sending, receipts, answers, deadlines, resends."""

    #: Error reports sent to one sender within a minute of the node clock, at most; each refused frame is reported
    #: once (kept in the store, across restarts), so re-injected copies do not make a signed report each.
    reports_per_minute: int = 10

    def __init__(
        self,
        node: Node,
        store: ExchangeStore,
        authority: Authority,
        *,
        deadlines: DeadlinePolicy | None = None,
        resend: ResendPolicy | None = None,
        on_event: EventHook | None = None,
    ) -> None:
        if node.identity is None or node.node_id is None:
            raise ConfigError("an exchange agent needs a node with a signing identity")
        if authority.node != node.node_id:
            raise ConfigError(f"the authority is {authority.node}, the node {node.node_id}")
        self.node = node
        self.store = store
        self.authority = authority
        self.deadlines = deadlines or DeadlinePolicy()
        self.resend = resend or ResendPolicy()
        self._on_event = on_event
        #: The node's clock: deadlines, resends and reminders are all read from it.
        self.clock: Clock = node.clock

    @property
    def me(self) -> str:
        assert self.node.node_id is not None
        return self.node.node_id

    def _event(self, message_id: str, state: str, detail: str) -> None:
        log.info("%s %s: %s", message_id, state, detail)
        if self._on_event is not None:
            self._on_event(ExchangeEvent(message_id, state, detail))

    # --- sending ----------------------------------------------------------------------------------------

    async def send(
        self,
        message: Message,
        *,
        recipients: tuple[str, ...] = (),
        seal: bool = False,
        conversation_id: str | None = None,
        in_reply_to: str | None = None,
        now: datetime | None = None,
        deadline: datetime | None = None,
        late: bool = False,
    ) -> Published:
        """Publish a directed message and record the exchange; a request gets its answer deadline.

        ``deadline`` sets the answer deadline instead of the policy's (a request's own ``deadline`` field still
        wins when it is earlier). A deadline already past is refused unless ``late``: the request is then
        recorded as sent late, and is overdue from the start.
        """
        now = now or self.clock.now()
        if not recipients and isinstance(message, Request):
            recipients = (message.requested_authority.node,)
        if len(recipients) != 1:
            raise ConfigError("an exchange has exactly one addressee; send one message per addressee")
        # Every message of a conversation shares its id, which is also the partition key: they stay in order.
        conversation_id = conversation_id or new_message_id(now)
        request_type = self._answered_type(message, recipients[0], in_reply_to)
        deadline = self._answer_deadline(message, now, deadline, late)
        detail = f"sent to {recipients[0]}" + (f", answer due {deadline:%Y-%m-%dT%H:%M:%SZ}" if deadline else "")
        if deadline is not None and deadline <= now:
            detail += " (sent late: the deadline had already passed)"

        def record(env: Envelope, frame: bytes) -> None:
            # Recorded before it leaves: if the process dies in between, the next tick sends it.
            self._record(env, frame, Direction.OUT, recipients[0], now, detail, deadline=deadline, reply_to=in_reply_to)

        published = await self.node.publish(
            message,
            recipients=recipients,
            seal=seal,
            now=now,
            conversation_id=conversation_id,
            in_reply_to=in_reply_to,
            before_send=record,
        )
        env = published.envelope
        if in_reply_to is not None and answers(request_type, message.avro_name):
            self.store.move(
                in_reply_to,
                ExchangeState.ANSWERED,
                f"answered by {env.message_id}",
                now,
                env.message_id,
                only_from=(ExchangeState.RECEIVED,),
            )
        self._event(env.message_id, "sent", f"{env.message_type} to {recipients[0]}")
        return published

    def _answered_type(self, message: Message, recipient: str, in_reply_to: str | None) -> str | None:
        """The type of the received request ``in_reply_to`` names, if any: ``message`` must be its answer type (or
        no answer), and go to the node that asked."""
        answered = self.store.get(in_reply_to) if in_reply_to else None
        request_type = answered.message_type if answered and answered.direction is Direction.IN else None
        check_answer(message, (recipient,), request_type)
        if answered is not None and request_type is not None and recipient != answered.peer:
            raise ConfigError(f"{in_reply_to} came from {answered.peer}: its answer goes there, not to {recipient}")
        return request_type

    def _answer_deadline(self, message: Message, now: datetime, given: datetime | None, late: bool) -> datetime | None:
        deadline = self.deadlines.deadline(message, now, override=given)
        if deadline is not None and deadline <= now and not late:
            raise ConfigError(
                f"the answer deadline {deadline:%Y-%m-%dT%H:%M:%SZ} is already past ({now:%Y-%m-%dT%H:%M:%SZ} now); "
                "give a later one, or send it as a late request"
            )
        return deadline

    def _record(
        self,
        env: Envelope,
        frame: bytes,
        direction: Direction,
        peer: str,
        now: datetime,
        detail: str,
        *,
        deadline: datetime | None = None,
        reply_to: str | None = None,
    ) -> None:
        """Record an exchange: one this node sends (with its deadline and resend schedule) or receives."""
        outgoing = direction is Direction.OUT
        self.store.add(
            message_id=env.message_id,
            direction=direction,
            peer=peer,
            message_type=env.message_type,
            case_id=env.case_id,
            conversation_id=env.conversation_id,
            in_reply_to=reply_to if outgoing else env.in_reply_to,
            state=ExchangeState.SENT if outgoing else ExchangeState.RECEIVED,
            deadline=deadline,
            sha256=hashlib.sha256(frame).digest(),
            frame=frame,
            now=now,
            next_attempt_at=self.resend.next_after(1, now) if outgoing else None,
            detail=detail,
        )

    async def reply(self, request: Delivery | Opened, response: Message, *, seal: bool | None = None) -> Published:
        """Answer a received message: same conversation, addressed to its sender, sealed if it was."""
        env = request.envelope
        check_answer(response, (env.sender,), env.message_type)
        return await self.send(
            response,
            recipients=(env.sender,),
            seal=env.sealed is not None if seal is None else seal,
            conversation_id=env.conversation_id or env.message_id,
            in_reply_to=env.message_id,
        )

    # --- receiving --------------------------------------------------------------------------------------

    async def serve(
        self,
        handler: AppHandler,
        *,
        group: str | None = None,
        idle_timeout: float | None = None,
        tick_every: float = 5.0,
        limit: int | None = None,
        on_refused: RefusalHook | None = None,
    ) -> SubscriptionStats:
        """Read this node's inbox until stopped (or idle for ``idle_timeout`` seconds), ticking regularly."""
        sub = self.node.subscribe(group or self.me, [Node.inbox_of(self.me)])

        async def ticker() -> None:
            while True:
                try:
                    await self.tick()
                except Exception as exc:  # an outage or a busy database must not stop resends (a traceback: a bug)
                    log.warning("exchange tick failed: %s", exc, exc_info=not isinstance(exc, Op7Error))
                await asyncio.sleep(tick_every)

        task = asyncio.create_task(ticker(), name="op7-exchange-ticker")
        try:
            async with sub:
                return await sub.run(
                    lambda d: self._on_delivery(d, handler),
                    idle_timeout=idle_timeout,
                    limit=limit,
                    on_refused=chain_refusals(on_refused, self._on_refused),
                    on_duplicate=self._on_duplicate,
                )
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    def _outgoing_to(self, message_id: str, peer: str) -> bool:
        """Whether ``message_id`` is an exchange this node sent to ``peer`` (only the addressee may answer it)."""
        record = self.store.get(message_id)
        return record is not None and record.direction is Direction.OUT and record.peer == peer

    async def _on_delivery(self, delivery: Delivery, handler: AppHandler) -> None:
        env, message = delivery.envelope, delivery.message
        now = self.clock.now()
        if isinstance(message, Receipt):
            self._receipt(env, message, now)
            return
        if isinstance(message, ErrorReport):
            self._error_report(env, message, now)
            return
        known = self.store.get(env.message_id)
        if known is not None and (known.peer != env.sender or known.direction is not Direction.IN):
            log.warning(
                "%s reuses message id %s of another exchange; recorded under its own events only",
                env.sender,
                env.message_id,
            )
        self._record(env, delivery.raw, Direction.IN, env.sender, now, f"received from {env.sender}")
        if isinstance(message, Reminder) and self._received_from(message.message_id, env.sender):
            self.store.event(
                message.message_id,
                "reminded",
                f"{env.sender}: answer was due {message.deadline:%Y-%m-%dT%H:%M:%SZ}",
                now,
                env.message_id,
            )
        self._answered(env, message, now)
        # The handler runs once per message: a redelivery after a crash between here and the commit finds the
        # 'handled' mark and only gets its receipt (the same one, if it was already made).
        if not self.store.handled(env.sender, env.message_id):
            await maybe_await(handler(delivery))
            self.store.mark_handled(env.sender, env.message_id, now)
            self._event(env.message_id, "received", f"{env.message_type} from {env.sender}")
        await self._send_receipt(env, delivery.raw, now)

    def _answered(self, env: Envelope, message: Message, now: datetime) -> None:
        """An answer from the addressee closes this node's open request."""
        request = env.in_reply_to
        if request is None or not isinstance(message, _ANSWERS) or not self._outgoing_to(request, env.sender):
            return
        asked = self.store.get(request)
        if asked is not None and not answers(asked.message_type, env.message_type):
            detail = f"{env.sender} sent a {env.message_type}, not an answer to a {asked.message_type}"
            log.warning("%s: %s", request, detail)
            self.store.event(request, "wrong-answer", detail, now, env.message_id)
            return
        detail = f"answered by {env.sender} ({env.message_id})"
        if self.store.move(request, ExchangeState.ANSWERED, detail, now, env.message_id, only_from=OPEN_OUT):
            self.store.stop_retrying(request)
            self._event(request, "answered", f"{env.message_type} from {env.sender}")

    def _received_from(self, message_id: str, peer: str) -> bool:
        record = self.store.get(message_id)
        return record is not None and record.direction is Direction.IN and record.peer == peer

    def _error_report(self, env: Envelope, report: ErrorReport, now: datetime) -> None:
        record = self.store.get(report.message_id) if report.message_id else None
        if record is None or record.direction is not Direction.OUT or record.peer != env.sender:
            log.warning("error report from %s about a message it was not sent", env.sender)
            return
        if report.message_sha256 != record.sha256:
            self.store.event(
                record.message_id, "report-mismatch", f"{env.sender} reported other bytes", now, env.message_id
            )
            return
        # Only before delivery: a delivered exchange is not undone by a later refusal of an old copy.
        if self.store.move(
            record.message_id,
            ExchangeState.REJECTED,
            f"refused by {env.sender}: {report.reason}: {report.detail}",
            now,
            env.message_id,
            only_from=(ExchangeState.SENT, ExchangeState.UNDELIVERABLE),
        ):
            self.store.stop_retrying(record.message_id)
            self._event(record.message_id, "rejected", f"{env.sender}: {report.reason}")

    def _receipt(self, env: Envelope, receipt: Receipt, now: datetime) -> None:
        record = self.store.get(receipt.message_id)
        if record is None and receipt.state is ReceiptState.ACKNOWLEDGED and receipt.message_sender == self.me:
            # A broadcast (an alert) is no exchange: what comes back is who saw it, kept as an event of its own.
            detail = f"acknowledged by {env.sender}" + (f": {receipt.note}" if receipt.note else "")
            self.store.event(receipt.message_id, "acknowledged", detail, now, env.message_id)
            self._event(receipt.message_id, "acknowledged", detail)
            return
        if record is None or record.direction is not Direction.OUT or record.peer != env.sender:
            log.warning("receipt from %s for unknown message %s", env.sender, receipt.message_id)
            return
        if receipt.message_sha256 != record.sha256:
            self.store.event(
                record.message_id, "receipt-mismatch", f"{env.sender} acknowledged other bytes", now, env.message_id
            )
            return
        self.store.stop_retrying(record.message_id)
        state = ExchangeState.ACCEPTED if receipt.state is ReceiptState.ACCEPTED else ExchangeState.DELIVERED
        # A late receipt still proves delivery after the resends gave up; an overdue exchange stays overdue.
        if self.store.move(
            record.message_id,
            state,
            f"signed receipt from {env.sender} ({receipt.state.value})",
            now,
            env.message_id,
            only_from=(ExchangeState.SENT, ExchangeState.DELIVERED, ExchangeState.UNDELIVERABLE),
        ):
            self._event(record.message_id, state.value, f"receipt from {env.sender}")

    async def _send_receipt(self, env: Envelope, raw: bytes, now: datetime) -> None:
        """The receipt for a handled message: made once, kept, and sent again as it is for every copy."""
        kept = self.store.receipt_for(env.sender, env.message_id)
        if kept is None:
            try:
                kept = receipt_frame(self.node, self.authority, env, raw, now)
            except ConfigError as exc:  # e.g. a TLP:RED receipt to a sender without an encryption key
                log.warning("no receipt to %s for %s: %s", env.sender, env.message_id, exc)
                self.store.event(env.message_id, "receipt-not-sent", str(exc), now)
                return
            self.store.keep_receipt(env.sender, env.message_id, kept)
        else:
            self.store.event(env.message_id, "receipt-resent", f"{env.sender} sent it again", now)
        key = record_key(env.conversation_id or env.message_id, env.case_id, env.message_id)
        try:
            await self.node.send_frame(kept, (env.sender,), key=key)
        except DeliveryError as exc:
            # The message is handled and its receipt is in the outbox: the courier sends it again (pending) or an
            # operator sees it (failed). Raising would stop the inbox being read for the length of an outage.
            level = logging.WARNING if exc.outcome == "pending" else logging.ERROR
            log.log(level, "receipt to %s for %s %s: %s", env.sender, env.message_id, exc.outcome, exc)
            self.store.event(env.message_id, f"receipt-{exc.outcome}", str(exc), now)

    async def _on_duplicate(self, record: Record, env: Envelope) -> None:
        """A copy of something already handled: its receipt again, nothing for the application."""
        await self._send_receipt(env, record.value, self.clock.now())

    async def _on_refused(self, record: Record, error: MessageError) -> None:
        """Tell a verified sender that its message was refused, unless it was itself a receipt or error."""
        env = error.envelope
        if not isinstance(env, Envelope) or env.message_type in {m.avro_name for m in _BOOKKEEPING}:
            return
        now = self.clock.now()
        digest = hashlib.sha256(record.value).digest()
        limit, minute = self.reports_per_minute, timedelta(minutes=1)
        skipped = self.store.claim_report(env.sender, digest, now, limit=limit, window=minute)
        if skipped is not None:
            log.info("no error report to %s about %s: %s", env.sender, env.message_id, skipped)
            return
        # About a sealed message, the refusal's text is sealed to the sender or left out: it can quote the content.
        report, seal = refusal_report(self.node.trust, env, record.value, error, self.authority, now)
        try:
            await self.node.publish(
                report,
                recipients=(env.sender,),
                seal=seal,
                in_reply_to=env.message_id,
                conversation_id=env.conversation_id or env.message_id,
                now=now,
            )
        except ConfigError as exc:  # e.g. a TLP:RED report to a sender without an encryption key
            log.warning("no error report to %s about %s: %s", env.sender, env.message_id, exc)
        except DeliveryError as exc:  # in the outbox, like a receipt (see _send_receipt): the inbox is read on
            level = logging.WARNING if exc.outcome == "pending" else logging.ERROR
            log.log(level, "error report to %s about %s %s: %s", env.sender, env.message_id, exc.outcome, exc)
        except BaseException:
            self.store.release_report(env.sender, digest)  # not sent: the redelivered frame is reported then
            raise

    # --- time ---------------------------------------------------------------------------------------------

    async def tick(self, now: datetime | None = None) -> None:
        """Resend what is due, and turn exchanges past their deadline overdue (with a signed reminder)."""
        now = now or self.clock.now()
        for record in self.store.due_for_resend(now):
            key = record_key(record.conversation_id, record.case_id, record.message_id)
            await self.node.send_frame(record.frame, (record.peer,), key=key)
            following = self.resend.next_after(record.attempts + 1, now)
            self.store.retried(record.message_id, now, following)
            self.store.event(record.message_id, "resent", f"attempt {record.attempts + 1}, no receipt yet", now)
            if following is None and self.store.move(
                record.message_id,
                ExchangeState.UNDELIVERABLE,
                f"no receipt after {record.attempts + 1} attempts",
                now,
                only_from=(ExchangeState.SENT,),
            ):
                self._event(record.message_id, "undeliverable", record.peer)
        for record in self.store.past_deadline(now):
            assert record.deadline is not None
            message = reminder(record, self.authority, now)
            try:
                published = await self.node.publish(
                    message,
                    recipients=(record.peer,),
                    in_reply_to=record.message_id,
                    conversation_id=record.conversation_id or record.message_id,
                    now=now,
                )
                sent = f"reminder {published.envelope.message_id} sent"
            except ConfigError as exc:  # the peer left the directory, its key lapsed...: overdue all the same
                log.warning("no reminder to %s about %s: %s", record.peer, record.message_id, exc)
                sent, published = f"no reminder sent: {exc}", None
            # Only from a waiting state: an answer may have arrived while the reminder was being sent.
            if self.store.move(
                record.message_id,
                ExchangeState.OVERDUE,
                f"no answer by {record.deadline:%Y-%m-%dT%H:%M:%SZ}; {sent}",
                now,
                published.envelope.message_id if published else None,
                only_from=(ExchangeState.SENT, ExchangeState.DELIVERED, ExchangeState.ACCEPTED),
            ):
                self._event(record.message_id, "overdue", f"{sent} to {record.peer}" if published else sent)
        self.node.prune_replay_store(now)
        self.store.prune_reports(now - self.node.freshness.max_age - self.node.freshness.max_skew)

    def close(self, message_id: str, note: str = "closed") -> bool:
        return self.store.move(message_id, ExchangeState.CLOSED, note, self.clock.now())
