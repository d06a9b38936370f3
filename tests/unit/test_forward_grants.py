"""Only the original sender's grant lets a node that was not a recipient pass a directed message on."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from broker.clock import ManualClock
from broker.errors import HandlingRuleError, PolicyError
from broker.models import DisseminationDecision, ForwardedMessage, KidnappingAlert
from broker.node.forwarding import forwarded_message
from broker.node.node import Node
from broker.node.subscription import Delivery
from broker.transport import EmbeddedTransport
from broker.transport.base import Record
from broker.trust.store import TrustStore
from broker.wire.envelope import NodeIdentity, build
from broker.wire.signing import SigningKey
from tests.conftest import example, make_alert, now

NODES = ("FR.GN", "FR.PN", "ES.PN", "MX.FGR", "DE.BKA")
KEYS = {n: SigningKey.generate() for n in NODES}
TRUST = TrustStore({n: [k.public] for n, k in KEYS.items()})


def _authority(node: str) -> dict[str, Any]:
    return {"node": node, "name": "x", "contact": {"desk": "d", "phone": "+33100000000"}}


def _directed(alert_data: dict[str, Any]) -> tuple[Any, bytes]:
    """A GREEN alert from FR.GN to FR.PN only, unsealed: ES.PN was not a recipient."""
    alert = make_alert(alert_data, handling={"tlp": "GREEN"})
    return build(NodeIdentity("FR.GN", KEYS["FR.GN"]), alert, recipients=("FR.PN",), now=now())


def _permission(signer: str, original_id: str, **changes: Any) -> tuple[DisseminationDecision, Any, bytes]:
    """A DisseminationDecision signed by ``signer`` (its issuer), granting ES.PN to pass ``original_id`` to MX.FGR."""
    data = (
        example("DisseminationDecision").model_dump()
        | {"original_message_id": original_id, "grantee": "ES.PN", "to": ["MX.FGR"], "issuer": _authority(signer)}
        | changes
    )
    decision = DisseminationDecision.model_validate(data)
    envelope, frame = build(NodeIdentity(signer, KEYS[signer]), decision, recipients=("ES.PN",), now=now())
    return decision, envelope, frame


def _forward(original: bytes, permission: bytes | None) -> ForwardedMessage:
    return ForwardedMessage.model_validate(
        {
            "status": "Exercise",
            "sent_at": now(),
            "original_frame": original,
            "permission_frame": permission,
            "languages": ["en"],
            "handling": {"tlp": "GREEN"},
            "issuer": _authority("ES.PN"),
        }
    )


@pytest.fixture
def receiver() -> Node:
    return Node(EmbeddedTransport(), TRUST, NodeIdentity("MX.FGR", KEYS["MX.FGR"]))


def test_a_self_granted_permission_does_not_make_a_non_recipient_a_forwarder(
    alert_data: dict[str, Any], receiver: Node
) -> None:
    original, frame = _directed(alert_data)
    _, _, own = _permission("ES.PN", original.message_id)
    with pytest.raises(PolicyError, match=r"ES\.PN was not a recipient of the original") as info:
        receiver.open_forwarded(_forward(frame, own), "ES.PN", sealed=False)
    assert info.value.reason == "bad-forward"


@pytest.mark.parametrize(
    ("signer", "changes", "why"),
    [
        ("DE.BKA", {}, "a third party's grant"),
        ("FR.GN", {"original_message_id": "01a22c53-8200-7000-8000-9e2f2b3759e3"}, "another message"),
        ("FR.GN", {"action": "JudicialUse"}, "another action"),
        ("FR.GN", {"grantee": "DE.BKA"}, "another grantee"),
        ("FR.GN", {"to": ["DE.BKA"]}, "other targets"),
        ("FR.GN", {"granted": False, "grounds": "no"}, "a refusal"),
        ("FR.GN", {"valid_until": timedelta(minutes=1)}, "a grant expired by the time it is used"),
    ],
)
def test_only_the_original_senders_grant_for_this_forward_lifts_the_recipient_rule(
    alert_data: dict[str, Any],
    receiver: Node,
    clock: ManualClock,
    signer: str,
    changes: dict[str, Any],
    why: str,
) -> None:
    original, frame = _directed(alert_data)
    if "valid_until" in changes:
        changes = {"valid_until": now() + changes["valid_until"]}
    _, _, permission = _permission(signer, original.message_id, **changes)
    clock.advance(timedelta(minutes=2))
    with pytest.raises(PolicyError, match="not a recipient") as info:
        receiver.open_forwarded(_forward(frame, permission), "ES.PN", sealed=False)
    assert info.value.reason == "bad-forward", why


def test_the_original_senders_grant_lifts_the_recipient_rule(alert_data: dict[str, Any], receiver: Node) -> None:
    original, frame = _directed(alert_data)
    _, _, permission = _permission("FR.GN", original.message_id)
    opened = receiver.open_forwarded(_forward(frame, permission), "ES.PN", sealed=False)
    assert isinstance(opened.message, KidnappingAlert) and opened.envelope == original


def test_a_non_recipient_cannot_send_such_a_forward_either(alert_data: dict[str, Any]) -> None:
    original, frame = _directed(alert_data)
    record = Record("op7.inbox.FR.PN", 0, 0, None, frame, 0)
    delivery = Delivery(original, make_alert(alert_data, handling={"tlp": "GREEN"}), frame, record)
    decision, envelope, own = _permission("ES.PN", original.message_id)
    permission = Delivery(envelope, decision, own, record)
    args = (delivery, "ES.PN", ("MX.FGR",), KidnappingAlert.model_validate(alert_data).issuer)
    with pytest.raises(HandlingRuleError, match=r"ES\.PN was not a recipient of the original"):
        forwarded_message(*args, now=now(), opener=None, permission=permission)
    decision, envelope, granted = _permission("FR.GN", original.message_id)
    forwarded = forwarded_message(
        *args, now=now(), opener=None, permission=Delivery(envelope, decision, granted, record)
    )
    assert forwarded.permission_frame == granted
