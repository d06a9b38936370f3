"""Passing received information on, and checking what others passed on (docs/PROTOCOL.md §13).

A forward carries the original signed frame intact, so that its origin stays provable, with the originator's
signed permission when the handling code requires one. The sender checks the handling rules before anything
leaves; every receiver checks them again, all the way down a chain of forwards.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from broker.errors import ConfigError, HandlingRuleError, MessageError, PolicyError
from broker.models import Authority, DisseminationDecision, ForwardedMessage, new_message_id
from broker.trust.handling import check_forward
from broker.trust.replay import Freshness
from broker.wire.envelope import Opened, open_frame, open_verified, verify_frame
from broker.wire.schemas import SchemaRegistry
from broker.wire.sealing import Opener
from broker.wire.trust import Trust

if TYPE_CHECKING:
    from broker.node.subscription import Delivery

__all__ = ["ForwardCheck", "forwarded_message"]

#: Forwards of forwards are followed this deep, and no deeper.
MAX_DEPTH = 3


def forwarded_message(
    delivery: Delivery,
    forwarder: str,
    to: tuple[str, ...],
    issuer: Authority,
    *,
    now: datetime,
    opener: Opener | None,
    permission: Delivery | None = None,
    note: str | None = None,
) -> ForwardedMessage:
    """The ForwardedMessage passing ``delivery`` from ``forwarder`` to ``to``, if its handling code allows it.

    Raises :class:`HandlingRuleError` quoting the rule otherwise; ``permission`` is the originator's signed
    ``DisseminationDecision`` granting it. A sealed original travels with its content key (the forward is then
    sealed to the new recipients, so nobody else can read the original).
    """
    grant = permission.message if permission is not None else None
    if grant is not None and not isinstance(grant, DisseminationDecision):
        raise ConfigError("permission must be a DisseminationDecision")
    original = delivery.envelope
    check_forward(
        original, forwarder, to, grant=grant, grant_sender=permission.envelope.sender if permission else None, at=now
    )
    content_key = None
    if original.sealed is not None:
        if opener is None:
            raise ConfigError("this node cannot open the original, so it cannot forward it")
        content_key = opener.content_key(original)
    return ForwardedMessage(
        forward_id=new_message_id(now),
        status=original.status,
        sent_at=now,
        case_id=original.case_id,
        original_frame=delivery.raw,
        original_content_key=content_key,
        permission_frame=permission.raw if permission else None,
        note=note,
        languages=original.languages or ("en",),
        handling=original.handling,
        issuer=issuer,
    )


@dataclass(frozen=True)
class ForwardCheck:
    """What a receiver checks of a forwarded message, with its own trust, schemas and freshness window."""

    trust: Trust
    registry: SchemaRegistry
    freshness: Freshness
    me: str | None

    def open(
        self, forwarded: ForwardedMessage, forwarder: str, now: datetime, *, sealed: bool = True, depth: int = 0
    ) -> Opened:
        """Verify the original (and its permission), check the forward was allowed, return the original opened;
        :class:`PolicyError` (``bad-forward``) when it does not hold.

        ``sealed`` says whether the forwarded message itself was sealed (a content key must never travel in clear).
        """
        try:
            if forwarded.original_content_key is not None and not sealed:
                raise HandlingRuleError("a content key travelled in clear")
            if depth > MAX_DEPTH:
                raise HandlingRuleError("forwarded more than three times")
            original = open_verified(
                verify_frame(forwarded.original_frame, self.trust, self.registry),
                self.registry,
                content_key=forwarded.original_content_key,
            )
            # Originals are held to the same freshness window as direct messages: a forward cannot launder a
            # stale or backdated message (a revoked key's) into acceptance.
            self.freshness.check(original.envelope, now)
            if forwarded.handling != original.envelope.handling:
                raise HandlingRuleError("the forward does not carry the original's handling code")
            grant, grant_sender = self._grant(forwarded, now)
            # check_forward also refuses a forwarder that was not a recipient, unless the original sender granted it.
            to = (self.me,) if self.me else None
            check_forward(original.envelope, forwarder, to, grant=grant, grant_sender=grant_sender, at=now)
            if isinstance(original.message, ForwardedMessage):
                sealed_inside = original.envelope.sealed is not None
                self.open(original.message, original.envelope.sender, now, sealed=sealed_inside, depth=depth + 1)
        except (MessageError, HandlingRuleError) as exc:
            raise PolicyError(f"forwarded by {forwarder}: {exc}", reason="bad-forward") from exc
        return original

    def _grant(self, forwarded: ForwardedMessage, now: datetime) -> tuple[DisseminationDecision | None, str | None]:
        """The permission a forward carries, verified and fresh, with its signer."""
        if forwarded.permission_frame is None:
            return None, None
        permission = open_frame(forwarded.permission_frame, self.trust, self.registry)
        self.freshness.check(permission.envelope, now)
        if isinstance(permission.message, DisseminationDecision):
            return permission.message, permission.envelope.sender
        return None, None
