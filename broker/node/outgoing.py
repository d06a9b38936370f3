"""What a node checks before a message leaves it: anything every receiver would refuse, or that would reach more
eyes than its handling code allows, is refused here, naming the node, key, type or recipient and the reason.

- The signing key is valid at the signing time and not revoked, and the directory allows this node the message
  type: the trust source's own ``check_use``, as every receiver applies it (``key-revoked``, ``type-not-allowed``...).
- Every recipient is known to the trust source (a mistyped node id would otherwise get an inbox nobody reads), and
  has an encryption key when the message is sealed.
- A directed message under TLP:RED or TLP:AMBER+STRICT is sealed to its recipients, or refused if one of them has no
  encryption key: in clear, the payload would be readable by anyone who can read the inbox topics.
- A TLP:RED message names its recipients: "for the eyes and ears of individual recipients only" cannot be met by a
  topic that every node of the network reads.
- An answer (a response, a dissemination decision) is directed to the node it answers, and of the kind its request
  expects (:data:`~broker.models.answers.ANSWER_TYPES`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from broker.errors import ConfigError, VerificationError
from broker.models import Handling, Message, Tlp
from broker.models.answers import answer_type, is_answer_type, short_name
from broker.wire.envelope import NodeIdentity
from broker.wire.signing import SealPublicKey
from broker.wire.trust import Trust

__all__ = [
    "MUST_SEAL",
    "answers",
    "check_answer",
    "check_audience",
    "check_recipients",
    "check_signer",
    "is_known",
    "must_seal",
    "seal_keys",
]

#: Handling codes whose payload only the named recipients may read: a directed message under them is sealed.
MUST_SEAL = frozenset({Tlp.RED, Tlp.AMBER_STRICT})

# No key has this id (ids are the first 8 bytes of a SHA-256): asking for it tells an unknown node
# ('unknown-sender') from a known one ('unknown-key') through the trust protocol alone.
_NO_KEY = bytes(8)


def _tlp(handling: Handling) -> str:
    return "TLP:AMBER+STRICT" if handling.tlp is Tlp.AMBER_STRICT else f"TLP:{handling.tlp.value}"


def check_signer(trust: Trust, identity: NodeIdentity, message_type: str, at: datetime) -> None:
    """Refuse (``ConfigError``) to sign ``message_type`` at ``at`` with a key the trust source would not accept
    then: revoked, expired, not yet valid, unknown, or a type the directory does not allow this node."""
    key_id = identity.key.public.key_id
    try:
        trust.check_use(identity.node_id, key_id, at, message_type)
    except VerificationError as exc:
        raise ConfigError(
            f"{identity.node_id} cannot send {short_name(message_type)} signed with key {key_id.hex()} at "
            f"{at:%Y-%m-%dT%H:%M:%SZ}: {exc} ({exc.reason}); every receiver would refuse it"
        ) from None


def is_known(trust: Trust, node: str) -> bool:
    """Whether the trust source knows ``node`` at all (the local trust store or the directory lists it)."""
    try:
        trust.key_for(node, _NO_KEY)
    except VerificationError as exc:
        return exc.reason != "unknown-sender"
    return True


def check_recipients(trust: Trust, recipients: Sequence[str]) -> None:
    """Refuse a recipient the trust source does not know: nothing could be sent to it that it would trust back."""
    unknown = [r for r in recipients if not is_known(trust, r)]
    if unknown:
        raise ConfigError(
            f"unknown recipient {', '.join(unknown)}: not in the trust store or the network directory "
            "(a typo? trust its key card with 'op7 keys trust FILE.pub', or check the directory)"
        )


def check_audience(message: Message, handling: Handling, recipients: Sequence[str]) -> None:
    """Refuse a TLP:RED message to no one in particular: on a shared topic, every subscriber would read it."""
    if handling.tlp is Tlp.RED and not recipients:
        raise ConfigError(
            f"the {short_name(message.avro_name)} is TLP:RED, for named recipients only, and has none: address it "
            "(op7 send --to NODE_ID, or recipients=...), and it is sealed to them"
        )


def must_seal(handling: Handling, recipients: Sequence[str]) -> bool:
    """Whether a message is sealed whatever its sender asked: directed, under TLP:RED or AMBER+STRICT."""
    return bool(recipients) and handling.tlp in MUST_SEAL


def seal_keys(
    trust: Trust, message: Message, recipients: Sequence[str], handling: Handling, *, seal: bool, at: datetime
) -> dict[str, SealPublicKey] | None:
    """The recipients' encryption keys when the message is to be sealed (asked, or by its handling code); None when
    it goes in clear. ``ConfigError`` names the recipient without a usable encryption key."""
    forced = must_seal(handling, recipients)
    if not (seal or forced):
        return None
    if not recipients:
        raise ConfigError("a sealed message needs recipients: it is readable by them only")
    keys = {}
    for recipient in recipients:
        try:
            keys[recipient] = trust.encryption_key(recipient, at)
        except ConfigError as exc:
            why = f"it is {_tlp(handling)}, readable by its recipients only" if forced else "it was asked to be sealed"
            raise ConfigError(
                f"cannot seal the {short_name(message.avro_name)} to {recipient}, and {why}: {exc}"
            ) from None
    return keys


def check_answer(message: Message, recipients: Sequence[str], request_type: str | None = None) -> None:
    """Refuse an answer sent to no one, or one that is not of the kind ``request_type`` expects.

    ``request_type`` is the type of the message answered, when known; any other message may follow up a request
    (case information, say) without answering it."""
    name = message.avro_name
    if is_answer_type(name) and not recipients:
        raise ConfigError(
            f"a {short_name(name)} answers a request: it goes to the authority that asked, in its conversation; "
            "answer the received request ('op7 reply ID TYPE FILE', or ExchangeAgent.reply)"
        )
    if request_type is None or not is_answer_type(name):
        return
    expected = answer_type(request_type)
    if expected != name:
        kind = f"a {short_name(expected)}" if expected else "no answer of this kind"
        raise ConfigError(f"a {short_name(name)} does not answer a {short_name(request_type)}: it expects {kind}")


def answers(request_type: str | None, message_type: str) -> bool:
    """Whether a ``message_type`` sent in reply answers (closes) a received ``request_type``: only its own answer type
    answers a request; any reply answers a message that expects no answer type."""
    expected = answer_type(request_type) if request_type else None
    return expected is None or expected == message_type
