"""Handling rules: what the originator's handling code allows a receiver to do with information.

The code travels signed in the envelope (TLP 2.0 level plus use restrictions). Onward transmission is
checked when a node forwards a message (:func:`check_forward`) and again by every node that receives a
forwarded message; uses are checked on request (:func:`check_use`). A signed
``DisseminationDecision`` from the originator is the one way past a restriction.

TLP 2.0 (FIRST), as applied between op7 nodes (a node is an organisation):

- CLEAR: disclosure is not limited.
- GREEN: limited disclosure, recipients can spread this within their community: any node of the network.
- AMBER: limited disclosure, recipients can only spread this on a need-to-know basis within their
  organisation and its clients: nodes of the forwarding node's own country.
- AMBER+STRICT: restricts sharing to the organisation only: no other node.
- RED: for the eyes and ears of individual recipients only, no further disclosure: no other node.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from broker.errors import HandlingRuleError
from broker.models import ControlledAction, DisseminationDecision, Envelope, Tlp, UseRestriction

__all__ = ["RULES", "check_forward", "check_grant", "check_use"]

#: The rule quoted when a level forbids passing information on.
RULES = {
    Tlp.RED: "TLP:RED: for the eyes and ears of individual recipients only, no further disclosure",
    Tlp.AMBER_STRICT: "TLP:AMBER+STRICT: sharing is restricted to the recipient organisation only",
    Tlp.AMBER: "TLP:AMBER: sharing only on a need-to-know basis within the recipient organisation and its "
    "clients (nodes of its own country)",
    UseRestriction.NO_ONWARD_TRANSMISSION: "no onward transmission without the originator's permission",
    UseRestriction.NO_JUDICIAL_USE: "not for judicial use without the originator's permission",
    UseRestriction.NO_OPERATIONAL_ACTION: "no operational action without the originator's permission",
}

_USE_RESTRICTION = {
    ControlledAction.JUDICIAL_USE: UseRestriction.NO_JUDICIAL_USE,
    ControlledAction.OPERATIONAL_ACTION: UseRestriction.NO_OPERATIONAL_ACTION,
}


def check_grant(
    original: Envelope,
    action: ControlledAction,
    grant: DisseminationDecision | None,
    grant_sender: str | None,
    to: Iterable[str] | None,
    at: datetime,
    grantee: str,
) -> bool:
    """Whether ``grant`` (verified, signed by ``grant_sender``) permits ``grantee`` to do ``action`` on ``original``.

    A grant serves its grantee only: another node holding a copy gains nothing from it.
    """
    if grant is None or to is None:
        return False  # a grant names its nodes: it never permits passing information to everyone
    return (
        grant.granted
        and grant_sender == original.sender
        and grant.issuer.node == original.sender
        and grant.original_message_id == original.message_id
        and grant.action is action
        and (grant.valid_until is None or at <= grant.valid_until)
        and set(to) <= set(grant.to)
        and grant.grantee == grantee
    )


def check_forward(
    original: Envelope,
    forwarder: str,
    to: Iterable[str] | None,
    *,
    grant: DisseminationDecision | None = None,
    grant_sender: str | None = None,
    at: datetime,
) -> None:
    """Raise :class:`HandlingRuleError`, quoting the rule, unless ``forwarder`` may pass ``original`` to ``to``.

    ``to`` None means everyone (re-publishing on a shared topic). Only the original sender's grant
    (:func:`check_grant`) lifts a rule, the one that a directed message is passed on only by its recipients included:
    a grant signed by anyone else, the forwarder itself among them, counts for nothing.
    """
    if to is not None and not set(to):
        raise HandlingRuleError("passing information on needs the nodes it goes to")
    targets = None if to is None else sorted(set(to) - {forwarder})
    if targets == []:
        return
    if check_grant(original, ControlledAction.ONWARD_TRANSMISSION, grant, grant_sender, targets, at, forwarder):
        return
    if original.recipients and forwarder not in original.recipients:
        raise HandlingRuleError(f"{forwarder} was not a recipient of the original")
    where = "everyone on the topic" if targets is None else ", ".join(targets)
    hint = f"; ask {original.sender} with a DisseminationRequest for permission"
    if UseRestriction.NO_ONWARD_TRANSMISSION in original.handling.restrictions:
        raise HandlingRuleError(
            f"cannot pass {original.message_id} to {where}: {RULES[UseRestriction.NO_ONWARD_TRANSMISSION]}{hint}"
        )
    tlp = original.handling.tlp
    if tlp in (Tlp.RED, Tlp.AMBER_STRICT):
        raise HandlingRuleError(f"cannot pass {original.message_id} to {where}: {RULES[tlp]}{hint}")
    if tlp is Tlp.AMBER:
        # A node id starts with its country code (NodeId).
        foreign = [where] if targets is None else [t for t in targets if t[:2] != forwarder[:2]]
        if foreign:
            raise HandlingRuleError(f"cannot pass {original.message_id} to {', '.join(foreign)}: {RULES[tlp]}{hint}")


def check_use(
    original: Envelope,
    action: ControlledAction,
    *,
    user: str,
    grant: DisseminationDecision | None = None,
    grant_sender: str | None = None,
    at: datetime,
) -> None:
    """Raise :class:`HandlingRuleError` if ``original``'s restrictions forbid ``user`` (a node) ``action`` without a
    grant to ``user``."""
    restriction = _USE_RESTRICTION.get(action)
    if restriction is None or restriction not in original.handling.restrictions:
        return
    if not check_grant(original, action, grant, grant_sender, (), at, user):
        raise HandlingRuleError(
            f"{original.message_id}: {RULES[restriction]}; ask {original.sender} with a "
            "DisseminationRequest for permission"
        )
