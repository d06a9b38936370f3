"""Every message type of the catalogue: example valid, Avro round trip, signed envelope round trip."""

from __future__ import annotations

import pytest

from broker.models import MESSAGE_MODELS, Request, message_model
from broker.trust.store import TrustStore
from broker.wire.codec import decode, encode
from broker.wire.envelope import NodeIdentity, build, open_frame
from broker.wire.schemas import default_registry
from broker.wire.signing import SigningKey
from tests.conftest import EXAMPLES, example, now


def test_every_schema_message_type_has_a_model_and_an_example() -> None:
    registry = default_registry()
    assert set(registry.message_types) == set(MESSAGE_MODELS)
    assert {message_model(short).avro_name for short in EXAMPLES} == set(MESSAGE_MODELS)


@pytest.mark.parametrize("type_name", sorted(EXAMPLES))
def test_round_trip_through_avro_and_a_signed_envelope(type_name: str) -> None:
    message = example(type_name)
    schema, data = encode(message)
    assert decode(schema.name, schema.fingerprint, data) == message
    issuer = message.issuer.node
    key = SigningKey.generate()
    recipients = (message.requested_authority.node,) if isinstance(message, Request) else ()
    env, frame = build(NodeIdentity(issuer, key), message, recipients=recipients, now=now())
    opened = open_frame(frame, TrustStore({issuer: [key.public]}))
    assert opened.message == message
    assert opened.envelope == env
    assert env.message_type == message.avro_name
    assert env.languages == tuple(getattr(message, "languages", ()))
    assert env.legal_basis == tuple(getattr(message, "legal_basis", ()))


@pytest.mark.parametrize(
    ("type_name", "change", "fragment"),
    [
        ("MutualLegalAssistanceResponse", {"outcome": "Refused", "grounds": None}, "grounds are required"),
        ("CollaborationResponse", {"decision": "AcceptedWithConditions"}, "conditions are required"),
        ("MutualLegalAssistanceRequest", {"deadline": "-1h"}, "deadline is not after"),
        ("ProceedsRequest", {"court_order": None}, "needs the court_order"),
        ("NationalReport", {"country": "ES"}, "issued by a node of ES"),
        ("NationalReport", {"period_end": "2025-01-01"}, "period_end is before"),
        ("ExtraditionRequest", {"charges": []}, "at least 1 item"),
        ("CaseInformation", {"evaluation": {"source": "E", "accuracy": 5}}, "'A', 'B', 'C' or 'X'"),
    ],
)
def test_rules_between_fields(type_name: str, change: dict[str, object], fragment: str) -> None:
    import json

    from broker.errors import InputError
    from broker.models.inputs import validate_outgoing
    from tests.conftest import ROOT

    data = json.loads((ROOT / "examples" / EXAMPLES[type_name]).read_text()) | change
    with pytest.raises(InputError) as info:
        validate_outgoing(message_model(type_name), data, "x.json", now=now())
    assert fragment in str(info.value)


def test_figures_must_add_up() -> None:
    report = example("NationalReport")
    data = report.model_dump()
    data["figures"]["victims_rescued"] = 100
    with pytest.raises(ValueError, match="more than the 47 victims"):
        type(report).model_validate(data)


def test_a_request_names_two_different_authorities() -> None:
    request = example("MutualLegalAssistanceRequest")
    data = request.model_dump() | {"requested_authority": request.requesting_authority.model_dump()}
    with pytest.raises(ValueError, match="same node"):
        type(request).model_validate(data)
