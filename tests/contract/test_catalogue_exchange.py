"""Every message type travels model -> Avro -> signed frame -> transport -> verified -> model (both transports)."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta
from typing import Any

from broker.clock import ManualClock
from broker.models import Handling, Message, Request, Tlp
from broker.models.answers import answer_type, is_answer_type
from broker.node.node import Delivery, Node
from broker.trust.store import TrustStore
from broker.wire.envelope import NodeIdentity
from broker.wire.schemas import default_registry
from broker.wire.signing import SigningKey
from tests.conftest import EXAMPLES, ROOT, example


async def test_every_message_type_crosses_the_transport_verified(
    transport_factory: Any, unique: str, clock: ManualClock
) -> None:
    # The ForwardedMessage example carries a vector frame with its fixed creation time: the whole exchange happens
    # an hour after it, whatever the date the test runs on (the other examples are sent as of that clock).
    forwarded = json.loads((ROOT / "tests" / "vectors" / "valid" / "ForwardedMessage.json").read_text())
    clock.set(datetime.fromisoformat(forwarded["expected"]["envelope"]["created_at"]) + timedelta(hours=1))
    # One reader opens everything here: what would be sealed (a directed TLP:RED message) goes as AMBER; sealing
    # has its own tests.
    messages = [_in_clear(example(name)) for name in sorted(EXAMPLES)]
    # An answer goes to the authority that issued its request: each example request's issuer.
    asked_by = {answer_type(m.avro_name): m.issuer.node for m in messages if answer_type(m.avro_name)}
    to = {m.avro_name: (asked_by[m.avro_name],) if is_answer_type(m.avro_name) else () for m in messages}
    # The vector keys: the ForwardedMessage example carries a frame signed with them.
    vector_keys = json.loads((ROOT / "tests" / "vectors" / "keys.json").read_text())["keys"]
    keys = {k["node"]: SigningKey.from_seed(bytes.fromhex(k["seed"])) for k in vector_keys}
    trust = TrustStore({node: [key.public] for node, key in keys.items()})
    prefix = f"op7.cat{unique}"
    registry = default_registry()
    inboxes = {Node.inbox_of(m.requested_authority.node) for m in messages if isinstance(m, Request)}
    inboxes |= {Node.inbox_of(node) for nodes in to.values() for node in nodes}
    topics = sorted({registry.topic_of(t) for t in registry.message_types} | inboxes)

    sent = {}
    for message in messages:
        async with Node(
            transport_factory(),
            trust,
            NodeIdentity(message.issuer.node, keys[message.issuer.node]),
            topic_prefix=prefix,
        ) as node:
            published = await node.publish(message, recipients=to[message.avro_name])
            sent[published.envelope.message_id] = (message, published)
            where = (
                Node.inbox_of(message.requested_authority.node)
                if isinstance(message, Request)
                else Node.inbox_of(to[message.avro_name][0])
                if to[message.avro_name]
                else registry.topic_of(message.avro_name)
            )
            assert published.sent.topic == f"{prefix}.{where}"

    got: list[Delivery] = []
    async with Node(transport_factory(), trust, topic_prefix=prefix) as ops, ops.subscribe("NL.NCC", topics) as sub:
        stats = await asyncio.wait_for(sub.run(got.append, limit=len(messages), idle_timeout=30), 60)
    assert stats.quarantined.total() == 0
    assert {d.envelope.message_id for d in got} == set(sent)
    for delivery in got:
        message, published = sent[delivery.envelope.message_id]
        assert delivery.message == message
        assert delivery.raw == published.raw
        assert delivery.envelope.sender == message.issuer.node
        expected = (message.requested_authority.node,) if isinstance(message, Request) else to[message.avro_name]
        assert delivery.envelope.recipients == expected


def _in_clear(message: Message) -> Message:
    if message.handling.tlp in (Tlp.RED, Tlp.AMBER_STRICT) and (
        isinstance(message, Request) or is_answer_type(message.avro_name)
    ):
        return message.model_copy(update={"handling": Handling(tlp=Tlp.AMBER)})
    return message
