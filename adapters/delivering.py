"""Handing received messages to a local system: rendered by an outbound adapter, written to a folder and/or POSTed
to the system's URL.

A webhook delivery is signed so that the receiver can check it came from this adapter and was not altered::

    X-Op7-Timestamp: 1796040000
    Idempotency-Key: MESSAGE_ID
    X-Op7-Sender: FR.GN
    X-Op7-Signature: sha256=HEX(HMAC-SHA256(secret, TIMESTAMP "." MESSAGE_ID "." SENDER "." BODY))

A receiver recomputes the HMAC over the timestamp, the message id, the sender (each followed by a dot) and the exact
body bytes, compares it in constant time,
refuses a timestamp more than five minutes from its clock, and treats a second delivery with the same
``Idempotency-Key`` as the one it already has (a delivery is retried until the receiver answers 2xx). Network
errors, 408, 429 and 5xx are retried with doubling waits (``first_wait``, up to ``max_attempts``); any other answer
fails the delivery at once. Every delivery and its outcome are kept in the adapter's ledger.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from adapters.base import OutboundAdapter, Rendered
from adapters.config import WebhookOut
from adapters.folder import write_received
from adapters.ledger import Ledger
from broker.clock import Clock
from broker.errors import ConfigError
from broker.node.node import Delivery

__all__ = ["Deliverer", "Webhook", "sign_body", "verify_body"]

log = logging.getLogger("op7.adapter.delivery")

_RETRIED = {408, 429}


def signed_part(timestamp: int | str, message_id: str, sender: str, body: bytes) -> bytes:
    """What the signature covers: the timestamp, the message id (the Idempotency-Key), the sending node and the
    body, each but the body followed by a dot."""
    return f"{timestamp}.{message_id}.{sender}.".encode() + body


def sign_body(secret: bytes, timestamp: int, message_id: str, sender: str, body: bytes) -> str:
    """The ``X-Op7-Signature`` header value of a delivery."""
    return "sha256=" + hmac.new(secret, signed_part(timestamp, message_id, sender, body), hashlib.sha256).hexdigest()


def verify_body(secret: bytes, headers: dict[str, str], body: bytes, *, now: int, tolerance: int = 300) -> bool:
    """What a receiving system does: the signature over the timestamp, the Idempotency-Key, the sender and the body
    matches, and the timestamp is within ``tolerance`` seconds of its clock."""
    timestamp = headers.get("x-op7-timestamp", "")
    if not timestamp.isdigit() or abs(now - int(timestamp)) > tolerance:
        return False
    message_id, sender = headers.get("idempotency-key", ""), headers.get("x-op7-sender", "")
    expected = sign_body(secret, int(timestamp), message_id, sender, body)
    return hmac.compare_digest(expected.encode(), headers.get("x-op7-signature", "").encode())


class Webhook:
    """POSTs rendered messages to a local system's URL, signed, retried, each outcome kept in the ledger; the HMAC
    key is read from the environment once, when it is made (a missing one is refused before anything is read)."""

    def __init__(self, hook: WebhookOut, ledger: Ledger, clock: Clock, client: httpx.AsyncClient) -> None:
        self.hook, self.ledger, self.clock, self.client = hook, ledger, clock, client
        self.secret = hook.secret()

    async def post(self, message_id: str, sender: str, rendered: Rendered, report: dict[str, Any]) -> None:
        hook = self.hook
        if self.ledger.delivery_state(message_id, hook.url) == "delivered":
            return  # handed over again after a restart: the system has it
        error: str | None = None
        wait = hook.first_wait
        for attempt in range(1, hook.max_attempts + 1):
            error, again = await self._attempt(message_id, sender, rendered)
            if error is None:
                self.ledger.delivered(message_id, hook.url, "delivered", attempt, None, report, self.clock.now())
                return
            if not again:
                break  # the system's answer: retrying would get the same
            self.ledger.delivered(message_id, hook.url, "retrying", attempt, error, report, self.clock.now())
            if attempt < hook.max_attempts:
                log.warning("delivery of %s to %s, attempt %d: %s", message_id, hook.url, attempt, error)
                await asyncio.sleep(wait)
                wait = min(wait * 2, 300.0)
        kept = (rendered.data, rendered.media_type, sender)
        self.ledger.delivered(message_id, hook.url, "failed", attempt, error, report, self.clock.now(), kept)
        log.error(
            "delivery of %s to %s failed for good: %s (kept in %s: op7 adapter redeliver)",
            message_id,
            hook.url,
            error,
            self.ledger.path,
        )

    async def _attempt(self, message_id: str, sender: str, rendered: Rendered) -> tuple[str | None, bool]:
        """One POST: (None, _) when the system took it, else why not and whether another attempt may do better
        (network errors, 408, 429 and 5xx)."""
        timestamp = int(self.clock.now().timestamp())
        headers = {
            "Content-Type": rendered.media_type,
            "Idempotency-Key": message_id,
            "X-Op7-Message-Id": message_id,
            "X-Op7-Sender": sender,
            "X-Op7-Timestamp": str(timestamp),
            "X-Op7-Signature": sign_body(self.secret, timestamp, message_id, sender, rendered.data),
        }
        try:
            answer = await self.client.post(
                self.hook.url, content=rendered.data, headers=headers, timeout=self.hook.timeout
            )
        except httpx.HTTPError as exc:
            return f"{exc.__class__.__name__}: {exc}", True
        if answer.is_success:
            return None, False
        code = answer.status_code
        return f"HTTP {code}: {answer.text[:200]}", code >= 500 or code in _RETRIED

    async def redeliver(self) -> list[tuple[str, str | None]]:
        """Send again each delivery that failed for good: (message id, its state now) each."""
        outcomes = []
        for message_id, body, media_type, sender, report in self.ledger.failed_deliveries(self.hook.url):
            await self.post(message_id, sender, Rendered(body, media_type, ""), report)
            outcomes.append((message_id, self.ledger.delivery_state(message_id, self.hook.url)))
        return outcomes


@dataclass
class Deliverer:
    """Renders each delivery with ``adapter`` and hands it to the folder and/or the webhook."""

    adapter: OutboundAdapter
    ledger: Ledger
    clock: Clock
    folder: Path | None = None
    webhook: Webhook | None = None

    async def __call__(self, delivery: Delivery) -> None:
        envelope = delivery.envelope
        try:
            rendered = self.adapter.render(delivery.message, message_id=envelope.message_id, sender=envelope.sender)
        except ConfigError as exc:  # a type the local format has no record for: said once, not retried
            log.warning(
                "%s %s from %s not delivered: %s", envelope.message_type, envelope.message_id, envelope.sender, exc
            )
            self.ledger.delivered(envelope.message_id, "-", "not-rendered", 0, str(exc), {}, self.clock.now())
            return
        report: dict[str, Any] = {"lost": [item.as_dict() for item in rendered.lost]}
        if self.folder is not None:
            path = write_received(self.folder, envelope.message_id, rendered)
            self.ledger.delivered(envelope.message_id, str(self.folder), "written", 1, None, report, self.clock.now())
            log.info("%s written to %s", envelope.message_id, path)
        if self.webhook is not None:
            await self.webhook.post(envelope.message_id, envelope.sender, rendered, report)
