"""``op7 send``, ``op7 reply`` and ``op7 listen``: any message type out of a file, and every verified one in."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import click

from broker.cli._click import DURATION, POSITIVE_INT, POSITIVE_SECONDS, argument
from broker.cli._common import (
    Env,
    agent,
    command,
    delivery_json,
    echo_json,
    global_options,
    make_node,
    me,
    pass_env,
    transport,
    where,
)
from broker.cli._consuming import Reporter, metrics_options, serving_metrics
from broker.cli._issuer import issuer_setting
from broker.cli.workers import WorkerTally, run_workers
from broker.errors import ConfigError, InputError, TransportError
from broker.models import MESSAGE_MODELS, Message, Request, check_node_id, message_model
from broker.models.answers import is_answer_type
from broker.models.inputs import outgoing_problems, validate
from broker.node.exchange_store import ExchangeStore
from broker.node.node import Delivery, Handler, Node, Published
from broker.node.outbox import Outbox
from broker.node.sequence import SenderSequence
from broker.plugins import load_adapter
from broker.trust.directory import DirectoryTrust
from broker.trust.replay import Freshness
from broker.trust.store import TrustStore
from broker.wire.envelope import open_frame
from broker.wire.schemas import default_registry

__all__ = ["Outgoing", "format_option", "listen", "listen_topics", "reply", "send", "send_message"]

log = logging.getLogger("op7.cli")

F = Callable[..., Any]


def format_option(f: F) -> F:
    """``--format NAME``: the inbound adapter that reads the file (an ``op7.adapters`` entry point)."""
    return click.option(
        "--format",
        "input_format",
        default="json",
        metavar="NAME",
        help="how the file is written: an installed input adapter (default json, op7's own JSON form)",
    )(f)


@dataclass(frozen=True)
class Outgoing:
    """What the sending commands were asked to send, and how."""

    type_name: str
    file: str
    as_node: str | None = None
    to: tuple[str, ...] = ()
    seal: bool = False
    deadline_in: timedelta | None = None
    force: bool = False
    as_json: bool = False
    input_format: str = "json"


@command(None, "send", "validate, sign and publish any message type from a JSON file")
@argument("type_name", "message type, e.g. MutualLegalAssistanceRequest (see 'op7 schemas list')", metavar="TYPE")
@argument("file", "the message, as a file in the --format (default: op7's JSON form, see examples/)")
@click.option("--as", "as_node", metavar="NODE_ID", help="signing node (default: the issuer.node)")
@click.option(
    "--seal", is_flag=True, help="encrypt the content for the recipients only (the header stays readable and signed)"
)
@click.option(
    "--to",
    multiple=True,
    metavar="NODE_ID",
    help="addressee (repeatable; default: a request's requested_authority, else everyone)",
)
@click.option(
    "--deadline-in",
    type=DURATION,
    metavar="DURATION",
    help="answer deadline counted from sending, e.g. 6h or 3d (also the request's deadline field, if it has one)",
)
@click.option(
    "--force",
    is_flag=True,
    help="send although a deadline, grant validity or expiry is already past (recorded as sent late)",
)
@click.option("--json", "as_json", is_flag=True, help="print where it was sent as JSON")
@format_option
@global_options
@pass_env
def send(env: Env, /, type_name: str, file: str, **options: Any) -> int:
    return send_message(env, Outgoing(type_name, file, **options))


def _model(type_name: str) -> type[Message]:
    try:
        return message_model(type_name)
    except KeyError:
        names = ", ".join(sorted(n.rsplit(".", 1)[1] for n in MESSAGE_MODELS))
        raise ConfigError(f"unknown message type {type_name!r}; one of: {names}") from None


def send_message(env: Env, out: Outgoing) -> int:
    """Send the message of ``out.file``: a directed one (to one addressee, or a request) as an exchange, recorded
    with its deadline; anything else published to its topic. A directed message under TLP:RED or AMBER+STRICT is
    sealed to its addressees. An answer is refused: it goes to the authority that asked, with ``op7 reply``."""
    model = _model(out.type_name)
    if is_answer_type(model.avro_name):
        # Sent here it would answer no request: to no one (every subscriber) or unlinked from the request it answers.
        raise ConfigError(
            f"a {out.type_name} answers a request: it goes to the authority that asked, in the request's "
            f"conversation, sealed when its handling requires it; send it with 'op7 reply ID {out.type_name} "
            f"{out.file} --as NODE_ID' (the request's ID from 'op7 exchanges list --as NODE_ID')"
        )
    recipients = tuple(check_node_id(r) for r in out.to)
    exchange = (bool(recipients) or issubclass(model, Request)) and len(recipients) <= 1
    if out.deadline_in is not None and not exchange:
        raise ConfigError("--deadline-in: only a message sent to one addressee (an exchange) has an answer deadline")
    message, deadline = outgoing(
        env, model, out.file, out.input_format, deadline_in=out.deadline_in, late=out.force, as_node=out.as_node
    )
    sender = out.as_node or message.issuer.node
    identity = env.home.identity(sender)

    async def publish() -> Published:
        home = env.home
        node = Node(
            transport(env),
            home.trust(),
            identity,
            topic_prefix=env.topic_prefix,
            follow_directory=False,
            clock=home.clock,
            outbox=Outbox(home.outbox_path(sender)),
            sequence=SenderSequence(sender, home.sequence_path(sender)),
        )
        if not exchange:
            return await _publish_or_keep(node, message, recipients, out.seal)
        async with node:
            # A directed message is an exchange: recorded, with its deadline, followed by 'op7 inbox watch'.
            exchanges = await agent(env.home, node, message.issuer)
            try:
                return await exchanges.send(
                    message, recipients=recipients, seal=out.seal, deadline=deadline, late=out.force
                )
            finally:
                exchanges.store.close()

    _report_sent(asyncio.run(publish()), sender, out.as_json)
    return 0


async def _publish_or_keep(node: Node, message: Message, recipients: tuple[str, ...], seal: bool) -> Published:
    """Publish ``message``; with the cluster out of reach, sign it and keep it in the outbox (DeliveryError, pending):
    the node's next run, or 'op7 outbox retry', sends it, with the same message id."""
    try:
        await node.start()
    except TransportError as exc:
        await node.stop()
        if not exc.retriable:
            raise
        node.courier.held = f"the cluster is out of reach ({exc})"
        return await node.publish(message, recipients=recipients, seal=seal)
    try:
        return await node.publish(message, recipients=recipients, seal=seal)
    finally:
        await node.stop()


def _report_sent(published: Published, sender: str, as_json: bool) -> None:
    e, sent = published.envelope, published.sent
    if as_json:
        echo_json(
            {
                "message_id": e.message_id,
                "message_type": e.message_type,
                "case_id": e.case_id,
                "recipients": list(e.recipients),
                "sealed": e.sealed is not None,
                "topic": sent.topic,
                "partition": sent.partition,
                "offset": sent.offset,
                "bytes": len(published.raw),
            }
        )
        return
    to = ", ".join(e.recipients) or "all subscribers"
    sealed = f", sealed to {to}" if e.sealed is not None else ""
    click.echo(
        f"sent {e.message_type} {e.message_id} as {sender} to {to} via "
        f"{sent.topic}[{sent.partition}]@{sent.offset} ({len(published.raw)} bytes, signed{sealed})"
    )


def outgoing(
    env: Env,
    model: type[Message],
    file: str,
    input_format: str,
    *,
    deadline_in: timedelta | None = None,
    late: bool = False,
    as_node: str | None = None,
) -> tuple[Message, datetime | None]:
    """The message of ``file`` as of now, read by the ``input_format`` adapter and checked for sending: refused
    (InputError naming the file, the field and the value) when it is dated ahead of what receivers accept or, unless
    ``late``, a deadline is past. Returns it with the answer deadline that ``--deadline-in`` sets (written into its
    ``deadline`` field too, when its type has one)."""
    factory = load_adapter(input_format)
    # An adapter whose records do not name their issuer (CAP, an export) takes it from the directory; the trust is
    # read for those only.
    wants = "issuer" in getattr(factory, "setting_names", ()) and as_node is not None
    issuer = issuer_setting(env.home.trust(), as_node) if wants and as_node else None
    adapter = factory(model, {"issuer": issuer}) if issuer else factory(model)
    now = env.home.clock.now()
    message = adapter.translate_file(Path(file), now=now).message
    deadline = None
    if deadline_in is not None:
        deadline = message.sent_at + deadline_in
        if "deadline" in model.model_fields:
            message = validate(model, {**message.model_dump(), "deadline": deadline}, file)
    problems = outgoing_problems(message, now, max_skew=Freshness().max_skew, late=late)
    if problems:
        raise InputError(file, problems)
    return message, deadline


@command(None, "reply", "answer a received exchange from a JSON file")
@argument("message_id", "the received message's id (or its first or last characters)", metavar="ID")
@argument("type_name", "the answer's message type, e.g. MutualLegalAssistanceResponse", metavar="TYPE")
@argument("file", "the answer, as a file in the --format (default: op7's JSON form)")
@click.option(
    "--as", "as_node", metavar="NODE_ID", required=True, help="the node answering (its keys are in this home)"
)
@click.option("--force", is_flag=True, help="send although a validity or expiry in it is already past")
@format_option
@global_options
@pass_env
def reply(env: Env, message_id: str, type_name: str, file: str, as_node: str, force: bool, input_format: str) -> int:
    node_id = me(as_node)
    store = ExchangeStore(env.home.exchanges_path(node_id))
    record = store.find(message_id)
    store.close()
    if record is None or record.direction.value != "in":
        raise ConfigError(f"no received exchange {message_id!r} for {node_id}; see 'op7 exchanges list --as {node_id}'")
    try:
        model = message_model(type_name)
    except KeyError:
        raise ConfigError(f"unknown message type {type_name!r}") from None
    message, _ = outgoing(env, model, file, input_format, late=force, as_node=as_node)

    async def answer() -> Published:
        node = make_node(env, me=node_id, sign=True, follow=False)
        async with node:
            opened = open_frame(record.frame, node.trust, node.registry, opener=node.opener)
            exchanges = await agent(env.home, node, message.issuer)
            try:
                return await exchanges.reply(opened, message)
            finally:
                exchanges.store.close()

    published = asyncio.run(answer())
    sealed = " (sealed)" if published.envelope.sealed is not None else ""
    click.echo(
        f"answered {record.message_id} with {published.envelope.message_type} {published.envelope.message_id}"
        f" to {record.peer}{sealed}"
    )
    return 0


# --- listening ----------------------------------------------------------------------------------------


def listen_options(what: str, from_now: str) -> Callable[[F], F]:
    """The options of the listening commands: ``--as``, ``--group``, ``--json``, ``--count``, ``--timeout``,
    ``--from-now``, ``--workers``, ``--metrics-port``, ``--metrics-address``; ``what`` is what ``--count`` counts,
    ``from_now`` the help of ``--from-now``."""

    def add(f: F) -> F:
        for option in reversed(
            (
                click.option(
                    "--as",
                    "as_node",
                    metavar="NODE_ID",
                    help="the listening node: opens what was sealed to it; default group",
                ),
                click.option("--group", help="consumer group (default: the --as node id, else op7.cli-listen)"),
                click.option("--json", "as_json", is_flag=True, help="one JSON object per line"),
                click.option("--count", type=POSITIVE_INT, help=f"exit after this many {what}"),
                click.option(
                    "--timeout", type=POSITIVE_SECONDS, help="exit after this many seconds without a new record"
                ),
                click.option("--from-now", is_flag=True, help=from_now),
                click.option(
                    "--workers",
                    type=POSITIVE_INT,
                    default=1,
                    show_default=True,
                    help="consumer processes sharing the group's partitions, to use several cores (Kafka only)",
                ),
            )
        ):
            f = option(f)
        return metrics_options(f)

    return add


@dataclass(frozen=True)
class Listening:
    """How a listening command reads: as which node, in which group, how long."""

    as_node: str | None = None
    group: str | None = None
    as_json: bool = False
    count: int | None = None
    timeout: float | None = None
    from_now: bool = False
    workers: int = 1
    metrics_port: int | None = None
    metrics_address: str | None = None


def listen_topics(env: Env, how: Listening, topics: list[str], show: Handler, what: str) -> int:
    """Print verified messages of ``topics`` with ``show``; refusals and the connection as :class:`Reporter` does."""
    trust = env.home.trust()
    if isinstance(trust, TrustStore) and not list(trust.nodes()):
        raise ConfigError(
            f"the trust store {env.home.trust_path} is empty: nothing could verify; "
            "add senders with 'op7 keys trust FILE.pub'"
        )
    if isinstance(trust, DirectoryTrust) and trust.directory is None:
        log.warning("no network directory accepted yet: waiting for one on the directory topic")
    node_id = check_node_id(how.as_node) if how.as_node else None
    group = how.group or node_id or "op7.cli-listen"
    if how.workers > 1:
        return run_workers(env, how, topics, group, what)
    report = Reporter(where(env), how.as_json)
    tally = WorkerTally.of_environment()

    async def run() -> None:
        node = make_node(env, me=node_id, group=group, trust=trust)
        async with node, node.subscribe(group, topics, from_beginning=not how.from_now) as sub:
            if not how.as_json and tally is None:
                click.echo(f"listening for {what} on {where(env)} as group {group} (Ctrl-C to stop)", err=True)
            handler = show if tally is None else tally.counting(show)
            await sub.run(
                handler, limit=how.count, idle_timeout=how.timeout, on_refused=report.refused, on_status=report.status
            )

    with serving_metrics(env, how.metrics_port, how.metrics_address):
        asyncio.run(run())
    if tally is not None:
        tally.report()
    return 0


@command(None, "listen", "print every verified message of some topics as it arrives")
@click.option(
    "--topic", multiple=True, help="alerts, cases, requests, reports, receipts, or inbox (with --as); default: all"
)
@listen_options("messages", "a new group starts at the end of the topics instead of their beginning")
@global_options
@pass_env
def listen(env: Env, /, topic: tuple[str, ...], **options: Any) -> int:
    how = Listening(**options)
    registry = default_registry()
    known = sorted({registry.topic_of(t) for t in registry.message_types})
    node_id = check_node_id(how.as_node) if how.as_node else None
    if node_id:
        known.append(Node.inbox_of(node_id))
    topics = [Node.inbox_of(node_id) if t == "inbox" and node_id else t for t in topic] if topic else known
    for name in topics:
        if name not in known:
            raise ConfigError(f"unknown topic {name!r}; one of: {', '.join(known)} (inbox needs --as)")

    def show(d: Delivery) -> None:
        if how.as_json:
            echo_json(delivery_json(d))
            return
        e = d.envelope
        to = ",".join(e.recipients) or "all"
        case = f" case {e.case_id}" if e.case_id else ""
        click.echo(
            f"{e.created_at:%Y-%m-%dT%H:%M:%SZ} {e.message_type.rsplit('.', 1)[1]} from {e.sender} to {to}"
            f"{case} [{e.status.value}, TLP:{e.handling.tlp.value}] id {e.message_id} (signature verified)"
        )

    return listen_topics(env, how, topics, show, ", ".join(topics))
