"""The messages an exchange agent makes itself: receipts, error reports and reminders, under the handling code of
the message they are about, checked and sealed as anything else this node sends (:mod:`broker.node.outgoing`)."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from broker.models import Authority, Envelope, Receipt, ReceiptState, Reminder, new_message_id
from broker.node.exchange_store import ExchangeRecord
from broker.node.node import Node
from broker.node.outgoing import check_recipients, check_signer, seal_keys
from broker.wire.envelope import build, parse_frame, read_header

__all__ = ["about", "own_header", "receipt_frame", "reminder"]


def about(env: Envelope, raw: bytes, authority: Authority, now: datetime) -> dict[str, Any]:
    """What a receipt or an error report says of the message it is about: which bytes from whom, when, and under
    the same status and handling code, signed by this node's authority."""
    return {
        "sent_at": now,
        "status": env.status,
        "message_id": env.message_id,
        "message_sender": env.sender,
        "message_sha256": hashlib.sha256(raw).digest(),
        "case_id": env.case_id,
        "handling": env.handling,
        "issuer": authority,
    }


def receipt_frame(node: Node, authority: Authority, env: Envelope, raw: bytes, now: datetime) -> bytes:
    """The signed receipt for the message ``env`` (whose exact bytes are ``raw``), to its sender: built once and kept,
    so that every copy of the message gets the same bytes back. Checked as :meth:`Node.publish` checks, and sealed to
    the sender when the handling code asks (a receipt of a TLP:RED request is TLP:RED); ``ConfigError`` when it
    cannot be sent so."""
    assert node.identity is not None
    receipt = Receipt(receipt_id=new_message_id(now), state=ReceiptState.DELIVERED, **about(env, raw, authority, now))
    check_signer(node.trust, node.identity, receipt.avro_name, now)
    check_recipients(node.trust, (env.sender,))
    _, frame = build(
        node.identity,
        receipt,
        recipients=(env.sender,),
        in_reply_to=env.message_id,
        conversation_id=env.conversation_id or env.message_id,
        now=now,
        seal_to=seal_keys(node.trust, receipt, (env.sender,), receipt.handling, seal=False, at=now),
        registry=node.registry,
        sequence=node.numbering,
    )
    return frame


def own_header(frame: bytes) -> dict[str, Any]:
    """The header of a frame this node built and stored itself (local data: no verification needed)."""
    return read_header(parse_frame(frame).header)


def reminder(request: ExchangeRecord, authority: Authority, now: datetime) -> Reminder:
    """The reminder that the answer to ``request``, an exchange this node sent, was due at its deadline: under the
    request's own status and handling code."""
    assert request.deadline is not None
    header = own_header(request.frame)
    kind = request.message_type.rsplit(".", 1)[1]
    return Reminder(
        reminder_id=new_message_id(now),
        sent_at=now,
        status=header["status"],
        message_id=request.message_id,
        case_id=request.case_id,
        deadline=request.deadline,
        note=f"The answer to {kind} {request.message_id} was due {request.deadline:%Y-%m-%dT%H:%M:%SZ}.",
        handling=header["handling"],
        issuer=authority,
    )
