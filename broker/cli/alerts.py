"""``op7 alert send`` and ``op7 alerts listen``: kidnapping alerts out and in."""

from __future__ import annotations

from typing import Any

import click

from broker.cli._click import argument
from broker.cli._common import Env, command, delivery_json, echo_json, global_options, me, new_group, pass_env
from broker.cli.send import Listening, Outgoing, format_option, listen_options, listen_topics, send_message
from broker.models import KidnappingAlert
from broker.node.exchange_store import ExchangeStore
from broker.node.node import Delivery
from broker.node.topics import TopicLayout

__all__ = ["alert", "alerts"]

alert = new_group("alert", "issue kidnapping alerts")
alerts = new_group("alerts", "receive kidnapping alerts")


@command(alert, "send", "validate, sign and publish an alert from a JSON file")
@argument("file", "the alert, as a file in the --format (default: op7's JSON form, see examples/)")
@click.option("--as", "as_node", metavar="NODE_ID", help="signing node (default: the alert's issuer.node)")
@click.option("--json", "as_json", is_flag=True, help="print where it was sent as JSON")
@click.option("--force", is_flag=True, help="send although the alert's expires_at is already past")
@format_option
@global_options
@pass_env
def alert_send(env: Env, file: str, as_node: str | None, as_json: bool, force: bool, input_format: str) -> int:
    return send_message(
        env,
        Outgoing("KidnappingAlert", file, as_node=as_node, as_json=as_json, input_format=input_format, force=force),
    )


@command(alert, "acks", "who acknowledged the alerts this node issued, and when (received by 'op7 inbox watch')")
@click.option("--as", "as_node", metavar="NODE_ID", required=True, help="the issuing node")
@click.option("--json", "as_json", is_flag=True, help="as a JSON list")
@global_options
@pass_env
def alert_acks(env: Env, as_node: str, as_json: bool) -> int:
    store = ExchangeStore(env.home.exchanges_path(me(as_node)))
    try:
        events = store.events_in_state("acknowledged")
    finally:
        store.close()
    rows = [
        {
            "message_id": e.message_id,
            "at": f"{e.at:%Y-%m-%dT%H:%M:%SZ}",
            "detail": e.detail,
            "receipt_id": e.related_message_id,
        }
        for e in events
    ]
    if as_json:
        echo_json(rows, indent=2)
    for row in [] if as_json else rows:
        click.echo(f"{row['at']} {row['message_id']} {row['detail']}")
    if not rows and not as_json:
        click.echo(f"no acknowledgement of an alert of {me(as_node)} yet")
    return 0


def _alert_line(d: Delivery) -> str:
    a = d.message
    assert isinstance(a, KidnappingAlert)
    place = f" last seen {a.last_seen.place} ({a.last_seen.country})" if a.last_seen else ""
    victims = ", ".join(f"{v.given_names} {v.family_names}" for v in a.victims)
    status = "" if a.status.value == "Actual" else f" [{a.status.value.upper()}]"
    return (
        f"{a.sent_at:%Y-%m-%dT%H:%M:%SZ} {a.msg_type.value:<8} case {a.case_id} from {d.envelope.sender}"
        f"{status} {a.severity.value}/{a.urgency.value}: {a.headline}"
        + (f" | victims: {victims}" if victims else "")
        + place
        + " (signature verified)"
    )


@command(alerts, "listen", "print each verified alert as it arrives")
@listen_options("alerts", "a new group starts at the end of the topic instead of its beginning")
@global_options
@pass_env
def alerts_listen(env: Env, /, **options: Any) -> int:
    how = Listening(**options)

    def show(d: Delivery) -> None:
        if how.as_json:
            echo_json(delivery_json(d, "alert"))
        else:
            click.echo(_alert_line(d))

    return listen_topics(env, how, [TopicLayout(env.topic_prefix).alerts], show, "alerts")
