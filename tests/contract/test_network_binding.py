"""Frames are bound to their network: one key signing in an exercise network and in production cannot carry a frame
of one into the other (docs/PROTOCOL.md sections 3 and 4.2), on both transports."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from broker.models import KidnappingAlert
from broker.models.directory import Role, SignedDirectory
from broker.node.node import Delivery, Node
from broker.trust import admin
from broker.trust.directory import DirectoryAnchor, DirectoryTrust
from broker.trust.store import PublicKeyCard, TrustStore
from broker.wire.envelope import NodeIdentity, verify_frame
from broker.wire.signing import EncryptionKey, SigningKey
from tests.conftest import make_alert, now

AUTHORITIES = [SigningKey.generate() for _ in range(2)]


def directory_of(network: str, members: dict[str, SigningKey]) -> DirectoryTrust:
    """A node's trust in ``network``, whose directory lists ``members`` (and is signed by both authorities)."""
    issued = now() - timedelta(hours=1)
    cards = [PublicKeyCard(f"NL.NA{i}", k.public, EncryptionKey.generate().public) for i, k in enumerate(AUTHORITIES)]
    draft: SignedDirectory = admin.create(network, 2, cards, now=issued)
    for node, key in members.items():
        member = PublicKeyCard(node, key.public, EncryptionKey.generate().public)
        draft = admin.add_node(draft, member, "Agency", [Role.NATIONAL_NODE], ["all"], now=issued)
    for key in AUTHORITIES:
        draft = admin.sign(draft, key)
    trust = DirectoryTrust(DirectoryAnchor.of(admin.read(draft)))
    assert trust.offer(draft, now())
    return trust


async def test_a_frame_signed_for_the_exercise_network_is_refused_in_production_with_the_same_key(
    transport_factory: Any, unique: str, alert_data: dict[str, Any]
) -> None:
    key = SigningKey.generate()  # FR.GN's one key, listed in both directories
    exercise = directory_of("exercise", {"FR.GN": key})
    production = directory_of("production", {"FR.GN": key, "NL.NCC": SigningKey.generate()})
    prefix = f"op7.t{unique}"
    got: list[Delivery] = []
    async with (
        Node(transport_factory(), exercise, NodeIdentity("FR.GN", key), topic_prefix=f"{prefix}x") as drill,
        Node(transport_factory(), production, NodeIdentity("FR.GN", key), topic_prefix=prefix) as live,
        Node(transport_factory(), production, topic_prefix=prefix, follow_directory=False) as ops,
        ops.subscribe("NL.NCC", from_beginning=True) as sub,
    ):
        drilled = await drill.publish(make_alert(alert_data, alert_id="EXERCISE"))
        assert drilled.envelope.network == "exercise"
        verify_frame(drilled.raw, exercise)  # a frame of its own network, in that network
        # The exercise frame, copied byte for byte onto production's alerts topic, then a production alert.
        await ops.transport.send(ops.topic("alerts"), drilled.raw, key=b"EXERCISE")
        sent = await live.publish(make_alert(alert_data, alert_id="PRODUCTION"))
        assert sent.envelope.network == "production"
        refused: list[str] = []
        for _ in range(3):  # the copy and the alert went to different partitions: either may come first
            await sub.run(got.append, limit=1, idle_timeout=20, on_refused=lambda _, e: refused.append(e.reason))
            if got and refused:
                break
        await asyncio.sleep(0)
    assert refused == ["wrong-network"]
    assert [d.message.alert_id for d in got if isinstance(d.message, KidnappingAlert)] == ["PRODUCTION"]
    assert sub.stats.quarantined["wrong-network"] == 1


async def test_a_frame_is_handed_over_once_per_node_whichever_subscription_reads_it(
    transport_factory: Any, unique: str, alert_data: dict[str, Any], keys: dict[str, SigningKey]
) -> None:
    """Two groups of one node share its replay store (PROTOCOL.md section 12); a broadcast copied into the node's
    inbox is not a second delivery either (it is not where its sender sends it: wrong-topic)."""
    trust = TrustStore({node: [keys[node].public] for node in ("FR.GN", "NL.NCC")})
    prefix = f"op7.t{unique}"
    got: list[Delivery] = []
    async with (
        Node(transport_factory(), trust, NodeIdentity("FR.GN", keys["FR.GN"]), topic_prefix=prefix) as fr,
        Node(transport_factory(), trust, NodeIdentity("NL.NCC", keys["NL.NCC"]), topic_prefix=prefix) as nl,
    ):
        broadcast = await fr.publish(make_alert(alert_data, alert_id="BROADCAST"))
        await fr.transport.send(fr.topic(fr.inbox_of("NL.NCC")), broadcast.raw, key=b"copy")
        directed = await fr.publish(make_alert(alert_data, alert_id="DIRECTED"), recipients=("NL.NCC",))
        assert directed.envelope.recipients == ("NL.NCC",)
        async with nl.subscribe("NL.NCC", ["alerts", nl.inbox_of("NL.NCC")]) as first:
            await first.run(got.append, limit=2, idle_timeout=20)
        async with nl.subscribe("NL.NCC.screen", [nl.inbox_of("NL.NCC")]) as second:
            await second.run(got.append, idle_timeout=10)
    assert sorted(d.message.alert_id for d in got if isinstance(d.message, KidnappingAlert)) == [
        "BROADCAST",
        "DIRECTED",
    ]
    # The second group reads the whole inbox; the first may stop at its two deliveries before it reaches the copy.
    assert second.stats.quarantined["wrong-topic"] == 1
    assert first.stats.quarantined["wrong-topic"] <= 1
    assert second.stats.duplicates == 1
