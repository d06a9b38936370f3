"""Hostile inputs for live listeners: a network directory with misbehaving members, frames forged or damaged in every
region, and hypothesis strategies that generate them reproducibly.

Frames are laid out by docs/PROTOCOL.md §2 (see :mod:`broker.wire.envelope`); what is forged here is signed by real
keys of the network, so that a refusal comes from the check meant to catch it and not from an earlier one.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from broker.models import Envelope
from broker.models.directory import Role, SignedDirectory
from broker.trust import admin
from broker.trust.directory import DirectoryAnchor, DirectoryTrust
from broker.trust.store import PublicKeyCard
from broker.wire.codec import write_header
from broker.wire.envelope import FORMAT_VERSION, MAGIC, NodeIdentity, parse_frame
from broker.wire.schemas import default_registry
from broker.wire.signing import EncryptionKey, SigningKey

__all__ = [
    "NETWORK",
    "UNVERIFIED",
    "HostileNetwork",
    "Mutation",
    "collect",
    "forge",
    "mutations",
    "random_frames",
    "regions",
]

T = TypeVar("T")

NETWORK = "op7-adversarial"
#: The reasons a record is refused with before its signature verified: nothing of it was decoded or believed.
UNVERIFIED = frozenset(
    {
        "empty-record",
        "bad-frame",
        "bad-magic",
        "bad-version",
        "bad-scheme",
        "truncated",
        "trailing-bytes",
        "too-large",
        "unknown-sender",
        "unknown-key",
        "bad-signature",
    }
)
_U32 = struct.Struct(">I")
_U16 = struct.Struct(">H")
_LIFETIME = timedelta(days=400)


def collect(strategy: st.SearchStrategy[T], count: int) -> list[T]:
    """``count`` examples of ``strategy``, the same ones on every run (derandomized, no example database): the
    generation phase of a property test whose body only collects, so that the inputs can be sent in batches."""
    found: list[T] = []

    @settings(
        max_examples=count,
        derandomize=True,
        database=None,
        phases=[Phase.generate],
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def take(value: T) -> None:
        found.append(value)

    take()
    return found


# --- the network ---------------------------------------------------------------------------------------------------


@dataclass
class HostileNetwork:
    """A directory (version 1) whose members are: the legitimate sender FR.GN, the listener NL.NCC, the command-line
    listener (its card given), ES.PN (another addressee), DE.BKA (key revoked an hour ago), IT.PS (key expired a day
    ago), AT.BK (key valid only from tomorrow), PT.PJ (revoked by version 2, published while listeners run) and PL.KGP
    (allowed to send national reports only: the flooder)."""

    now: datetime
    cli_card: PublicKeyCard
    authority: SigningKey = field(default_factory=SigningKey.generate)
    keys: dict[str, SigningKey] = field(default_factory=dict)
    listener_key: EncryptionKey = field(default_factory=EncryptionKey.generate)
    v1: SignedDirectory | None = None
    v2: SignedDirectory | None = None

    MEMBERS = ("FR.GN", "NL.NCC", "ES.PN", "DE.BKA", "IT.PS", "AT.BK", "PT.PJ", "PL.KGP")

    def __post_init__(self) -> None:
        issued = self.now - timedelta(days=30)  # keys valid from then: stale frames fail on freshness, not validity
        draft = admin.create(
            NETWORK, 1, [PublicKeyCard("NL.NA", self.authority.public)], now=issued, expires_in=_LIFETIME
        )
        for node in self.MEMBERS:
            self.keys[node] = SigningKey.generate()
            enc = self.listener_key if node == "NL.NCC" else EncryptionKey.generate()
            allowed = ["NationalReport"] if node == "PL.KGP" else ["all"]
            card = PublicKeyCard(node, self.keys[node].public, enc.public)
            draft = admin.add_node(draft, card, node.split(".")[1], [Role.NATIONAL_NODE], allowed, now=issued)
        draft = admin.add_node(draft, self.cli_card, "FP", [Role.NATIONAL_NODE], ["all"], now=issued)
        draft = admin.revoke_key(
            draft, "DE.BKA", self._key_id("DE.BKA"), "key compromised", self.now - timedelta(hours=1), now=issued
        )
        draft = self._edit_key(draft, "IT.PS", "valid_until", self.now - timedelta(days=1))
        draft = self._edit_key(draft, "AT.BK", "valid_from", self.now + timedelta(days=1))
        self.v1 = admin.sign(draft, self.authority)
        revoked = admin.revoke_key(
            self.v1, "PT.PJ", self._key_id("PT.PJ"), "key compromised", self.now, now=self.now - timedelta(minutes=1)
        )
        self.v2 = admin.sign(revoked, self.authority)

    def _key_id(self, node: str) -> str:
        return self.keys[node].public.key_id.hex()

    @staticmethod
    def _edit_key(draft: SignedDirectory, node: str, name: str, value: datetime) -> SignedDirectory:
        def change(data: dict[str, Any]) -> None:
            entry = next(n for n in data["nodes"] if n["node_id"] == node)
            entry["signing_keys"][0][name] = value

        current = admin.read(draft)
        return admin.edit(draft, change, now=current.issued_at, expires_in=_LIFETIME)

    def identity(self, node: str, *, network: str | None = NETWORK) -> NodeIdentity:
        return NodeIdentity(node, self.keys[node], network)

    def trust(self, *, with_v2: bool = False) -> DirectoryTrust:
        """A trust source holding version 1 (and 2), as a sender that installed them holds it."""
        assert self.v1 is not None and self.v2 is not None
        trust = DirectoryTrust(DirectoryAnchor.of(admin.read(self.v1)))
        for version in (self.v1, self.v2) if with_v2 else (self.v1,):
            trust.offer(version, self.now)
        return trust


# --- frames --------------------------------------------------------------------------------------------------------


def regions(frame: bytes) -> dict[str, tuple[int, int]]:
    """Where each part of a frame lies, as [start, end): the prefix (magic to key id), the header with its length,
    the payload with its length, the signature block with its length."""
    raw = parse_frame(frame)
    prefix = 6 + len(raw.sender) + len(raw.key_id)
    header = prefix + 4 + len(raw.header)
    payload = header + 4 + len(raw.payload)
    return {
        "prefix": (0, prefix),
        "header": (prefix, header),
        "payload": (header, payload),
        "signature": (payload, len(frame)),
    }


def forge(identity: NodeIdentity, envelope: Envelope, payload: bytes) -> bytes:
    """A scheme-1 frame of ``envelope`` (written as it is, unvalidated) and ``payload``, signed by ``identity``: a
    real signature over whatever a sender with a valid key chooses to say."""
    header = write_header(envelope, default_registry())
    sender = identity.node_id.encode("ascii")
    signed = b"".join(
        (MAGIC, bytes((FORMAT_VERSION, 1, len(sender))), sender, identity.key.public.key_id, _U32.pack(len(header)))
    )
    signed += header + _U32.pack(len(payload)) + payload
    signature = identity.key.sign(signed)
    return signed + _U16.pack(len(signature)) + signature


def splice(signed_part_of: bytes, signature_of: bytes) -> bytes:
    """The signed part of one frame with the signature block of another (same signer): a valid signature, over
    different bytes."""
    first, second = regions(signed_part_of), regions(signature_of)
    return signed_part_of[: first["signature"][0]] + signature_of[second["signature"][0] :]


@dataclass(frozen=True)
class Mutation:
    """One damaged copy of a valid frame: which region, how, and the bytes."""

    region: str
    kind: str
    value: bytes


def _mutate(frame: bytes, kind: str, at: int, byte: int) -> bytes:
    if kind == "flip":
        return frame[:at] + bytes((frame[at] ^ (1 << (byte % 8)),)) + frame[at + 1 :]
    if kind == "insert":
        return frame[:at] + bytes((byte,)) + frame[at:]
    if kind == "delete":
        return frame[:at] + frame[at + 1 :]
    return frame[:at]  # truncate


def mutations(frames: Sequence[bytes]) -> st.SearchStrategy[Mutation]:
    """A bit flip, a byte inserted, a byte deleted or a truncation, in one region of one of ``frames``."""

    @st.composite
    def mutation(draw: Callable[[st.SearchStrategy[Any]], Any]) -> Mutation:
        frame = draw(st.sampled_from(frames))
        where = regions(frame)
        region = draw(st.sampled_from(sorted(where)))
        start, end = where[region]
        kind = draw(st.sampled_from(("flip", "insert", "delete", "truncate")))
        at = draw(st.integers(start, end - 1))
        return Mutation(region, kind, _mutate(frame, kind, at, draw(st.integers(0, 255))))

    return mutation()


def random_frames() -> st.SearchStrategy[bytes]:
    """Random bytes: anything at all, and bytes behind a real magic and version, so that the parser is driven past
    its first check into every later field."""
    anything = st.binary(min_size=1, max_size=4096)
    behind_magic = st.builds(
        lambda scheme, tail: MAGIC + bytes((FORMAT_VERSION, scheme)) + tail,
        st.sampled_from((1, 2, 3)),
        st.binary(max_size=2048),
    )
    with_sender = st.builds(
        lambda n, sender, tail: MAGIC + bytes((FORMAT_VERSION, 1, n)) + sender + tail,
        st.integers(0, 255),
        st.sampled_from((b"FR.GN", b"NL.NCC", b"XX.ZZ")),
        st.binary(max_size=1024),
    )
    return st.one_of(anything, behind_magic, with_sender)
