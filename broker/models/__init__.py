"""Frozen pydantic models mirroring the Avro records in ``schemas/``.

Avro fixes the shape; these models also check what Avro cannot: ISO country and currency codes,
coordinates in range, times that carry a zone, node ids, digests, and rules between fields. Field names
and enum symbols are the Avro ones, so ``model_dump()`` is the Avro datum and ``model_validate(datum)``
reads one back.
"""

from __future__ import annotations

from broker.models._types import NODE_ID_PATTERN, MessageBase, check_node_id, new_message_id
from broker.models.alert import (
    AlertMessageType,
    AlertText,
    KidnappingAlert,
    LastSeen,
    PhotoReference,
    RansomDemand,
    Severity,
    Suspect,
    Urgency,
    Victim,
)
from broker.models.case import CaseInformation, IntelligenceItem, PersonEntry, PersonRole, Sighting
from broker.models.common import (
    Authority,
    Contact,
    Evaluation,
    EvidenceReference,
    FinancialAccount,
    GeoPoint,
    Handling,
    LegalBasis,
    LegalInstrument,
    Location,
    Money,
    Person,
    PhoneNumber,
    RequestUrgency,
    ResponseOutcome,
    Sex,
    Status,
    Tlp,
    UseRestriction,
    Vehicle,
)
from broker.models.cooperation import CollaborationRequest, CollaborationResponse
from broker.models.envelope import Envelope
from broker.models.exchange import ErrorReport, Receipt, ReceiptState, Reminder
from broker.models.extradition import ExtraditionRequest, ExtraditionResponse
from broker.models.handling import ControlledAction, DisseminationDecision, DisseminationRequest, ForwardedMessage
from broker.models.message import Message, Request, Response
from broker.models.mla import MutualLegalAssistanceRequest, MutualLegalAssistanceResponse
from broker.models.proceeds import ProceedsRequest, ProceedsResponse
from broker.models.report import NationalReport
from broker.models.victim import VictimSupportNotification

__all__ = [
    "MESSAGE_MODELS",
    "NODE_ID_PATTERN",
    "check_node_id",
    "AlertMessageType",
    "AlertText",
    "Authority",
    "CaseInformation",
    "CollaborationRequest",
    "CollaborationResponse",
    "Contact",
    "ControlledAction",
    "DisseminationDecision",
    "DisseminationRequest",
    "ForwardedMessage",
    "Envelope",
    "ErrorReport",
    "Evaluation",
    "EvidenceReference",
    "ExtraditionRequest",
    "ExtraditionResponse",
    "FinancialAccount",
    "GeoPoint",
    "Handling",
    "IntelligenceItem",
    "KidnappingAlert",
    "LastSeen",
    "LegalBasis",
    "LegalInstrument",
    "Location",
    "Message",
    "MessageBase",
    "Money",
    "MutualLegalAssistanceRequest",
    "MutualLegalAssistanceResponse",
    "NationalReport",
    "Person",
    "PersonEntry",
    "PersonRole",
    "PhoneNumber",
    "PhotoReference",
    "ProceedsRequest",
    "ProceedsResponse",
    "RansomDemand",
    "Receipt",
    "ReceiptState",
    "Reminder",
    "Request",
    "RequestUrgency",
    "Response",
    "ResponseOutcome",
    "Severity",
    "Sex",
    "Sighting",
    "Status",
    "Suspect",
    "Tlp",
    "Urgency",
    "UseRestriction",
    "Vehicle",
    "Victim",
    "VictimSupportNotification",
    "message_model",
    "new_message_id",
]

#: Payload models by Avro full name.
MESSAGE_MODELS: dict[str, type[Message]] = {
    model.avro_name: model
    for model in (
        KidnappingAlert,
        CaseInformation,
        MutualLegalAssistanceRequest,
        MutualLegalAssistanceResponse,
        ExtraditionRequest,
        ExtraditionResponse,
        CollaborationRequest,
        CollaborationResponse,
        ProceedsRequest,
        ProceedsResponse,
        VictimSupportNotification,
        NationalReport,
        Receipt,
        ErrorReport,
        Reminder,
        DisseminationRequest,
        DisseminationDecision,
        ForwardedMessage,
    )
}


def message_model(name: str) -> type[Message]:
    """The model of a message type by full name (``op7.mla.MutualLegalAssistanceRequest``), short name
    (``MutualLegalAssistanceRequest``, case-insensitive) or one-type area (``alert``); else :class:`KeyError`."""
    if name in MESSAGE_MODELS:
        return MESSAGE_MODELS[name]
    wanted = name.lower()
    for full, model in MESSAGE_MODELS.items():
        if full.rsplit(".", 1)[1].lower() == wanted:
            return model
    # An area with one type stands for it: "alert", "case", "report", "victim".
    in_area = [model for full, model in MESSAGE_MODELS.items() if full.split(".")[1] == wanted]
    if len(in_area) == 1:
        return in_area[0]
    raise KeyError(name)
