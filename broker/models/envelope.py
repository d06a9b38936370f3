"""The decoded, verified header of a message (``op7.Envelope``), with the sender and key id of the frame."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, model_validator

from broker.models._types import Blob, HexBytes, Identifier, Language, MessageId, NodeId, Record, Sha256, Timestamp
from broker.models.common import Handling, LegalBasis, Status

#: A network's name, as its directory gives it (``op7.directory.Directory.network``).
NetworkName = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9.-]{0,62}$")]
#: The largest sequence number a header holds (an Avro long).
LAST_SEQUENCE = 2**63 - 1
#: A sender's number for a frame it signed, from 1 (docs/PROTOCOL.md section 3).
SequenceNumber = Annotated[int, Field(ge=1, le=LAST_SEQUENCE)]


class WrappedKey(Record):
    recipient: NodeId
    key_id: Annotated[str, Field(pattern=r"^[0-9a-f]{16}$")]
    wrapped_key: Annotated[Blob, Field(min_length=48, max_length=48)]


class Sealed(Record):
    ephemeral_key: Annotated[HexBytes, Field(min_length=32, max_length=32)]
    nonce: Annotated[HexBytes, Field(min_length=12, max_length=12)]
    wraps: Annotated[tuple[WrappedKey, ...], Field(min_length=1)]


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
    sealed: Sealed | None = None
    #: The network the sender signed for (its directory's name); None from a sender without a directory.
    network: NetworkName | None = None
    #: The sender's number for this frame (1, 2, ... per frame it signs; a frame sent again keeps it), so that an
    #: auditor can tell frames withheld or lost from its gaps; None from a sender that does not number its frames.
    sequence: SequenceNumber | None = None

    @model_validator(mode="after")
    def _sealed_for_the_recipients(self) -> Envelope:
        if self.sealed is not None and sorted(w.recipient for w in self.sealed.wraps) != sorted(self.recipients):
            raise ValueError("a sealed message has one wrapped key for each recipient, and only those")
        return self
