"""Trust on the wire, on both transports: a live directory, rotation, revocation, replay, sealing, handling rules."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from broker.clock import ManualClock
from broker.errors import HandlingRuleError
from broker.models import Authority, ControlledAction, KidnappingAlert
from broker.models.directory import (
    Role,
    SignedDirectory,
)
from broker.node.node import Delivery, Node
from broker.trust import admin
from broker.trust.directory import DirectoryAnchor, DirectoryTrust
from broker.trust.replay import ReplayGuard
from broker.trust.store import PublicKeyCard, TrustStore
from broker.wire.envelope import NodeIdentity, build, verify_frame
from broker.wire.sealing import Opener
from broker.wire.signing import EncryptionKey, SigningKey
from tests.conftest import example, make_alert, now

AUTHORITIES = [SigningKey.generate() for _ in range(3)]


async def eventually(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


def signed(draft: SignedDirectory) -> SignedDirectory:
    return admin.sign(admin.sign(draft, AUTHORITIES[0]), AUTHORITIES[2])


def card(node: str, key: SigningKey, enc: EncryptionKey | None = None) -> PublicKeyCard:
    return PublicKeyCard(node, key.public, (enc or EncryptionKey.generate()).public)


def genesis(*members: PublicKeyCard) -> SignedDirectory:
    draft = admin.create(
        "op7-test",
        2,
        [card(f"NL.NA{i}", k) for i, k in enumerate(AUTHORITIES)],
        now=now() - timedelta(hours=1),
    )
    for member in members:
        draft = admin.add_node(draft, member, "Agency", [Role.NATIONAL_NODE], ["all"], now=now() - timedelta(hours=1))
    return signed(draft)


class Collector:
    def __init__(self) -> None:
        self.got: list[Delivery] = []

    def __call__(self, delivery: Delivery) -> None:
        self.got.append(delivery)

    def ids(self) -> list[str]:
        return [d.message.alert_id for d in self.got if isinstance(d.message, KidnappingAlert)]


async def test_a_directory_update_is_picked_up_live(
    transport_factory: Any, unique: str, alert_data: dict[str, Any]
) -> None:
    prefix = f"op7.t{unique}"
    fr_key, es_key = SigningKey.generate(), SigningKey.generate()
    v1 = genesis(card("FR.GN", fr_key))
    anchor = DirectoryAnchor.of(admin.read(v1))
    trust = DirectoryTrust(anchor)
    spanish_alert = {**alert_data, "issuer": {**alert_data["issuer"], "node": "ES.PN"}}
    async with Node(
        transport_factory(), DirectoryTrust(anchor), topic_prefix=prefix, follow_directory=False
    ) as authority:
        await authority.publish_directory(v1, "op7-test", 1)
        async with Node(transport_factory(), trust, topic_prefix=prefix) as ops, ops.subscribe("NL.NCC") as sub:
            await eventually(lambda: trust.version == 1)
            collector = Collector()
            run = asyncio.create_task(sub.run(collector))
            # The sender trusts itself (its own store): it does not know yet that the network's directory lacks it.
            own = TrustStore({"ES.PN": [es_key.public]})
            sender = Node(
                transport_factory(),
                own,
                NodeIdentity("ES.PN", es_key, network="op7-test"),
                topic_prefix=prefix,
                follow_directory=False,
            )
            async with sender:
                await sender.publish(make_alert(spanish_alert, alert_id="BEFORE"))
                await eventually(lambda: sub.stats.quarantined["unknown-sender"] == 1)
                v2 = signed(admin.add_node(v1, card("ES.PN", es_key), "PN", [Role.NATIONAL_NODE], ["all"], now=now()))
                await authority.publish_directory(v2, "op7-test", 2)
                await eventually(lambda: trust.version == 2)
                await sender.publish(make_alert(spanish_alert, alert_id="AFTER"))
                await eventually(lambda: collector.ids() == ["AFTER"])
            run.cancel()


async def test_rotation_overlap_and_revocation_on_the_wire(
    transport_factory: Any, unique: str, alert_data: dict[str, Any], clock: ManualClock
) -> None:
    prefix = f"op7.t{unique}"
    old, new = SigningKey.generate(), SigningKey.generate()
    v1 = genesis(card("FR.GN", old))
    v2 = signed(admin.rotate_key(v1, card("FR.GN", new), timedelta(days=7), now=now()))
    trust = DirectoryTrust(DirectoryAnchor.of(admin.read(v1)))
    assert trust.offer(v2, now())
    # The old key's holder keeps version 2 (a stolen key, or a node that missed the revocation): a node holding
    # the revocation would refuse to send with it (tests/contract/test_sending_checks.py).
    stale = DirectoryTrust(DirectoryAnchor.of(admin.read(v1)))
    assert stale.offer(v2, now())
    async with (
        Node(
            transport_factory(), stale, NodeIdentity("FR.GN", old), topic_prefix=prefix, follow_directory=False
        ) as with_old,
        Node(
            transport_factory(), trust, NodeIdentity("FR.GN", new), topic_prefix=prefix, follow_directory=False
        ) as with_new,
    ):
        await with_old.publish(make_alert(alert_data, alert_id="OLD-KEY"))
        await with_new.publish(make_alert(alert_data, alert_id="NEW-KEY"))
        revoked_at = clock.advance(timedelta(seconds=1))
        clock.advance(timedelta(seconds=1))
        v3 = signed(admin.revoke_key(v2, "FR.GN", old.public.key_id.hex(), "key compromised", at=revoked_at, now=now()))
        assert trust.offer(v3, now())
        await with_old.publish(make_alert(alert_data, alert_id="OLD-KEY-AFTER-REVOCATION"))
        await with_old.publish(
            make_alert(alert_data, alert_id="OLD-KEY-BACKDATED"), now=revoked_at - timedelta(minutes=5)
        )
        await with_new.publish(make_alert(alert_data, alert_id="NEW-KEY-AFTER-REVOCATION"))
    collector = Collector()
    async with (
        Node(transport_factory(), trust, topic_prefix=prefix, follow_directory=False) as ops,
        ops.subscribe("NL.NCC") as sub,
    ):
        await asyncio.wait_for(sub.run(collector, idle_timeout=3), 60)
    # Both keys worked during the overlap; from its revocation on, the old key is refused. A message dated
    # before the revocation still verifies: a stolen key can backdate, which the freshness window bounds.
    assert sorted(collector.ids()) == ["NEW-KEY", "NEW-KEY-AFTER-REVOCATION", "OLD-KEY", "OLD-KEY-BACKDATED"]
    assert dict(sub.stats.quarantined) == {"key-revoked": 1}


async def test_a_replayed_message_is_not_handed_twice_even_after_a_restart(
    transport_factory: Any,
    trust: TrustStore,
    fr: NodeIdentity,
    alert_data: dict[str, Any],
    unique: str,
    tmp_path: Path,
) -> None:
    prefix = f"op7.t{unique}"
    async with Node(transport_factory(), trust, fr, topic_prefix=prefix) as sender:
        published = await sender.publish(make_alert(alert_data, alert_id="ONCE"))
        await sender.transport.send(published.sent.topic, published.raw, key=b"replay")  # a replay, same bytes

    async def consume(group: str) -> tuple[Collector, Any]:
        collector = Collector()
        guard = ReplayGuard(tmp_path / "replay.db")
        node = Node(transport_factory(), trust, topic_prefix=prefix, replay_guard=guard)
        async with node, node.subscribe(group) as sub:
            stats = await asyncio.wait_for(sub.run(collector, idle_timeout=3), 60)
        guard.close()
        return collector, stats

    first, stats = await consume("NL.NCC")
    assert first.ids() == ["ONCE"] and stats.duplicates == 1
    # A restarted node reading everything again (a new group) still hands nothing over twice.
    again, stats = await consume("NL.NCC-rebuilt")
    assert again.ids() == [] and stats.duplicates == 2


async def test_a_sealed_request_is_read_by_its_addressee_only_and_verified_by_the_auditor(
    transport_factory: Any, unique: str
) -> None:
    prefix = f"op7.t{unique}"
    keys = {n: (SigningKey.generate(), EncryptionKey.generate()) for n in ("FR.GN", "ES.PN", "NL.NCC")}
    trust = TrustStore()
    for node, (sign, enc) in keys.items():
        trust.add(node, sign.public, enc.public)
    request = example("MutualLegalAssistanceRequest")
    async with Node(transport_factory(), trust, NodeIdentity("FR.GN", keys["FR.GN"][0]), topic_prefix=prefix) as fr:
        published = await fr.publish(request, seal=True)
    assert published.envelope.recipients == ("ES.PN",) and published.envelope.sealed is not None

    async def receive(node_id: str) -> tuple[Collector, Any]:
        # Both read ES.PN's inbox: on a cluster without ACLs, nothing stops a curious node from reading it.
        collector = Collector()
        node = Node(transport_factory(), trust, topic_prefix=prefix, opener=Opener(node_id, [keys[node_id][1]]))
        async with node, node.subscribe(node_id, [Node.inbox_of("ES.PN")]) as sub:
            stats = await asyncio.wait_for(sub.run(collector, idle_timeout=3), 60)
        return collector, stats

    addressee, _ = await receive("ES.PN")
    assert [d.message for d in addressee.got] == [request]
    third, stats = await receive("NL.NCC")
    assert third.got == [] and stats.not_addressed == 1 and not stats.quarantined
    # The auditor reads raw records: it proves who sent what to whom and when, without the content.
    auditor = transport_factory()
    async with auditor, auditor.consumer([f"{prefix}.inbox.ES.PN"], f"audit-{unique}") as consumer:
        records = []
        for _ in range(40):
            records += await consumer.fetch(timeout=0.5)
            if records:
                break
    (record,) = records
    verified = verify_frame(record.value, trust)
    assert (verified.envelope.sender, verified.envelope.recipients) == ("FR.GN", ("ES.PN",))
    assert verified.envelope.message_id == published.envelope.message_id
    assert hashlib.sha256(record.value).digest() == hashlib.sha256(published.raw).digest()
    assert request.facts.encode()[:30] not in record.value


async def test_red_information_is_not_passed_on_without_the_originators_permission(
    transport_factory: Any, unique: str
) -> None:
    prefix = f"op7.t{unique}"
    nodes = ("FR.GN", "ES.PN", "MX.FGR")
    keys = {n: (SigningKey.generate(), EncryptionKey.generate()) for n in nodes}
    trust = TrustStore()
    for node, (sign, enc) in keys.items():
        trust.add(node, sign.public, enc.public)

    def node(node_id: str) -> Node:
        return Node(
            transport_factory(),
            trust,
            NodeIdentity(node_id, keys[node_id][0]),
            topic_prefix=prefix,
            opener=Opener(node_id, [keys[node_id][1]]),
        )

    es_authority = Authority.model_validate(example("MutualLegalAssistanceResponse").issuer.model_dump())
    request = example("MutualLegalAssistanceRequest")  # TLP:RED, sealed to ES.PN
    async with node("FR.GN") as fr:
        await fr.publish(request, seal=True)
    received: list[Delivery] = []
    async with node("ES.PN") as es:
        async with es.subscribe("ES.PN", [Node.inbox_of("ES.PN")]) as sub:
            await asyncio.wait_for(sub.run(received.append, limit=1, idle_timeout=20), 30)
        (delivery,) = received
        with pytest.raises(HandlingRuleError, match="TLP:RED: for the eyes and ears of individual recipients only"):
            await es.forward(delivery, ("MX.FGR",), es_authority)
        # The originator grants it, signed; then the same forward goes through.
        decision = example("DisseminationDecision").model_copy(
            update={"original_message_id": delivery.envelope.message_id, "action": ControlledAction.ONWARD_TRANSMISSION}
        )
        async with node("FR.GN") as fr:
            grant = await fr.publish(decision, recipients=("ES.PN",))
        grant_delivery = Delivery(grant.envelope, decision, grant.raw, delivery.record)
        await es.forward(delivery, ("MX.FGR",), es_authority, permission=grant_delivery)
    got: list[Delivery] = []
    async with node("MX.FGR") as mx, mx.subscribe("MX.FGR", [Node.inbox_of("MX.FGR")]) as sub:
        await asyncio.wait_for(sub.run(got.append, limit=1, idle_timeout=20), 30)
        original = mx.open_forwarded(got[0].message, got[0].envelope.sender)  # type: ignore[arg-type]
    assert original.message == request and original.envelope.sender == "FR.GN"


async def test_an_unpermitted_forward_is_quarantined_by_the_receiver(
    transport_factory: Any, unique: str, alert_data: dict[str, Any]
) -> None:
    """A node that skips the check (another implementation) cannot make a receiver accept it."""
    from broker.models import ForwardedMessage

    prefix = f"op7.t{unique}"
    keys = {n: SigningKey.generate() for n in ("FR.GN", "ES.PN", "MX.FGR")}
    trust = TrustStore({n: [k.public] for n, k in keys.items()})
    red = make_alert(alert_data, handling={"tlp": "RED"})
    _, original = build(NodeIdentity("FR.GN", keys["FR.GN"]), red, now=now())
    forwarded = ForwardedMessage.model_validate(
        {
            "status": "Exercise",
            "sent_at": now(),
            "original_frame": original,
            "languages": ["en"],
            "handling": {"tlp": "AMBER"},  # the original is RED; a RED forward would be sealed to its recipient
            "issuer": example("MutualLegalAssistanceResponse").issuer.model_dump(),
        }
    )
    async with Node(transport_factory(), trust, NodeIdentity("ES.PN", keys["ES.PN"]), topic_prefix=prefix) as es:
        await es.publish(forwarded, recipients=("MX.FGR",))
    async with (
        Node(transport_factory(), trust, NodeIdentity("MX.FGR", keys["MX.FGR"]), topic_prefix=prefix) as mx,
        mx.subscribe("MX.FGR", [Node.inbox_of("MX.FGR")]) as sub,
    ):
        stats = await asyncio.wait_for(sub.run(lambda d: None, idle_timeout=3), 30)
    assert dict(stats.quarantined) == {"bad-forward": 1} and stats.delivered == 0
