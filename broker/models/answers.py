"""Which message type answers which request type: an answer of another kind does not answer a request."""

from __future__ import annotations

from collections.abc import Mapping

from broker.models.cooperation import CollaborationRequest, CollaborationResponse
from broker.models.extradition import ExtraditionRequest, ExtraditionResponse
from broker.models.handling import DisseminationDecision, DisseminationRequest
from broker.models.mla import MutualLegalAssistanceRequest, MutualLegalAssistanceResponse
from broker.models.proceeds import ProceedsRequest, ProceedsResponse

__all__ = ["ANSWER_TYPES", "answer_type", "is_answer_type", "short_name"]

#: Request type -> the one answer type that answers it (Avro full names).
ANSWER_TYPES: Mapping[str, str] = {
    request.avro_name: answer.avro_name
    for request, answer in (
        (MutualLegalAssistanceRequest, MutualLegalAssistanceResponse),
        (ExtraditionRequest, ExtraditionResponse),
        (CollaborationRequest, CollaborationResponse),
        (ProceedsRequest, ProceedsResponse),
        (DisseminationRequest, DisseminationDecision),
    )
}

_ANSWERS = frozenset(ANSWER_TYPES.values())


def answer_type(request_type: str) -> str | None:
    """The answer type of ``request_type``; None when it is not a request that expects an answer."""
    return ANSWER_TYPES.get(request_type)


def is_answer_type(message_type: str) -> bool:
    """Whether ``message_type`` answers a request (a response or a dissemination decision)."""
    return message_type in _ANSWERS


def short_name(message_type: str) -> str:
    """``op7.mla.MutualLegalAssistanceResponse`` -> ``MutualLegalAssistanceResponse``, for messages to people."""
    return message_type.rsplit(".", 1)[-1]
