"""Subscriptions with filters, on both transports: only what the filter keeps reaches the handler, and what it keeps
out is still verified and committed (a later run does not get it again)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from broker.clock import ManualClock
from broker.models import KidnappingAlert
from broker.node.filters import Area, MessageFilter
from broker.node.node import Delivery, Node
from broker.trust.store import TrustStore
from broker.wire.envelope import NodeIdentity
from tests.conftest import make_alert


async def test_only_the_alerts_a_filter_keeps_reach_the_handler_and_the_others_are_committed(
    transport_factory: Any,
    trust: TrustStore,
    fr: NodeIdentity,
    alert_data: dict[str, Any],
    unique: str,
    clock: ManualClock,
) -> None:
    prefix = f"op7.f{unique}"
    seen = alert_data["last_seen"]
    lyon = {**seen, "country": "FR", "position": {"latitude": 45.75, "longitude": 4.84}}
    madrid = {**seen, "country": "ES", "position": {"latitude": 40.42, "longitude": -3.70}}
    alerts = {
        "actual-fr": make_alert(alert_data, status="Actual", last_seen=lyon, severity="Extreme"),
        "exercise-fr": make_alert(alert_data, status="Exercise", last_seen=lyon, severity="Extreme"),
        "actual-es": make_alert(alert_data, status="Actual", last_seen=madrid, severity="Extreme"),
        "actual-fr-minor": make_alert(alert_data, status="Actual", last_seen=lyon, severity="Minor"),
    }
    # The first alert's Cancel says neither where nor how severe: it still reaches a subscriber of that case.
    alerts["cancel"] = make_alert(
        alert_data,
        status="Actual",
        msg_type="Cancel",
        references=[alerts["actual-fr"].alert_id],
        last_seen=None,
        severity="Unknown",
        victims=[],
    )
    async with Node(transport_factory(), trust, fr, topic_prefix=prefix, clock=clock) as sender:
        for alert in alerts.values():
            await sender.publish(alert)
    wanted = MessageFilter(
        types={"KidnappingAlert"},
        statuses={"Actual"},
        countries={"FR"},
        area=Area(south=42, west=-5, north=51, east=8),
        severities={"Extreme", "Severe"},
        max_age=timedelta(hours=1),
    )
    got: list[Delivery] = []
    reader = Node(transport_factory(), trust, topic_prefix=prefix, clock=clock)
    async with reader, reader.subscribe("NL.NCC") as sub:
        stats = await asyncio.wait_for(sub.run(wanted.handler(got.append, clock), idle_timeout=3), 60)
    kept = sorted(d.message.alert_id for d in got if isinstance(d.message, KidnappingAlert))
    assert kept == sorted([alerts["actual-fr"].alert_id, alerts["cancel"].alert_id])
    assert stats.delivered == 5  # all five verified and handed over: the filter chose
    again: list[Delivery] = []
    later = Node(transport_factory(), trust, topic_prefix=prefix, clock=clock)
    async with later, later.subscribe("NL.NCC") as sub:
        await asyncio.wait_for(sub.run(again.append, idle_timeout=3), 60)
    assert again == []  # the filtered-out ones were committed too


def test_an_area_across_the_180th_meridian() -> None:
    pacific = Area(south=-30, west=170, north=10, east=-170)
    assert pacific.holds(0, 175) and pacific.holds(0, -175) and not pacific.holds(0, 0)
