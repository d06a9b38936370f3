"""Whose a refused frame is: after its signature verified with a valid key, its sender's (docs/PROTOCOL.md §6: the
quarantine budget it counts against; §14: the error report it is owed), even when the sender may not send it; with a
key that was not valid when it signed, nobody's."""

from __future__ import annotations

from pathlib import Path

import pytest

from broker.errors import MessageError
from broker.node.node import Node
from broker.node.receive import Received, receive, received
from broker.node.receive_state import source_of
from broker.transport import EmbeddedTransport
from broker.transport.base import Record
from broker.trust.store import PublicKeyCard
from broker.wire.envelope import build
from broker.wire.signing import EncryptionKey, SigningKey
from tests.cluster.hostile import HostileNetwork
from tests.conftest import example, now


def _refused(node: Node, value: bytes, topic: str) -> tuple[str, Received]:
    state = received(value, node.topic(topic))
    with pytest.raises(MessageError) as refused:
        receive(node, state)
    return refused.value.reason, state


@pytest.mark.parametrize(
    ("sender", "type_name", "network", "reason", "believed"),
    [
        ("PL.KGP", "KidnappingAlert", "op7-adversarial", "type-not-allowed", True),
        ("FR.GN", "KidnappingAlert", "op7-exercise", "wrong-network", True),
        ("DE.BKA", "KidnappingAlert", "op7-adversarial", "key-revoked", False),
        ("IT.PS", "NationalReport", "op7-adversarial", "key-expired", False),
        ("AT.BK", "NationalReport", "op7-adversarial", "key-not-yet-valid", False),
    ],
)
def test_a_refusal_after_a_valid_signature_is_the_sender_s(
    tmp_path: Path, sender: str, type_name: str, network: str, reason: str, believed: bool
) -> None:
    net = HostileNetwork(now(), PublicKeyCard("BE.FP", SigningKey.generate().public, EncryptionKey.generate().public))
    node = Node(EmbeddedTransport(tmp_path / "e.db"), net.trust(), topic_prefix="op7", follow_directory=False)
    base = example(type_name)
    message = base.model_copy(update={"issuer": base.issuer.model_copy(update={"node": sender})})
    frame = build(net.identity(sender, network=network), message, now=now())[1]
    topic = "alerts" if type_name == "KidnappingAlert" else "reports"
    got, state = _refused(node, frame, topic)
    assert got == reason
    record = Record(node.topic(topic), 1, 7, None, frame, 0)
    if believed:
        assert state.envelope is not None and state.envelope.sender == sender
        assert source_of(record, state.envelope.sender) == f"sender {sender}"  # its own budget, not the partition's
    else:
        assert state.envelope is None  # a key not valid when it signed proves nothing of who holds it
