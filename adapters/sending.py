"""Sending translated records: each under a message id derived from where it came from, its frame kept in the
adapter's ledger before it leaves, so that neither a crash nor a record read twice sends a second message."""

from __future__ import annotations

import hashlib
import logging
import uuid
from dataclasses import dataclass
from typing import Any

from adapters.base import Translation
from adapters.ledger import Ledger, State
from broker.errors import DeliveryError, Op7Error
from broker.models import Envelope, Message
from broker.node.node import Node

__all__ = ["Outcome", "Sender", "record_id"]

log = logging.getLogger("op7.adapter")

#: The namespace of message ids derived from records (UUID version 5).
RECORDS = uuid.UUID("5b0c1a52-6f37-4c43-9d2e-0e3b8f6a7d11")


def record_id(origin: str, record: bytes) -> str:
    """The message id of ``record`` read from ``origin`` (a file's name, a webhook client): the same record from the
    same origin always gets the same id."""
    return str(uuid.uuid5(RECORDS, f"{origin}\0{hashlib.sha256(record).hexdigest()}"))


@dataclass(frozen=True)
class Outcome:
    """What became of one record: ``sent`` (acknowledged), ``pending`` (in the outbox, sent when the cluster answers)
    or ``already sent`` (read before: nothing sent again)."""

    message_id: str
    state: str
    report: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return {"message_id": self.message_id, "state": self.state, **self.report}


class Sender:
    """Signs and sends translated records as one node, through its outbox."""

    def __init__(self, node: Node, ledger: Ledger) -> None:
        self.node = node
        self.ledger = ledger

    async def recover(self) -> int:
        """Send again, with the same bytes, records a crash left signed and not in the outbox; the number sent."""
        pending = {c.message_id for c in self.node.outbox.copies()}
        again = 0
        for record in self.ledger.waiting():
            if record.message_id in pending or record.frame is None:
                continue  # the courier sends it
            try:
                await self.node.send_again(record.frame)
            except DeliveryError as exc:
                log.warning("record %s from %s: %s", record.message_id, record.source, exc)
                continue
            except Op7Error as exc:  # e.g. signed with a key no longer in force: said, kept, never retried
                log.error("record %s from %s cannot be sent again: %s", record.message_id, record.source, exc)
                self.ledger.mark(record.message_id, State.FAILED, self.node.clock.now())
                continue
            self.ledger.mark(record.message_id, State.SENT, self.node.clock.now())
            again += 1
        return again

    def settle(self) -> None:
        """Mark sent the records the courier has delivered since (they left the outbox)."""
        pending = {c.message_id for c in self.node.outbox.copies()}
        for record in self.ledger.waiting():
            if record.message_id not in pending:
                self.ledger.mark(record.message_id, State.SENT, self.node.clock.now())

    async def send(self, translation: Translation[Message], message_id: str) -> Outcome:
        known = self.ledger.get(message_id)
        if known is not None and known.state is State.SENT:
            return Outcome(message_id, "already sent", known.report)
        if known is not None and known.frame is not None:
            return await self._again(message_id, known.frame, known.report)
        report = translation.report(message_id)

        def keep(envelope: Envelope, frame: bytes) -> None:
            self.ledger.signed(message_id, translation.source, frame, report, self.node.clock.now())

        try:
            await self.node.publish(translation.message, message_id=message_id, before_send=keep)
        except DeliveryError as exc:
            if exc.outcome != "pending":
                raise
            log.warning("%s: %s", translation.source, exc)
            return Outcome(message_id, "pending", report)
        self.ledger.mark(message_id, State.SENT, self.node.clock.now())
        return Outcome(message_id, "sent", report)

    async def _again(self, message_id: str, frame: bytes, report: dict[str, Any]) -> Outcome:
        if message_id in {c.message_id for c in self.node.outbox.copies()}:
            return Outcome(message_id, "pending", report)
        try:
            await self.node.send_again(frame)
        except DeliveryError as exc:
            if exc.outcome != "pending":
                raise
            return Outcome(message_id, "pending", report)
        self.ledger.mark(message_id, State.SENT, self.node.clock.now())
        return Outcome(message_id, "sent", report)
