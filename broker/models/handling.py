"""``op7.handling``: permission to disseminate, and forwarded messages."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, ClassVar

from pydantic import Field, SerializationInfo, SerializerFunctionWrapHandler, model_serializer, model_validator

from broker.models._types import Blob, Identifier, Languages, MessageId, NodeId, Text, Timestamp
from broker.models.message import ID, Message

#: The ``context`` of the one dump that carries a forwarded original's content key: the Avro datum (broker.wire.codec).
WIRE = {"op7.wire": True}


class ControlledAction(StrEnum):
    ONWARD_TRANSMISSION = "OnwardTransmission"
    JUDICIAL_USE = "JudicialUse"
    OPERATIONAL_ACTION = "OperationalAction"


class DisseminationRequest(Message):
    avro_name: ClassVar[str] = "op7.handling.DisseminationRequest"

    request_id: ID
    case_id: Identifier | None = None
    original_message_id: MessageId
    original_sender: NodeId
    action: ControlledAction
    to: tuple[NodeId, ...] = ()
    purpose: Text
    languages: Languages

    @model_validator(mode="after")
    def _targets(self) -> DisseminationRequest:
        if self.action is ControlledAction.ONWARD_TRANSMISSION and not self.to:
            raise ValueError("a request for onward transmission names the nodes in 'to'")
        return self


class DisseminationDecision(Message):
    avro_name: ClassVar[str] = "op7.handling.DisseminationDecision"

    response_id: ID
    request_id: Identifier
    case_id: Identifier | None = None
    original_message_id: MessageId
    action: ControlledAction
    granted: bool
    grantee: NodeId
    to: tuple[NodeId, ...] = ()
    conditions: Text | None = None
    grounds: Text | None = None
    valid_until: Timestamp | None = None
    languages: Languages

    @model_validator(mode="after")
    def _explained(self) -> DisseminationDecision:
        if not self.granted and not self.grounds:
            raise ValueError("a refusal gives its grounds")
        return self


class ForwardedMessage(Message):
    avro_name: ClassVar[str] = "op7.handling.ForwardedMessage"

    forward_id: ID
    case_id: Identifier | None = None
    original_frame: Annotated[Blob, Field(min_length=1)]
    #: Secret: left out of reprs and of every dump but the wire's (``context=WIRE``), so no log or screen shows it.
    original_content_key: Annotated[Blob, Field(min_length=32, max_length=32)] | None = Field(default=None, repr=False)
    permission_frame: Blob | None = None
    note: Text | None = None
    languages: Languages

    @model_serializer(mode="wrap")
    def _without_key(self, handler: SerializerFunctionWrapHandler, info: SerializationInfo) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        if not (info.context or {}).get("op7.wire"):
            data.pop("original_content_key", None)
        return data
