"""The decoded, verified header of a message (``op7.Envelope``), with the sender and key id of the frame."""

from __future__ import annotations

from ._types import Identifier, Language, MessageId, NodeId, Record, Sha256, Timestamp
from .common import Handling, LegalBasis, Status


class Envelope(Record):
    sender: NodeId
    key_id: str
    message_id: MessageId
    message_type: str
    schema_fingerprint: Sha256
    created_at: Timestamp
    status: Status
    handling: Handling
    case_id: Identifier | None = None
    recipients: tuple[NodeId, ...] = ()
    conversation_id: Identifier | None = None
    in_reply_to: MessageId | None = None
    expires_at: Timestamp | None = None
    legal_basis: tuple[LegalBasis, ...] = ()
    languages: tuple[Language, ...] = ()
