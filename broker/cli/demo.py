"""``op7 demo``: the whole path on one screen (the command, and the program it runs).

Two national nodes (FR.GN issues, ES.PN listens) and an operations centre (NL.NCC) share a transport. FR.GN
issues a kidnapping alert (status Exercise), updates it, then gives the all-clear; a copy of the update
altered in transit is injected too. Both subscribers verify every message before decoding it; the altered
copy is refused and quarantined. Keys are generated for the run and never written to disk.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import click

from broker.cli._click import POSITIVE_SECONDS
from broker.cli._common import Env, command, global_options, pass_env
from broker.clock import Clock, default_clock
from broker.errors import MessageError
from broker.models import AlertMessageType, KidnappingAlert
from broker.node.node import Delivery, Node, Subscription, SubscriptionStats
from broker.transport import Record, Transport
from broker.trust.store import TrustStore
from broker.wire.envelope import NodeIdentity
from broker.wire.signing import SigningKey

__all__ = ["DemoResult", "demo", "demo_alert", "run_demo"]

ISSUER, PEER, OPS = "FR.GN", "ES.PN", "NL.NCC"


def demo_alert(case_id: str, now: datetime) -> KidnappingAlert:
    """The first alert of the demo case (an exercise)."""
    return KidnappingAlert.model_validate(
        {
            "case_id": case_id,
            "status": "Exercise",
            "msg_type": "Alert",
            "sent_at": now,
            "urgency": "Immediate",
            "severity": "Extreme",
            "headline": "EXERCISE - child abducted in Lyon, grey Peugeot heading south",
            "languages": ["en", "fr"],
            "victims": [
                {
                    "given_names": "Demo",
                    "family_names": "Victim-One",
                    "age_years": 8,
                    "sex": "Female",
                    "height_cm": 121,
                    "nationalities": ["FR"],
                    "clothing": "Red raincoat, blue jeans",
                }
            ],
            "last_seen": {
                "at": now - timedelta(minutes=35),
                "place": "School entrance, Lyon 7e",
                "country": "FR",
                "position": {"latitude": 45.7485, "longitude": 4.8422},
            },
            "vehicles": [
                {
                    "make": "Peugeot",
                    "model": "308",
                    "colour": "grey",
                    "plate": "GH-123-KL",
                    "registration_country": "FR",
                }
            ],
            "handling": {"tlp": "AMBER"},
            "issuer": {
                "node": ISSUER,
                "name": "Gendarmerie nationale",
                "contact": {"desk": "Centre de commandement 24/7", "phone": "+33100000000"},
            },
        }
    )


def _follow_up(previous: KidnappingAlert, msg_type: str, now: datetime, **changes: Any) -> KidnappingAlert:
    data = previous.model_dump(exclude={"alert_id"}) | {
        "msg_type": msg_type,
        "sent_at": now,
        "references": [*previous.references, previous.alert_id],
        **changes,
    }
    return KidnappingAlert.model_validate(data)


@dataclass
class DemoResult:
    transport: str
    case_id: str
    sent: list[str] = field(default_factory=list)
    ops: SubscriptionStats = field(default_factory=SubscriptionStats)
    peer: SubscriptionStats = field(default_factory=SubscriptionStats)
    ops_seen: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return (
            self.ops_seen == self.sent and self.peer.delivered == len(self.sent) and self.ops.quarantined.total() == 1
        )


def _line(out: Callable[[str], None], who: str, arrow: str, text: str) -> None:
    out(f"  {who:<7} {arrow} {text}")


async def run_demo(
    transport: Transport, *, out: Callable[[str], None] = print, timeout: float = 60.0, clock: Clock | None = None
) -> DemoResult:
    """Run the demo on ``transport`` (not yet started) under a fresh topic prefix; returns what happened."""
    run = secrets.token_hex(4)
    prefix = f"op7.demo-{run}"
    keys = {node: SigningKey.generate() for node in (ISSUER, PEER, OPS)}
    trust = TrustStore({node: [key.public] for node, key in keys.items()})
    clock = clock or default_clock()
    now = clock.now().replace(microsecond=0)
    case_id = f"FR-GN-{now:%Y}-DEMO-{run}"
    result = DemoResult(transport.name, case_id)

    def node(node_id: str) -> Node:
        return Node(
            transport,
            trust,
            NodeIdentity(node_id, keys[node_id]),
            topic_prefix=prefix,
            manage_transport=False,
            clock=clock,
        )

    out(f"op7 demo on the {transport.name} transport, topics {prefix}.*")
    out(f"  nodes: {ISSUER} and {PEER} (national nodes), {OPS} (operations centre), trusting each other")
    async with transport:
        issuer, peer, ops = node(ISSUER), node(PEER), node(OPS)
        for each in (issuer, peer, ops):
            await each.start()
        try:
            await _exchange(issuer, peer, ops, result, out, now, timeout)
        finally:
            if transport.name == "kafka":
                for topic in sorted({t for n in (issuer, peer, ops) for t in n.created_topics}):
                    await transport.delete_topic(topic)
    refused = ", ".join(f"{n} {r}" for r, n in result.ops.quarantined.items()) or "none"
    out(
        f"summary: {ISSUER} sent {len(result.sent)} alerts for case {case_id}; "
        f"{OPS} received {result.ops.received} records, verified and handled {result.ops.delivered}, "
        f"refused {result.ops.quarantined.total()} ({refused}); {PEER} verified {result.peer.delivered}. "
        + ("Lifecycle complete: Alert -> Update -> AllClear." if result.ok else "INCOMPLETE.")
    )
    return result


async def _exchange(
    issuer: Node,
    peer: Node,
    ops: Node,
    result: DemoResult,
    out: Callable[[str], None],
    now: datetime,
    timeout: float,
) -> None:
    def on_ops(d: Delivery) -> None:
        alert = d.message
        assert isinstance(alert, KidnappingAlert)
        result.ops_seen.append(alert.alert_id)
        _line(
            out,
            OPS,
            "<- verified",
            f"{alert.msg_type.value:<8} from {d.envelope.sender} "
            f"(key {d.envelope.key_id[:8]}): [{alert.severity.value}/{alert.urgency.value}] {alert.headline}",
        )

    ops_sub, peer_sub = ops.subscribe(OPS), peer.subscribe(PEER)
    async with ops_sub, peer_sub:

        def on_refused(record: Record, error: MessageError) -> None:
            _line(
                out,
                OPS,
                "x refused ",
                f"{record.topic}[{record.partition}]@{record.offset}: {error.reason}: "
                f"{error} (kept in {ops.topic(ops.quarantine_name)})",
            )

        ops_task = asyncio.create_task(ops_sub.run(on_ops, on_refused=on_refused))
        peer_task = asyncio.create_task(peer_sub.run(lambda d: None))
        try:
            await _play(issuer, result, out, now, timeout, ops_sub, peer_sub, (ops_task, peer_task))
        finally:
            for task in (ops_task, peer_task):
                task.cancel()
            await asyncio.gather(ops_task, peer_task, return_exceptions=True)
        result.ops, result.peer = ops_sub.stats, peer_sub.stats


def _story(case_id: str, now: datetime) -> tuple[KidnappingAlert, KidnappingAlert, KidnappingAlert]:
    """An alert, an update and an all-clear over the last 95 minutes (a message is never dated in the future)."""
    start = now - timedelta(minutes=95)
    first = demo_alert(case_id, start)
    update = _follow_up(
        first,
        "Update",
        start + timedelta(minutes=20),
        headline="EXERCISE - vehicle seen on A7 southbound near Valence",
        last_seen={
            "at": start + timedelta(minutes=15),
            "place": "A7 motorway, Valence sud",
            "country": "FR",
            "position": {"latitude": 44.9, "longitude": 4.89},
        },
    )
    clear = _follow_up(
        update,
        AlertMessageType.ALL_CLEAR.value,
        now,
        headline="EXERCISE - child found safe in Montelimar",
        urgency="Past",
        severity="Minor",
    )
    return first, update, clear


async def _play(
    issuer: Node,
    result: DemoResult,
    out: Callable[[str], None],
    now: datetime,
    timeout: float,
    ops_sub: Subscription,
    peer_sub: Subscription,
    tasks: tuple[asyncio.Task[SubscriptionStats], ...],
) -> None:
    first, update, clear = _story(result.case_id, now)
    for alert in (first, update, clear):
        published = await issuer.publish(alert)
        result.sent.append(alert.alert_id)
        _line(
            out,
            ISSUER,
            "-> sent    ",
            f"{alert.msg_type.value:<8} alert {alert.alert_id} "
            f"({len(published.raw)} bytes, signed) to {published.sent.topic}",
        )
        if alert is update:
            altered = bytearray(published.raw)
            altered[len(altered) // 2] ^= 0x01
            await issuer.transport.send(published.sent.topic, bytes(altered), key=result.case_id.encode())
            _line(out, "network", "-> altered ", "a copy of the Update with one byte changed in transit")
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline and not (
        ops_sub.stats.delivered + ops_sub.stats.quarantined.total() >= 4 and peer_sub.stats.delivered >= 3
    ):
        for task in tasks:
            if task.done():
                task.result()  # re-raises a failure
        await asyncio.sleep(0.05)


@command(None, "demo", "two national nodes and an operations centre exchange an alert lifecycle")
@click.option("--timeout", type=POSITIVE_SECONDS, default=60.0, help="seconds to wait for deliveries (default 60)")
@global_options
@pass_env
def demo(env: Env, timeout: float) -> int:
    transport = env.settings.transport(None)  # the embedded demo runs in memory
    result = asyncio.run(run_demo(transport, out=click.echo, timeout=timeout))
    return 0 if result.ok else 1
