"""Each condition of the handling rules (broker.trust.handling) on its own: what passes, what is refused, and the
exact words of each refusal (a user reads them to know whom to ask)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from broker.errors import HandlingRuleError
from broker.models import ControlledAction, DisseminationDecision, Envelope, UseRestriction
from broker.trust.handling import RULES, check_forward, check_grant, check_use
from broker.wire.envelope import NodeIdentity, build
from broker.wire.signing import SigningKey
from tests.conftest import example, make_alert, now

ONWARD = ControlledAction.ONWARD_TRANSMISSION
JUDICIAL = ControlledAction.JUDICIAL_USE
OPERATIONAL = ControlledAction.OPERATIONAL_ACTION
FR_GN = NodeIdentity("FR.GN", SigningKey.generate())
HINT = "; ask FR.GN with a DisseminationRequest for permission"


def original(
    alert_data: dict[str, Any], tlp: str = "GREEN", *restrictions: str, recipients: tuple[str, ...] = ()
) -> Envelope:
    alert = make_alert(alert_data, handling={"tlp": tlp, "restrictions": list(restrictions)})
    envelope, _ = build(FR_GN, alert, recipients=recipients, now=now())
    return envelope


def grant(envelope: Envelope, **changes: Any) -> DisseminationDecision:
    """FR.GN's grant to ES.PN to pass ``envelope`` on to MX.FGR and DE.BKA, with ``changes``."""
    data = example("DisseminationDecision").model_dump() | {
        "original_message_id": envelope.message_id,
        "grantee": "ES.PN",
        "to": ["MX.FGR", "DE.BKA"],
        "valid_until": None,
    }
    return DisseminationDecision.model_validate(data | changes)


def refusal(envelope: Envelope, forwarder: str, to: tuple[str, ...] | None, **grant: Any) -> str:
    with pytest.raises(HandlingRuleError) as info:
        check_forward(envelope, forwarder, to, at=now(), **grant)
    return str(info.value)


def test_a_grant_counts_only_when_every_condition_holds(alert_data: dict[str, Any]) -> None:
    env = original(alert_data, "RED")
    good = grant(env)
    at = now()
    assert check_grant(env, ONWARD, good, "FR.GN", ["MX.FGR", "DE.BKA"], at, "ES.PN")
    assert check_grant(env, ONWARD, good, "FR.GN", ["MX.FGR"], at, "ES.PN")  # fewer nodes than granted
    other_issuer = example("DisseminationDecision").issuer.model_copy(update={"node": "ES.PN"})
    refused = {
        "no grant": (None, "FR.GN", ["MX.FGR"], "ES.PN"),
        "to everyone": (good, "FR.GN", None, "ES.PN"),
        "refused": (grant(env, granted=False, grounds="no"), "FR.GN", ["MX.FGR"], "ES.PN"),
        "signed by another node": (good, "ES.PN", ["MX.FGR"], "ES.PN"),
        "issued in another node's name": (grant(env, issuer=other_issuer), "FR.GN", ["MX.FGR"], "ES.PN"),
        "for another message": (
            grant(env, original_message_id="01a22c53-8200-7000-8000-9e2f2b3759e3"),
            "FR.GN",
            ["MX.FGR"],
            "ES.PN",
        ),
        "for another action": (grant(env, action="JudicialUse"), "FR.GN", ["MX.FGR"], "ES.PN"),
        "to a node not granted": (good, "FR.GN", ["MX.FGR", "FR.PN"], "ES.PN"),
        "to another grantee": (good, "FR.GN", ["MX.FGR"], "DE.BKA"),
    }
    for why, (decision, signer, to, grantee) in refused.items():
        assert not check_grant(env, ONWARD, decision, signer, to, at, grantee), why


def test_a_grant_holds_until_its_valid_until_included(alert_data: dict[str, Any]) -> None:
    env = original(alert_data, "RED")
    until = now() + timedelta(hours=1)
    decision = grant(env, valid_until=until)
    assert check_grant(env, ONWARD, decision, "FR.GN", ["MX.FGR"], until, "ES.PN")
    assert not check_grant(env, ONWARD, decision, "FR.GN", ["MX.FGR"], until + timedelta(microseconds=1), "ES.PN")


def test_passing_on_needs_nodes_and_passing_to_oneself_is_not_passing_on(alert_data: dict[str, Any]) -> None:
    red = original(alert_data, "RED", "NO_ONWARD_TRANSMISSION", recipients=("ES.PN",))
    assert refusal(red, "ES.PN", ()) == "passing information on needs the nodes it goes to"
    check_forward(red, "ES.PN", ("ES.PN",), at=now())
    # The forwarder among the nodes is left out of those named.
    assert refusal(red, "ES.PN", ("ES.PN", "MX.FGR")).startswith(f"cannot pass {red.message_id} to MX.FGR: ")


def test_a_directed_message_is_passed_on_by_its_recipients(alert_data: dict[str, Any]) -> None:
    directed = original(alert_data, "GREEN", recipients=("FR.PN", "ES.PN"))
    check_forward(directed, "ES.PN", ("MX.FGR",), at=now())
    assert refusal(directed, "DE.BKA", ("MX.FGR",)) == "DE.BKA was not a recipient of the original"
    decision = grant(directed, grantee="DE.BKA")
    check_forward(directed, "DE.BKA", ("MX.FGR",), grant=decision, grant_sender="FR.GN", at=now())
    # The grant of another node, or signed by the forwarder, does not lift the rule.
    for signer, decision in (("FR.GN", grant(directed)), ("DE.BKA", grant(directed, grantee="DE.BKA"))):
        assert (
            refusal(directed, "DE.BKA", ("MX.FGR",), grant=decision, grant_sender=signer)
            == "DE.BKA was not a recipient of the original"
        )
    check_forward(original(alert_data, "GREEN"), "DE.BKA", ("MX.FGR",), at=now())  # a broadcast: anyone read it


def test_no_onward_transmission_at_every_level(alert_data: dict[str, Any]) -> None:
    rule = RULES[UseRestriction.NO_ONWARD_TRANSMISSION]
    for tlp in ("CLEAR", "GREEN", "AMBER"):
        env = original(alert_data, tlp, "NO_ONWARD_TRANSMISSION")
        assert (
            refusal(env, "ES.PN", ("MX.FGR", "ES.GC")) == f"cannot pass {env.message_id} to ES.GC, MX.FGR: {rule}{HINT}"
        )
        assert refusal(env, "ES.PN", None) == f"cannot pass {env.message_id} to everyone on the topic: {rule}{HINT}"
        check_forward(env, "ES.PN", ("MX.FGR",), grant=grant(env), grant_sender="FR.GN", at=now())


@pytest.mark.parametrize("tlp", ["RED", "AMBER_STRICT"])
def test_red_and_amber_strict_go_to_no_other_node(alert_data: dict[str, Any], tlp: str) -> None:
    env = original(alert_data, tlp)
    rule = RULES[env.handling.tlp]
    assert refusal(env, "ES.PN", ("ES.GC",)) == f"cannot pass {env.message_id} to ES.GC: {rule}{HINT}"
    assert refusal(env, "ES.PN", None) == f"cannot pass {env.message_id} to everyone on the topic: {rule}{HINT}"
    check_forward(env, "ES.PN", ("MX.FGR", "DE.BKA"), grant=grant(env), grant_sender="FR.GN", at=now())


def test_amber_goes_to_the_forwarders_own_country_only(alert_data: dict[str, Any]) -> None:
    env = original(alert_data, "AMBER")
    rule = RULES[env.handling.tlp]
    check_forward(env, "ES.PN", ("ES.GC",), at=now())
    check_forward(env, "ES.PN", ("ES.GC", "ES.MOSSOS"), at=now())
    assert refusal(env, "ES.PN", ("MX.FGR",)) == f"cannot pass {env.message_id} to MX.FGR: {rule}{HINT}"
    assert refusal(env, "ES.PN", ("ES.GC", "MX.FGR", "DE.BKA")) == (
        f"cannot pass {env.message_id} to DE.BKA, MX.FGR: {rule}{HINT}"  # the foreign nodes only
    )
    assert refusal(env, "ES.PN", None) == f"cannot pass {env.message_id} to everyone on the topic: {rule}{HINT}"
    check_forward(env, "ES.PN", ("MX.FGR",), grant=grant(env), grant_sender="FR.GN", at=now())


@pytest.mark.parametrize("tlp", ["CLEAR", "GREEN"])
def test_clear_and_green_go_anywhere(alert_data: dict[str, Any], tlp: str) -> None:
    env = original(alert_data, tlp)
    check_forward(env, "ES.PN", ("MX.FGR", "DE.BKA"), at=now())
    check_forward(env, "ES.PN", None, at=now())


def test_each_use_restriction_forbids_its_use_only_until_granted_to_the_user(alert_data: dict[str, Any]) -> None:
    for action, restriction, words in (
        (JUDICIAL, "NO_JUDICIAL_USE", "not for judicial use without the originator's permission"),
        (OPERATIONAL, "NO_OPERATIONAL_ACTION", "no operational action without the originator's permission"),
    ):
        env = original(alert_data, "GREEN", restriction, "NO_ONWARD_TRANSMISSION")
        with pytest.raises(HandlingRuleError) as info:
            check_use(env, action, user="ES.PN", at=now())
        assert str(info.value) == f"{env.message_id}: {words}{HINT}"
        check_use(
            env, action, user="ES.PN", grant=grant(env, action=action.value, to=[]), grant_sender="FR.GN", at=now()
        )
        for user, decision, signer in (
            ("DE.BKA", grant(env, action=action.value, to=[]), "FR.GN"),  # not the grantee
            ("ES.PN", grant(env, action=action.value, to=[]), "ES.PN"),  # granted by the user itself
            ("ES.PN", grant(env, to=[]), "FR.GN"),  # a grant of another action
        ):
            with pytest.raises(HandlingRuleError):
                check_use(env, action, user=user, grant=decision, grant_sender=signer, at=now())
        # Without the restriction, the use needs no grant.
        check_use(original(alert_data, "RED", "NO_ONWARD_TRANSMISSION"), action, user="ES.PN", at=now())
    # Onward transmission is not a use: check_forward rules it.
    check_use(original(alert_data, "RED", "NO_ONWARD_TRANSMISSION"), ONWARD, user="ES.PN", at=now())
