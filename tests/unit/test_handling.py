"""Handling rules: what each TLP level and restriction allows, grants, and the checks on forwarded messages."""

from __future__ import annotations

import base64
from datetime import datetime, timedelta
from typing import Any

import pytest

from broker.errors import HandlingRuleError, PolicyError
from broker.models import ControlledAction, DisseminationDecision, ForwardedMessage, KidnappingAlert
from broker.node.node import Node
from broker.transport import EmbeddedTransport
from broker.trust.handling import check_forward, check_use
from broker.trust.store import TrustStore
from broker.wire.codec import decode, encode
from broker.wire.envelope import NodeIdentity, build
from broker.wire.signing import SigningKey
from tests.conftest import example, make_alert, now

NODES = ("FR.GN", "FR.PN", "ES.PN", "MX.FGR", "DE.BKA")
KEYS = {n: SigningKey.generate() for n in NODES}
TRUST = TrustStore({n: [k.public] for n, k in KEYS.items()})


def sent(
    alert_data: dict[str, Any],
    tlp: str,
    restrictions: tuple[str, ...] = (),
    recipients: tuple[str, ...] = (),
    at: datetime | None = None,
) -> Any:
    alert = make_alert(alert_data, handling={"tlp": tlp, "restrictions": list(restrictions)})
    return build(NODES_ID("FR.GN"), alert, recipients=recipients, now=at or now())


def NODES_ID(node: str) -> NodeIdentity:
    return NodeIdentity(node, KEYS[node])


@pytest.mark.parametrize(
    ("tlp", "to", "allowed"),
    [
        ("CLEAR", None, True),
        ("GREEN", ("MX.FGR",), True),
        ("GREEN", None, True),
        ("AMBER", ("ES.PN",), True),  # ES.PN passing it to itself
        ("AMBER", ("MX.FGR",), False),
        ("AMBER_STRICT", ("ES.PN",), True),  # to itself: nothing is passed on
        ("AMBER_STRICT", ("MX.FGR",), False),
        ("RED", ("MX.FGR",), False),
    ],
)
def test_what_each_level_allows(
    alert_data: dict[str, Any], tlp: str, to: tuple[str, ...] | None, allowed: bool
) -> None:
    envelope, _ = sent(alert_data, tlp)
    if allowed:
        check_forward(envelope, "ES.PN", to, at=now())
    else:
        with pytest.raises(HandlingRuleError, match="TLP:"):
            check_forward(envelope, "ES.PN", to, at=now())


def test_no_onward_transmission_whatever_the_level_and_uses(alert_data: dict[str, Any]) -> None:
    envelope, _ = sent(alert_data, "CLEAR", ("NO_ONWARD_TRANSMISSION", "NO_JUDICIAL_USE"))
    with pytest.raises(HandlingRuleError, match="no onward transmission without the originator's permission"):
        check_forward(envelope, "ES.PN", ("MX.FGR",), at=now())
    with pytest.raises(HandlingRuleError, match="not for judicial use"):
        check_use(envelope, ControlledAction.JUDICIAL_USE, user="ES.PN", at=now())
    check_use(envelope, ControlledAction.OPERATIONAL_ACTION, user="ES.PN", at=now())
    with pytest.raises(HandlingRuleError, match="needs the nodes it goes to"):
        check_forward(envelope, "ES.PN", (), at=now())


def _grant(envelope: Any, **changes: Any) -> DisseminationDecision:
    data = (
        example("DisseminationDecision").model_dump()
        | {"original_message_id": envelope.message_id, "grantee": "ES.PN", "to": ["MX.FGR"]}
        | changes
    )
    return DisseminationDecision.model_validate(data)


def test_grants_are_bound_to_message_signer_grantee_targets_and_time(alert_data: dict[str, Any]) -> None:
    envelope, _ = sent(alert_data, "RED")
    good = _grant(envelope)
    check_forward(envelope, "ES.PN", ("MX.FGR",), grant=good, grant_sender="FR.GN", at=now())
    for grant, signer, forwarder, to in (
        (good, "ES.PN", "ES.PN", ("MX.FGR",)),  # signed by someone else than the originator
        (good, "FR.GN", "DE.BKA", ("MX.FGR",)),  # used by another node than the grantee
        (good, "FR.GN", "ES.PN", ("MX.FGR", "DE.BKA")),  # to more nodes than granted
        (good, "FR.GN", "ES.PN", None),  # to everyone
        (_grant(envelope, granted=False, grounds="no"), "FR.GN", "ES.PN", ("MX.FGR",)),
        (_grant(envelope, valid_until=now() - timedelta(days=1)), "FR.GN", "ES.PN", ("MX.FGR",)),
        (_grant(envelope, action="JudicialUse"), "FR.GN", "ES.PN", ("MX.FGR",)),
    ):
        with pytest.raises(HandlingRuleError):
            check_forward(envelope, forwarder, to, grant=grant, grant_sender=signer, at=now())


def _forward(original: bytes, forwarder: str, **changes: Any) -> ForwardedMessage:
    data = {
        "status": "Exercise",
        "sent_at": now(),
        "original_frame": original,
        "languages": ["en"],
        "handling": {"tlp": "GREEN"},
        "issuer": {"node": forwarder, "name": "x", "contact": {"desk": "d", "phone": "+33100000000"}},
    } | changes
    return ForwardedMessage.model_validate(data)


@pytest.fixture
def receiver() -> Node:
    return Node(EmbeddedTransport(), TRUST, NODES_ID("MX.FGR"))


def test_a_receiver_checks_what_it_is_forwarded(alert_data: dict[str, Any], receiver: Node) -> None:
    green, frame = sent(alert_data, "GREEN")
    opened = receiver.open_forwarded(_forward(frame, "ES.PN"), "ES.PN", sealed=False)
    assert isinstance(opened.message, KidnappingAlert) and opened.envelope == green
    cases = {
        "handling": _forward(frame, "ES.PN", handling={"tlp": "CLEAR"}),
        "content key": _forward(frame, "ES.PN", original_content_key=bytes(32)),
    }
    for name, forwarded in cases.items():
        with pytest.raises(PolicyError) as info:
            receiver.open_forwarded(forwarded, "ES.PN", sealed=False)
        assert info.value.reason == "bad-forward", name
    _, directed = sent(alert_data, "GREEN", recipients=("FR.PN",))
    with pytest.raises(PolicyError, match=r"ES\.PN was not a recipient of the original"):
        receiver.open_forwarded(_forward(directed, "ES.PN"), "ES.PN", sealed=False)
    _, stale = sent(alert_data, "GREEN", at=now() - timedelta(days=30))
    with pytest.raises(PolicyError, match="older than"):
        receiver.open_forwarded(_forward(stale, "ES.PN"), "ES.PN", sealed=False)
    _, red = sent(alert_data, "RED")
    with pytest.raises(PolicyError, match="TLP:RED"):
        receiver.open_forwarded(_forward(red, "ES.PN", handling={"tlp": "RED"}), "ES.PN", sealed=False)


def test_nested_forwards_are_checked_all_the_way_down(alert_data: dict[str, Any], receiver: Node) -> None:
    _, red = sent(alert_data, "RED", recipients=("ES.PN",))
    # ES.PN wraps the RED original in a forward labelled GREEN; DE.BKA passes ES.PN's forward on, which on
    # its own face is allowed. Only the check one level down finds the RED original.
    _, inner = build(NODES_ID("ES.PN"), _forward(red, "ES.PN"), recipients=("DE.BKA",), now=now())
    outer = _forward(inner, "DE.BKA")
    with pytest.raises(PolicyError, match="does not carry the original's handling code"):
        receiver.open_forwarded(outer, "DE.BKA", sealed=False)


def test_a_use_grant_lifts_the_restriction_for_its_grantee_only(alert_data: dict[str, Any]) -> None:
    envelope, _ = sent(alert_data, "GREEN", ("NO_JUDICIAL_USE",))
    grant = _grant(envelope, action="JudicialUse", to=[])  # issued to ES.PN
    check_use(envelope, ControlledAction.JUDICIAL_USE, user="ES.PN", grant=grant, grant_sender="FR.GN", at=now())
    with pytest.raises(HandlingRuleError, match="not for judicial use"):
        check_use(envelope, ControlledAction.JUDICIAL_USE, user="DE.BKA", grant=grant, grant_sender="FR.GN", at=now())


def test_a_forwarded_content_key_stays_out_of_reprs_and_dumps_but_not_off_the_wire(alert_data: dict[str, Any]) -> None:
    _, frame = sent(alert_data, "GREEN")
    key = bytes(range(100, 132))
    forwarded = _forward(frame, "ES.PN", original_content_key=key)
    shown = [repr(forwarded), str(forwarded), forwarded.model_dump_json(), str(forwarded.model_dump())]
    shown.append(str(forwarded.model_dump(mode="json")))
    for text in shown:
        assert key.hex() not in text and str(key) not in text and base64.b64encode(key).decode() not in text
        assert "original_content_key" not in text
    schema, payload = encode(forwarded)
    decoded = decode(forwarded.avro_name, schema.fingerprint, payload)
    assert isinstance(decoded, ForwardedMessage) and decoded.original_content_key == key and decoded == forwarded
