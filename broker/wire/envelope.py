"""The op7 frame: build a signed envelope, and open one (verify first, then decode).

Layout (all integers big-endian; docs/PROTOCOL.md is the normative description)::

    offset  size  field
    0       3     magic "OP7"
    3       1     format version (1)
    4       1     signature scheme (1 = Ed25519 over the signed part; 2 = over a batch Merkle root)
    5       1     n = length of the sender node id
    6       n     sender node id, ASCII, CC.AGENCY
    6+n     8     key id (SHA-256 of the sender's raw public key, first 8 bytes)
    14+n    4     h = length of the header
    18+n    h     header: Avro binary of op7.Envelope
    ...     4     p = length of the payload
    ...     p     payload: Avro binary of the record named in the header, written with the schema
                  whose fingerprint the header carries
    ...     2     s = length of the signature block
    ...     s     signature block (scheme 1: the 64-byte Ed25519 signature; scheme 2: root signature,
                  leaf index, leaf count, audit path)

The signed part is every byte before the signature block length. Nothing after the signature block.
Only the prefix up to the key id is read before the signature is checked.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any

from pydantic import TypeAdapter, ValidationError

from broker.errors import ConfigError, DecodeError, DecryptionError, FrameError, VerificationError
from broker.models import NODE_ID_PATTERN, Envelope, Handling, Message, check_node_id, new_message_id
from broker.models.envelope import LAST_SEQUENCE, NetworkName
from broker.models.inputs import first_problem
from broker.wire import merkle
from broker.wire.codec import decode, encode, read_header, write_header
from broker.wire.schemas import SchemaRegistry, default_registry
from broker.wire.sealing import Opener, SealPlan, decrypt_payload, plan_seal
from broker.wire.signing import KEY_ID_SIZE, SIGNATURE_SIZE, SealPublicKey, SigningKey, VerifyKey
from broker.wire.trust import Trust

__all__ = [
    "FORMAT_VERSION",
    "MAGIC",
    "MAX_FRAME_SIZE",
    "SCHEME_ED25519",
    "NodeIdentity",
    "Numbering",
    "Opened",
    "RawFrame",
    "Verified",
    "build",
    "build_batch",
    "check_network",
    "check_sender",
    "open_frame",
    "parse_frame",
    "open_verified",
    "read_header",
    "verify_frame",
    "verify_signed",
    "write_header",
]

MAGIC = b"OP7"
FORMAT_VERSION = 1
SCHEME_ED25519 = 1
#: One Ed25519 signature over the Merkle root of a producer batch, plus the frame's inclusion proof.
SCHEME_ED25519_MERKLE = 2
#: Domain separation for batch roots: "op7 batch v1", 0x00, then the leaf count (u32) and the root.
BATCH_SIGNING_CONTEXT = b"op7 batch v1\x00"
#: A frame must fit in one Kafka record (message.max.bytes defaults to about 1 MiB), and so must the
#: quarantine entry that keeps a refused frame, base64-encoded (4/3 of its size) with its metadata.
MAX_FRAME_SIZE = 700_000

_U32 = struct.Struct(">I")
_U16 = struct.Struct(">H")
_NETWORK = TypeAdapter(NetworkName)

#: Reserves a count of consecutive sequence numbers never given before, returns the first (SenderSequence.next).
Numbering = Callable[[int], int]


@dataclass(frozen=True)
class NodeIdentity:
    """A node that signs: its id, its current signing key, and the network it signs for (its directory's name,
    written in every header it signs; None for a node without a directory)."""

    node_id: str
    key: SigningKey = field(repr=False)
    network: str | None = None

    def __post_init__(self) -> None:
        check_node_id(self.node_id)
        if self.network is not None:
            try:
                _NETWORK.validate_python(self.network)
            except ValidationError:
                raise ConfigError(f"{self.network!r} is not a network name") from None


@dataclass(frozen=True)
class RawFrame:
    """A frame split into its fields, before any verification or decoding."""

    scheme: int
    sender: str
    key_id: bytes
    header: bytes
    payload: bytes
    signature: bytes
    signed: bytes
    #: The whole frame as received.
    data: bytes


@dataclass(frozen=True)
class Verified:
    """A frame whose signature and header were verified; its payload is not decoded (it may be sealed)."""

    envelope: Envelope
    raw: RawFrame


@dataclass(frozen=True)
class Opened:
    """A verified, decoded message, with the exact bytes that were verified (kept for audit)."""

    envelope: Envelope
    message: Message
    raw: bytes


@dataclass(frozen=True)
class _Draft:
    """A message checked and encoded, neither numbered nor signed yet: its header, its payload in clear, its seal."""

    envelope: Envelope
    payload: bytes
    plan: SealPlan | None
    registry: SchemaRegistry


def _draft(
    identity: NodeIdentity,
    message: Message,
    *,
    handling: Handling | None = None,
    recipients: tuple[str, ...] = (),
    conversation_id: str | None = None,
    in_reply_to: str | None = None,
    expires_at: datetime | None = None,
    now: datetime,
    message_id: str | None = None,
    seal_to: Mapping[str, SealPublicKey] | None = None,
    seal_randomness: Callable[[int], bytes] | None = None,
    registry: SchemaRegistry | None = None,
) -> _Draft:
    """Encode ``message`` and make its header as ``identity`` sends it: whatever refuses the message does so here,
    before a sequence number is drawn for it. With ``seal_to`` (recipient node id -> X25519 key, one per recipient)
    the payload is to be encrypted so that only those recipients can read it; the header stays readable and signed.
    """
    registry = registry or default_registry()
    expires_at = _restated(message, handling, expires_at)
    message_id = message_id or new_message_id(now)
    plan = None
    if seal_to is not None:
        if not seal_to or sorted(seal_to) != sorted(recipients):
            raise ConfigError("a sealed message names its recipients, and is sealed to each of them")
        plan = plan_seal(message_id, seal_to, seal_randomness) if seal_randomness else plan_seal(message_id, seal_to)
    schema, payload = encode(message, registry)
    fields: dict[str, Any] = {
        "message_id": message_id,
        "message_type": schema.name,
        "schema_fingerprint": schema.fingerprint,
        "created_at": now,
        # status, handling, case_id, languages, legal_basis: the payload's (or their absent value, looked up by the
        # type's field list: a missing attribute of a model costs an exception)
        **{name: getattr(message, name) if own else _ABSENT[name] for name, own in _restatements(type(message))},
        "recipients": tuple(check_node_id(r) for r in recipients),
        "conversation_id": conversation_id,
        "in_reply_to": in_reply_to,
        "expires_at": expires_at,
        "sealed": plan.header if plan else None,
        "network": identity.network,
    }
    envelope = Envelope(sender=identity.node_id, key_id=identity.key.public.key_id.hex(), **fields)
    return _Draft(envelope, payload, plan, registry)


def _signed(identity: NodeIdentity, draft: _Draft, scheme: int, number: int | None) -> tuple[Envelope, bytes]:
    """``draft``'s header numbered ``number``, and its frame's signed part (a sealed payload encrypted here)."""
    envelope = draft.envelope if number is None else draft.envelope.model_copy(update={"sequence": number})
    head = _head(identity, scheme, write_header(envelope, draft.registry))
    payload = draft.plan.encrypt(draft.payload, aad=head) if draft.plan else draft.payload
    return envelope, head + _U32.pack(len(payload)) + payload


def _numbers(
    sequence: int | Numbering | None, drafts: Sequence[_Draft], identity: NodeIdentity, scheme: int, block: int
) -> list[int | None]:
    """The numbers of the frames of ``drafts``, a run: none; from ``sequence``, the first; or drawn from ``sequence``
    once each frame fits with any number (signature block of ``block`` bytes): none is spent on a frame too large."""
    if sequence is None or not drafts:
        return [None] * len(drafts)
    if callable(sequence):
        for draft in drafts:
            widest = write_header(draft.envelope.model_copy(update={"sequence": LAST_SEQUENCE}), draft.registry)
            payload = len(draft.payload) + (16 if draft.plan else 0)  # a sealed payload gains AES-GCM's 16-byte tag
            size = len(_head(identity, scheme, widest)) + _U32.size + payload + _U16.size + block
            if size > MAX_FRAME_SIZE:
                raise FrameError(f"message of up to {size} bytes; the limit is {MAX_FRAME_SIZE}", reason="too-large")
    first = sequence(len(drafts)) if callable(sequence) else sequence
    if not 1 <= first <= LAST_SEQUENCE - len(drafts) + 1:
        raise ConfigError(f"sequence number {first} for {len(drafts)} frame(s): numbers go from 1 to {LAST_SEQUENCE}")
    return list(range(first, first + len(drafts)))


def _restated(message: Message, handling: Handling | None, expires_at: datetime | None) -> datetime | None:
    """The header restates the payload: a handling code or expiry given for the envelope must be the payload's.
    Returns the expiry the header carries."""
    if handling is not None and handling != message.handling:
        raise ConfigError(
            f"the {message.avro_name} carries handling {message.handling.tlp.value}; the envelope must restate it"
        )
    if ("expires_at", True) not in _restatements(type(message)):
        return expires_at
    own_expiry: datetime | None = getattr(message, "expires_at", None)
    if expires_at is not None and expires_at != own_expiry:
        raise ConfigError(f"the {message.avro_name} carries its own expires_at; the envelope must restate it")
    return own_expiry


def _head(identity: NodeIdentity, scheme: int, header: bytes) -> bytes:
    """The frame up to the end of the header (docs/PROTOCOL.md §2); a sealed payload's associated data."""
    sender = identity.node_id.encode("ascii")
    return b"".join(
        (
            MAGIC,
            bytes((FORMAT_VERSION, scheme, len(sender))),
            sender,
            identity.key.public.key_id,
            _U32.pack(len(header)),
            header,
        )
    )


def _framed(signed: bytes, block: bytes) -> bytes:
    frame = signed + _U16.pack(len(block)) + block
    if len(frame) > MAX_FRAME_SIZE:
        raise FrameError(f"message is {len(frame)} bytes; the limit is {MAX_FRAME_SIZE}", reason="too-large")
    return frame


def build(
    identity: NodeIdentity, message: Message, *, sequence: int | Numbering | None = None, **options: Any
) -> tuple[Envelope, bytes]:
    """Encode ``message``, wrap it in a header, sign the result as ``identity``; returns header and frame.

    ``now`` (required) is the instant written as ``created_at``. ``sequence`` numbers the frame (PROTOCOL.md §3):
    the number, or a :data:`Numbering` that draws it once the frame is known to build; None: unnumbered. Options:
    ``recipients``, ``handling``, ``conversation_id``, ``in_reply_to``, ``expires_at``, ``message_id``, ``seal_to``
    (recipient node id -> X25519 key: only they can read the payload, :mod:`broker.wire.sealing`), ``registry``.
    """
    draft = _draft(identity, message, **options)
    (number,) = _numbers(sequence, [draft], identity, SCHEME_ED25519, SIGNATURE_SIZE)
    envelope, signed = _signed(identity, draft, SCHEME_ED25519, number)
    return envelope, _framed(signed, identity.key.sign(signed))


def build_batch(
    identity: NodeIdentity,
    messages: Sequence[Message],
    *,
    message_ids: Sequence[str] | None = None,
    sequence: int | Numbering | None = None,
    **options: Any,
) -> list[tuple[Envelope, bytes]]:
    """Frames for several messages with one signature: scheme 2, over the Merkle root of their signed parts.

    Each frame carries the root signature and its own inclusion proof, so it still verifies alone; a receiver
    verifies the signature once per batch (:func:`verify_frame` caches verified roots). With ``sequence`` (as for
    :func:`build`), the frames take a run of numbers in their order.
    """
    ids: Sequence[str | None] = list(message_ids) if message_ids is not None else [None] * len(messages)
    drafts = [_draft(identity, m, message_id=i, **options) for m, i in zip(messages, ids, strict=True)]
    # The longest audit path of a tree of n leaves has ceil(log2 n) hashes.
    block = _BATCH_BLOCK + _HASH_SIZE * (len(drafts) - 1).bit_length()
    numbers = _numbers(sequence, drafts, identity, SCHEME_ED25519_MERKLE, block)
    prepared = [_signed(identity, d, SCHEME_ED25519_MERKLE, n) for d, n in zip(drafts, numbers, strict=True)]
    root, paths = merkle.tree([merkle.leaf_hash(signed) for _, signed in prepared])
    count = _U32.pack(len(prepared))
    signature = identity.key.sign(BATCH_SIGNING_CONTEXT + count + root)
    return [
        (envelope, _framed(signed, signature + _U32.pack(index) + count + b"".join(paths[index])))
        for index, (envelope, signed) in enumerate(prepared)
    ]


def parse_frame(data: bytes) -> RawFrame:
    """Split a frame into fields; structural checks only (no cryptography, no Avro), in the order of §4.2 step 1.

    Any malformed input raises :class:`~broker.errors.FrameError` with its reason, never another exception.
    """
    if len(data) > MAX_FRAME_SIZE:
        raise FrameError(f"frame of {len(data)} bytes exceeds {MAX_FRAME_SIZE}", reason="too-large")
    if data[:3] != MAGIC:
        raise FrameError("not an op7 frame (bad magic)", reason="bad-magic")
    if len(data) < 6:
        raise FrameError(f"truncated frame: {len(data)} bytes, not even a prefix", reason="truncated")
    if data[3] != FORMAT_VERSION:
        raise FrameError(f"unsupported frame version {data[3]}", reason="bad-version")
    scheme, n = data[4], data[5]
    if scheme not in (SCHEME_ED25519, SCHEME_ED25519_MERKLE):
        raise FrameError(f"unsupported signature scheme {scheme}", reason="bad-scheme")
    sender_bytes, pos = _field(data, 6, n, "sender")
    sender = _sender(sender_bytes)
    key_id, pos = _field(data, pos, KEY_ID_SIZE, "key id")
    header, pos = _chunk(data, pos, _U32, "header")
    payload, pos = _chunk(data, pos, _U32, "payload")
    signed_end = pos
    signature, pos = _chunk(data, pos, _U16, "signature")
    if pos != len(data):
        raise FrameError(f"{len(data) - pos} trailing bytes after the signature", reason="trailing-bytes")
    return RawFrame(scheme, sender, key_id, header, payload, signature, data[:signed_end], data)


def _sender(raw: bytes) -> str:
    """The sender node id of the prefix: ASCII, of the node id pattern (so 4 to 19 bytes); ``bad-frame``."""
    try:
        sender = raw.decode("ascii")
    except UnicodeDecodeError:
        raise FrameError(f"sender node id {raw!r} is not ASCII") from None
    if not NODE_ID_PATTERN.match(sender):
        raise FrameError(f"sender {sender!r} is not a node id")
    return sender


def _field(data: bytes, pos: int, size: int, what: str) -> tuple[bytes, int]:
    """``size`` bytes at ``pos``, and the position after them; ``truncated`` when the frame ends first."""
    if pos + size > len(data):
        raise FrameError(f"truncated frame ({what} needs {size} bytes, {len(data) - pos} left)", reason="truncated")
    return data[pos : pos + size], pos + size


def _chunk(data: bytes, pos: int, length: struct.Struct, what: str) -> tuple[bytes, int]:
    """A length-prefixed field at ``pos``, and the position after it; ``truncated`` when the frame ends first."""
    if pos + length.size > len(data):
        _field(data, pos, length.size, f"{what} length")  # raises
    return _field(data, pos + length.size, length.unpack_from(data, pos)[0], what)


def verify_frame(data: bytes, trust: Trust, registry: SchemaRegistry | None = None) -> Verified:
    """Verify the signature over the exact received bytes, then decode and check the header only.

    What an auditor needs to prove who sent what to whom and when, sealed or not, without reading it.
    Raises a :class:`~broker.errors.MessageError` subclass; nothing is decoded from an unverified frame.
    """
    verified = verify_signed(data, trust, registry)
    check_sender(verified, trust)
    return verified


def verify_signed(data: bytes, trust: Trust, registry: SchemaRegistry | None = None) -> Verified:
    """:func:`verify_frame` up to the decoded header: the signature verified, not yet the sender's right to send it
    (:func:`check_sender`)."""
    registry = registry or default_registry()
    raw = parse_frame(data)
    key = trust.key_for(raw.sender, raw.key_id)
    if raw.scheme == SCHEME_ED25519:
        if len(raw.signature) != SIGNATURE_SIZE:
            raise VerificationError(f"signature block of {len(raw.signature)} bytes, not {SIGNATURE_SIZE}")
        key.verify(raw.signature, raw.signed)
    else:
        _verify_batch(key, raw)
    # From here on, every byte is the sender's.
    datum = read_header(raw.header, registry)
    try:
        envelope = Envelope.model_validate({**datum, "sender": raw.sender, "key_id": raw.key_id.hex()})
    except ValidationError as exc:
        raise DecodeError(f"invalid envelope header: {first_problem(exc)}", reason="invalid-header") from exc
    return Verified(envelope, raw)


def check_sender(verified: Verified, trust: Trust) -> None:
    """The network the header names, the key's validity when it signed, and the sender's right to send the type."""
    envelope = verified.envelope
    check_network(envelope, trust.network)
    trust.check_use(envelope.sender, verified.raw.key_id, envelope.created_at, envelope.message_type)


def check_network(envelope: Envelope, network: str | None) -> None:
    """``wrong-network`` unless the header names ``network``, the receiver's (§4.2 step 4): the same key may sign
    in an exercise network and in production, and a frame of one must not count in the other. A receiver without a
    network (a local trust store) takes any."""
    if network is None or envelope.network == network:
        return
    named = f"was signed for network {envelope.network!r}" if envelope.network else "names no network"
    raise VerificationError(
        f"{envelope.message_type} {envelope.message_id} {named}; this node is on network {network!r}",
        reason="wrong-network",
    )


#: A scheme-2 signature block: the root signature, the leaf index and the leaf count, then 32-byte path hashes.
_BATCH_BLOCK = SIGNATURE_SIZE + 4 + 4
_HASH_SIZE = 32


def _verify_batch(key: VerifyKey, raw: RawFrame) -> None:
    block = raw.signature
    if len(block) < _BATCH_BLOCK or (len(block) - _BATCH_BLOCK) % _HASH_SIZE:
        raise VerificationError(
            f"batch signature block of {len(block)} bytes: it is {_BATCH_BLOCK} bytes and 32 per path hash"
        )
    signature, index, count = block[:SIGNATURE_SIZE], _U32.unpack_from(block, 64)[0], block[68:_BATCH_BLOCK]
    path = [block[i : i + _HASH_SIZE] for i in range(_BATCH_BLOCK, len(block), _HASH_SIZE)]
    root = merkle.root_from_path(merkle.leaf_hash(raw.signed), index, _U32.unpack(count)[0], path)
    if root is None:
        raise VerificationError("batch inclusion proof does not hold")
    _verified_root(key, BATCH_SIGNING_CONTEXT + count + root, signature)


@lru_cache(maxsize=4096)
def _verified_root(key: VerifyKey, signed_root: bytes, signature: bytes) -> bool:
    """One signature check per batch root: later frames of the batch find it here (failures are not kept)."""
    key.verify(signature, signed_root)
    return True


def open_frame(
    data: bytes, trust: Trust, registry: SchemaRegistry | None = None, *, opener: Opener | None = None
) -> Opened:
    """Verify (:func:`verify_frame`), open a sealed payload with ``opener``, decode it, check it agrees.

    Raises a :class:`~broker.errors.MessageError` subclass.
    """
    registry = registry or default_registry()
    return open_verified(verify_frame(data, trust, registry), registry, opener=opener)


def open_verified(
    verified: Verified,
    registry: SchemaRegistry | None = None,
    *,
    opener: Opener | None = None,
    content_key: bytes | None = None,
) -> Opened:
    """Open (if sealed, with ``opener`` or the message's ``content_key``), decode and check a verified frame."""
    registry = registry or default_registry()
    envelope, raw = verified.envelope, verified.raw
    payload = raw.payload
    if envelope.sealed is not None:
        aad = raw.signed[: len(raw.signed) - len(raw.payload) - 4]
        if content_key is not None:
            payload = decrypt_payload(content_key, envelope, raw.payload, aad)
        elif opener is not None:
            payload = opener.open(envelope, raw.payload, aad)
        else:
            raise DecryptionError(
                "the payload is sealed and this node holds no encryption key", reason="not-a-recipient"
            )
    message = decode(envelope.message_type, envelope.schema_fingerprint, payload, registry)
    _check_consistency(envelope, message)
    return Opened(envelope, message, raw.data)


#: Header fields that restate the payload's field of the same name when the payload type has it.
_RESTATED = ("case_id", "status", "handling", "languages", "legal_basis", "expires_at")
#: What the header holds for a restated field the payload type lacks (every type has a status and a handling code;
#: an expiry is the header's own then).
_ABSENT: dict[str, object] = {"case_id": None, "languages": (), "legal_basis": ()}


@lru_cache(maxsize=64)
def _restatements(model: type[Message]) -> tuple[tuple[str, bool], ...]:
    """The header fields to compare for a payload type, each with whether the payload has it (else the header must
    hold its ``_ABSENT`` value); the header may carry an expiry for payload types that have none."""
    fields = model.model_fields
    return tuple((name, name in fields) for name in _RESTATED if name in fields or name != "expires_at")


def _check_consistency(envelope: Envelope, message: Message) -> None:
    """Header fields that restate payload fields must agree, so no reader is misled by either."""
    for name, own in _restatements(type(message)):
        ours = getattr(message, name) if own else _ABSENT[name]
        if getattr(envelope, name) != ours:
            raise DecodeError(f"header {name} differs from the payload's", reason="inconsistent")
    if message.issuer.node != envelope.sender:
        raise VerificationError(
            f"{envelope.message_type} issued by {message.issuer.node} but signed by {envelope.sender}",
            reason="issuer-mismatch",
        )
