"""Fields every message type carries, and the shapes shared by requests and responses."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, model_validator

from broker.models._types import Identifier, Languages, MessageBase, Timestamp, new_id
from broker.models.common import Authority, Handling, RequestUrgency, Status

__all__ = ["ID", "Message", "Request", "Response"]

#: The message's own identifier (alert_id, request_id, ...): generated when omitted.
ID = Annotated[Identifier, Field(default_factory=new_id)]


class Message(MessageBase):
    """Status, time of sending, handling code and issuing authority: carried by every message type."""

    status: Status
    sent_at: Timestamp
    handling: Handling
    issuer: Authority


class Request(Message):
    """A request from one State's authority to another's."""

    request_id: ID
    case_id: Identifier
    requesting_authority: Authority
    requested_authority: Authority
    urgency: RequestUrgency
    languages: Languages

    @model_validator(mode="after")
    def _two_parties(self) -> Request:
        if self.requesting_authority.node == self.requested_authority.node:
            raise ValueError("requesting_authority and requested_authority are the same node")
        return self


#: Outcomes after which the answering authority must say why.
_NEEDS_GROUNDS = {"Refused", "NeedsClarification", "Declined", "AcceptedWithConditions"}


class Response(Message):
    """An answer to a request; ``grounds`` (or ``conditions``) are required when it does not simply comply."""

    response_id: ID
    request_id: Identifier
    case_id: Identifier
    languages: Languages

    @model_validator(mode="after")
    def _grounds(self) -> Response:
        outcome: Any = getattr(self, "outcome", None) or getattr(self, "decision", None)
        explanation = getattr(self, "grounds", None) or getattr(self, "conditions", None)
        if outcome is not None and str(outcome) in _NEEDS_GROUNDS and not explanation:
            field = "conditions" if str(outcome) == "AcceptedWithConditions" else "grounds"
            raise ValueError(f"{field} are required when the outcome is {outcome}")
        return self
