"""``op7.exchange``: signed receipts and error reports about other messages."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, ClassVar

from pydantic import Field

from broker.models._types import Identifier, MessageId, NodeId, Sha256, Text, Timestamp
from broker.models.message import ID, Message


class ReceiptState(StrEnum):
    DELIVERED = "Delivered"
    ACCEPTED = "Accepted"
    ACKNOWLEDGED = "Acknowledged"


class Receipt(Message):
    avro_name: ClassVar[str] = "op7.exchange.Receipt"

    receipt_id: ID
    message_id: MessageId
    message_sender: NodeId
    message_sha256: Sha256
    case_id: Identifier | None = None
    state: ReceiptState
    note: Text | None = None


class ErrorReport(Message):
    avro_name: ClassVar[str] = "op7.exchange.ErrorReport"

    error_id: ID
    message_id: MessageId | None = None
    message_sender: NodeId | None = None
    message_sha256: Sha256
    case_id: Identifier | None = None
    reason: Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{1,40}$")]
    detail: Text


class Reminder(Message):
    avro_name: ClassVar[str] = "op7.exchange.Reminder"

    reminder_id: ID
    message_id: MessageId
    case_id: Identifier | None = None
    deadline: Timestamp
    note: Text | None = None
