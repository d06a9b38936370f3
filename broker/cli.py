"""The ``op7`` command.

Exit codes: 0 success; 1 an op7 error (bad input, bad configuration, transport failure), with one line per
problem on standard error and no traceback; 2 a usage error; 130 interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import math
import os
import re
import shutil
import sys
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from importlib import metadata
from pathlib import Path
from typing import Any

from adapters.native_json import NativeJsonAdapter
from broker.clock import parse_duration
from broker.config import Home
from broker.errors import ConfigError, HandlerError, InputError, MessageError, Op7Error
from broker.models import MESSAGE_MODELS, Authority, KidnappingAlert, Message, Request, check_node_id, message_model
from broker.models.directory import KeyEntry, Role, SignedDirectory
from broker.models.inputs import outgoing_problems, validate
from broker.node.exchange import DeadlinePolicy, EventHook, ExchangeAgent, ExchangeEvent
from broker.node.exchange_store import ExchangeState, ExchangeStore
from broker.node.node import Delivery, Handler, Node
from broker.transport import Record, Transport, make_transport
from broker.trust import admin
from broker.trust.directory import (
    DirectoryAnchor,
    DirectoryTrust,
    keep_directory,
    load_signed_directory,
    save_signed_directory,
)
from broker.trust.replay import Freshness, ReplayGuard
from broker.trust.store import PublicKeyCard, TrustStore
from broker.wire.compat import check_tree
from broker.wire.envelope import open_frame
from broker.wire.schemas import SchemaRegistry, default_registry, schema_dir
from broker.wire.trust import Trust

__all__ = ["main"]

log = logging.getLogger("op7.cli")


def _transport(args: argparse.Namespace, home: Home) -> Transport:
    return make_transport(args.bootstrap, home.embedded_path, clock=home.clock)


def _node(
    args: argparse.Namespace,
    home: Home,
    *,
    me: str | None = None,
    sign: bool = False,
    group: str | None = None,
    follow: bool = True,
    trust: Trust | None = None,
) -> Node:
    """A node as the CLI runs it: this home's trust, and, for a node id, its keys (to sign, to open what is sealed
    to it), its replay store for ``group``, and the directory versions it follows."""
    return Node(
        _transport(args, home),
        trust or home.trust(),
        home.identity(me) if sign and me else None,
        topic_prefix=args.topic_prefix,
        opener=home.opener(me) if me else None,
        replay_guard=ReplayGuard(home.replay_path(group)) if group else None,
        follow_directory=follow,
        directory_dir=home.directory_dir if follow and home.uses_directory() else None,
        clock=home.clock,
    )


def _where(args: argparse.Namespace, home: Home) -> str:
    return f"Kafka at {args.bootstrap}" if args.bootstrap else f"embedded transport {home.embedded_path}"


# --- keys ---------------------------------------------------------------------------------------------


def cmd_keys_new(args: argparse.Namespace, home: Home) -> int:
    node_id = check_node_id(args.node_id)
    key, key_path, card_path = home.new_key(node_id, overwrite=args.force, rotate=args.command_name == "rotate")
    trust_locally = not args.no_trust and not home.uses_directory()
    if trust_locally:
        store = TrustStore.load_or_empty(home.trust_path)
        store.add(node_id, key.public, PublicKeyCard.load(card_path).encryption_key)
        store.save(home.trust_path)
    verb = "rotated the keys of" if args.command_name == "rotate" else "created keys for"
    print(f"{verb} {node_id}: signing key {key.public.key_id.hex()} (Ed25519), encryption key (X25519)")
    print(f"  private keys: {key_path} and {home.enc_key_path(node_id)} (mode 0600; never share them)")
    print(f"  public card:  {card_path} (give this to other operators, or to the network authority)")
    if trust_locally:
        print(f"  trusted in:   {home.trust_path}")
    elif home.uses_directory():
        print(
            f"  the network directory decides trust: ask the authority to run "
            f"'op7 directory {'rotate-key' if args.command_name == 'rotate' else 'add-node'}' with the card"
        )
    return 0


def cmd_keys_trust(args: argparse.Namespace, home: Home) -> int:
    card = PublicKeyCard.load(Path(args.file))
    store = TrustStore.load_or_empty(home.trust_path)
    store.add(card.node, card.key, card.encryption_key)
    store.save(home.trust_path)
    print(f"trusted {card.node} key {card.key.key_id.hex()} in {home.trust_path}")
    return 0


def cmd_keys_list(args: argparse.Namespace, home: Home) -> int:
    trust = home.trust()
    if isinstance(trust, DirectoryTrust):
        directory = trust.directory
        rows = [
            (n.node_id, k.key_id, _key_state(k, home.clock.now()))
            for n in (directory.nodes if directory else ())
            for k in n.signing_keys
        ]
        source = f"network directory version {trust.version}" if directory else "network directory (none accepted)"
    else:
        assert isinstance(trust, TrustStore)
        rows = [(node, key.key_id.hex(), "valid") for node, keys in trust.nodes() for key in keys]
        source = f"trust store {home.trust_path}"
    if args.json:
        print(json.dumps([{"node": n, "key_id": k, "state": s} for n, k, s in rows], indent=2))
        return 0
    print(f"# {source}")
    for node, key_id, state in rows:
        mine = " (private key here)" if home.key_path(node).exists() else ""
        print(f"{node:<16} {key_id} {state}{mine}")
    return 0


def _key_state(key: KeyEntry, now: datetime) -> str:
    problem = key.problem_at(now)
    if problem is not None:
        return problem[0].removeprefix("key-")
    return f"valid until {key.valid_until:%Y-%m-%dT%H:%MZ}" if key.valid_until else "valid"


# --- the network directory ----------------------------------------------------------------------------


def _draft(path: str) -> SignedDirectory:
    return load_signed_directory(Path(path))


def _save_draft(path: str, signed: SignedDirectory) -> None:
    save_signed_directory(Path(path), signed)
    directory = admin.read(signed)
    state = f"{len(signed.signatures)}/{directory.threshold} signatures" if signed.signatures else "unsigned"
    print(f"{path}: network {directory.network} version {directory.version}, {len(directory.nodes)} node(s), {state}")


def cmd_directory(args: argparse.Namespace, home: Home) -> int:
    action = args.directory_command
    if action == "create":
        cards = [PublicKeyCard.load(Path(p)) for p in args.authority]
        _save_draft(args.file, admin.create(args.network, args.threshold, cards, now=home.clock.now()))
    elif action == "add-node":
        card = PublicKeyCard.load(Path(args.card))
        roles = [Role(r) for r in args.role]
        _save_draft(
            args.file,
            admin.add_node(_draft(args.file), card, args.agency, roles, args.allow or ["all"], now=home.clock.now()),
        )
    elif action == "remove-node":
        _save_draft(args.file, admin.remove_node(_draft(args.file), check_node_id(args.node_id), now=home.clock.now()))
    elif action == "rotate-key":
        card = PublicKeyCard.load(Path(args.card))
        try:
            overlap = parse_duration(args.overlap)
        except ValueError as exc:
            raise ConfigError(f"--overlap: {exc}") from None
        _save_draft(args.file, admin.rotate_key(_draft(args.file), card, overlap, now=home.clock.now()))
    elif action == "revoke-key":
        at = datetime.fromisoformat(args.at) if args.at else None
        if at is not None and at.tzinfo is None:
            raise ConfigError(f"--at {args.at}: give a time with its zone, e.g. 2026-12-01T10:00:00+00:00")
        _save_draft(
            args.file,
            admin.revoke_key(
                _draft(args.file), check_node_id(args.node_id), args.key_id, args.reason, at, now=home.clock.now()
            ),
        )
    elif action == "sign":
        _save_draft(args.file, admin.sign(_draft(args.file), home.identity(args.as_node).key))
    elif action == "anchor":
        directory = admin.read(_draft(args.file))
        target = Path(args.out) if args.out else home.anchor_path
        _write_anchor(target, DirectoryAnchor.of(directory))
        print(
            f"{target}: anchor of network {directory.network} ({len(directory.authorities)} authority keys, "
            f"threshold {directory.threshold})"
        )
    elif action == "show":
        directory = admin.read(_draft(args.file))
        print(json.dumps(directory.model_dump(mode="json"), indent=2, default=str))
    elif action in ("verify", "install", "publish"):
        return _directory_verify(args, home, action)
    return 0


def _write_anchor(path: Path, anchor: DirectoryAnchor) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(anchor.to_json(), indent=2) + "\n", encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot write: {exc.strerror or exc}") from None


def _directory_verify(args: argparse.Namespace, home: Home, action: str) -> int:
    signed = _draft(args.file)
    trust = home.trust() if not args.anchor else DirectoryTrust(DirectoryAnchor.load(Path(args.anchor)))
    if not isinstance(trust, DirectoryTrust):
        raise ConfigError(f"no network anchor in {home.root}; install one with 'op7 directory anchor' or pass --anchor")
    held = trust.version
    try:
        newer = trust.offer(signed, home.clock.now())
    except MessageError as exc:
        print(f"op7: refused: {args.file}: {exc}", file=sys.stderr)
        return 1
    directory = admin.read(signed)
    if not newer and directory.version != held:
        print(
            f"op7: refused: {args.file}: version {directory.version} is older than version {held} held", file=sys.stderr
        )
        return 1
    print(
        f"{args.file}: valid: network {directory.network} version {directory.version}, "
        f"{len(signed.signatures)} signature(s), threshold {trust.anchor.threshold if not held else 'met'}"
    )
    if action in ("install", "publish"):
        print(f"installed as {keep_directory(home.directory_dir, trust)}")
    if action == "publish":

        async def publish() -> None:
            node = Node(
                _transport(args, home),
                trust,
                topic_prefix=args.topic_prefix,
                follow_directory=False,
                clock=home.clock,
            )
            async with node:
                sent = await node.publish_directory(signed, directory.network, directory.version)
            print(f"published to {sent.topic}[{sent.partition}]@{sent.offset}")

        asyncio.run(publish())
    return 0


# --- alerts -------------------------------------------------------------------------------------------


def cmd_alert_send(args: argparse.Namespace, home: Home) -> int:
    args.type, args.to = "KidnappingAlert", None
    return cmd_send(args, home)


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


def _delivery_json(d: Delivery, key: str = "message") -> dict[str, Any]:
    # A forwarded sealed original's content key stays out of logs and terminals.
    return {
        "envelope": d.envelope.model_dump(mode="json"),
        key: d.message.model_dump(mode="json", exclude={"original_content_key"}),
        "verified": True,
        "topic": d.record.topic,
        "partition": d.record.partition,
        "offset": d.record.offset,
    }


def _listen(args: argparse.Namespace, home: Home, topics: list[str], show: Handler, what: str) -> int:
    """Print verified messages of ``topics`` with ``show``; refusals go to standard error."""
    trust = home.trust()
    if isinstance(trust, TrustStore) and not list(trust.nodes()):
        raise ConfigError(
            f"the trust store {home.trust_path} is empty: nothing could verify; "
            "add senders with 'op7 keys trust FILE.pub'"
        )
    if isinstance(trust, DirectoryTrust) and trust.directory is None:
        log.warning("no network directory accepted yet: waiting for one on the directory topic")
    me = check_node_id(args.as_node) if args.as_node else None
    group = args.group or me or "op7.cli-listen"

    def refused(record: Record, error: Op7Error) -> None:
        print(
            f"op7: refused {record.topic}[{record.partition}]@{record.offset}: {error} (quarantined)",
            file=sys.stderr,
            flush=True,
        )

    async def listen() -> None:
        node = _node(args, home, me=me, group=group, trust=trust)
        async with node, node.subscribe(group, topics, from_beginning=not args.from_now) as sub:
            if not args.json:
                print(
                    f"listening for {what} on {_where(args, home)} as group {group} (Ctrl-C to stop)",
                    file=sys.stderr,
                    flush=True,
                )
            await sub.run(show, limit=args.count, idle_timeout=args.timeout, on_refused=refused)

    asyncio.run(listen())
    return 0


def cmd_alerts_listen(args: argparse.Namespace, home: Home) -> int:
    def show(d: Delivery) -> None:
        print(json.dumps(_delivery_json(d, "alert")) if args.json else _alert_line(d), flush=True)

    return _listen(args, home, ["alerts"], show, "alerts")


def cmd_send(args: argparse.Namespace, home: Home) -> int:
    try:
        model = message_model(args.type)
    except KeyError:
        names = ", ".join(sorted(n.rsplit(".", 1)[1] for n in MESSAGE_MODELS))
        raise ConfigError(f"unknown message type {args.type!r}; one of: {names}") from None
    recipients = tuple(check_node_id(r) for r in args.to) if args.to else ()
    directed = bool(recipients) or issubclass(model, Request)
    deadline_in = getattr(args, "deadline_in", None)
    if deadline_in is not None and not (directed and len(recipients) <= 1):
        raise ConfigError("--deadline-in: only a message sent to one addressee (an exchange) has an answer deadline")
    message, deadline = _outgoing(args, home, model, deadline_in)
    sender = args.as_node or message.issuer.node
    identity = home.identity(sender)

    async def send() -> None:
        node = Node(
            _transport(args, home),
            home.trust(),
            identity,
            topic_prefix=args.topic_prefix,
            follow_directory=False,
            clock=home.clock,
        )
        async with node:
            if directed and len(recipients) <= 1:
                # A directed message is an exchange: recorded, with its deadline, followed by 'op7 inbox watch'.
                agent = _agent(home, node, message.issuer)
                published = await agent.send(
                    message,
                    recipients=recipients,
                    seal=getattr(args, "seal", False),
                    deadline=deadline,
                    late=getattr(args, "force", False),
                )
                agent.store.close()
            else:
                published = await node.publish(message, recipients=recipients, seal=getattr(args, "seal", False))
        env, sent = published.envelope, published.sent
        if args.json:
            print(
                json.dumps(
                    {
                        "message_id": env.message_id,
                        "message_type": env.message_type,
                        "case_id": env.case_id,
                        "recipients": list(env.recipients),
                        "sealed": env.sealed is not None,
                        "topic": sent.topic,
                        "partition": sent.partition,
                        "offset": sent.offset,
                        "bytes": len(published.raw),
                    }
                )
            )
        else:
            to = ", ".join(env.recipients) or "all subscribers"
            print(
                f"sent {env.message_type} {env.message_id} as {sender} to {to} via "
                f"{sent.topic}[{sent.partition}]@{sent.offset} ({len(published.raw)} bytes, signed)"
            )

    asyncio.run(send())
    return 0


def _outgoing(
    args: argparse.Namespace, home: Home, model: type[Message], deadline_in: timedelta | None
) -> tuple[Message, datetime | None]:
    """The message of ``args.file`` as of now, checked for sending: refused (InputError naming the file, the field
    and the value) when it is dated ahead of what receivers accept or, unless ``--force``, a deadline is past.
    Returns it with the answer deadline that ``--deadline-in`` sets (written into its ``deadline`` field too, when
    its type has one)."""
    now = home.clock.now()
    message = NativeJsonAdapter(model).translate_file(Path(args.file), now=now).message
    deadline = None
    if deadline_in is not None:
        deadline = message.sent_at + deadline_in
        if "deadline" in model.model_fields:
            message = validate(model, {**message.model_dump(), "deadline": deadline}, args.file)
    problems = outgoing_problems(message, now, max_skew=Freshness().max_skew, late=getattr(args, "force", False))
    if problems:
        raise InputError(args.file, problems)
    return message, deadline


def _agent(home: Home, node: Node, authority: Authority, on_event: EventHook | None = None) -> ExchangeAgent:
    assert node.node_id is not None
    deadlines = DeadlinePolicy.load(home.deadlines_path) if home.deadlines_path.exists() else None
    return ExchangeAgent(
        node, ExchangeStore(home.exchanges_path(node.node_id)), authority, deadlines=deadlines, on_event=on_event
    )


def _me(args: argparse.Namespace) -> str:
    if not args.as_node:
        raise ConfigError("say which node you are with --as NODE_ID (its keys must be in this home)")
    return check_node_id(args.as_node)


def cmd_exchanges(args: argparse.Namespace, home: Home) -> int:
    me = _me(args)
    store = ExchangeStore(home.exchanges_path(me))
    try:
        if args.exchanges_command == "list":
            rows = store.select(case_id=args.case, overdue=args.overdue)
            if args.json:
                print(json.dumps([r.to_json() for r in rows], indent=2))
                return 0
            if not rows:
                print(f"no exchanges{' overdue' if args.overdue else ''} for {me}")
            for r in rows:
                due = f" due {r.deadline:%Y-%m-%dT%H:%MZ}" if r.deadline else ""
                arrow = "->" if r.direction.value == "out" else "<-"
                print(
                    f"{r.message_id}  {arrow} {r.peer:<8} {r.message_type.rsplit('.', 1)[1]:<30} "
                    f"{r.state.value:<13} case {r.case_id or '-'}{due}"
                )
            return 0
        record = store.find(args.id)
        if record is None:
            raise ConfigError(f"no exchange {args.id!r} for {me} (give a message id, or enough of its start)")
        if args.exchanges_command == "close":
            store.move(record.message_id, ExchangeState.CLOSED, args.note or "closed", home.clock.now())
            print(f"closed {record.message_id}")
            return 0
        conversation = store.conversation(record)
        if args.json:
            print(
                json.dumps(
                    [
                        {**r.to_json(), "events": [e.to_json() for e in store.events(r.message_id)]}
                        for r in conversation
                    ],
                    indent=2,
                )
            )
            return 0
        for r in conversation:
            arrow = "->" if r.direction.value == "out" else "<-"
            print(f"{r.message_id} {arrow} {r.peer} {r.message_type} [{r.state.value}] case {r.case_id or '-'}")
            for e in store.events(r.message_id):
                related = f" ({e.related_message_id})" if e.related_message_id else ""
                print(f"    {e.at:%Y-%m-%dT%H:%M:%SZ}  {e.state:<16} {e.detail}{related}")
        return 0
    finally:
        store.close()


def cmd_inbox_watch(args: argparse.Namespace, home: Home) -> int:
    me = _me(args)
    authority = Authority.model_validate(
        {
            "node": me,
            "name": args.agency or me,
            "contact": {"desk": args.desk or f"{me} duty desk", "phone": args.phone or "+10000000000"},
        }
    )

    def show(d: Delivery) -> None:
        if args.json:
            print(json.dumps(_delivery_json(d)), flush=True)
        else:
            env = d.envelope
            print(
                f"{env.created_at:%Y-%m-%dT%H:%M:%SZ} {env.message_type.rsplit('.', 1)[1]} from {env.sender} "
                f"case {env.case_id or '-'} id {env.message_id} (signature verified; receipt sent)",
                flush=True,
            )

    def event(e: ExchangeEvent) -> None:
        if not args.json:
            print(f"  exchange {e.message_id}: {e.state}: {e.detail}", flush=True)

    async def watch() -> None:
        node = _node(args, home, me=me, sign=True, group=me)
        async with node:
            agent = _agent(home, node, authority, on_event=event)
            try:
                if not args.json:
                    print(f"watching the inbox of {me} on {_where(args, home)} (Ctrl-C to stop)", file=sys.stderr)
                await agent.serve(show, idle_timeout=args.timeout, limit=args.count, tick_every=args.tick)
            finally:
                agent.store.close()

    asyncio.run(watch())
    return 0


def cmd_reply(args: argparse.Namespace, home: Home) -> int:
    me = _me(args)
    store = ExchangeStore(home.exchanges_path(me))
    record = store.find(args.id)
    store.close()
    if record is None or record.direction.value != "in":
        raise ConfigError(f"no received exchange {args.id!r} for {me}; see 'op7 exchanges list --as {me}'")
    try:
        model = message_model(args.type)
    except KeyError:
        raise ConfigError(f"unknown message type {args.type!r}") from None
    message, _ = _outgoing(args, home, model, None)

    async def reply() -> None:
        node = _node(args, home, me=me, sign=True, follow=False)
        async with node:
            opened = open_frame(record.frame, node.trust, node.registry, opener=node.opener)
            agent = _agent(home, node, message.issuer)
            published = await agent.reply(opened, message)
            agent.store.close()
        print(
            f"answered {record.message_id} with {published.envelope.message_type} {published.envelope.message_id}"
            f" to {record.peer}"
        )

    asyncio.run(reply())
    return 0


def cmd_quarantine(args: argparse.Namespace, home: Home) -> int:
    me = check_node_id(args.as_node) if args.as_node else None
    name = f"quarantine.{me}" if me else "quarantine"

    async def read() -> list[dict[str, Any]]:
        transport = _transport(args, home)
        entries: list[dict[str, Any]] = []
        async with transport:
            await transport.create_topic(f"{args.topic_prefix}.{name}")
            consumer = transport.consumer([f"{args.topic_prefix}.{name}"], f"op7.quarantine-reader.{uuid.uuid4().hex}")
            async with consumer:
                idle = 0
                while idle < 2:
                    records = await consumer.fetch(timeout=1.0)
                    idle = 0 if records else idle + 1
                    for r in records:
                        try:
                            entries.append(json.loads(r.value))
                        except ValueError:  # not written by op7: shown, not trusted
                            entries.append(
                                {
                                    "reason": "not-an-op7-entry",
                                    "detail": repr(r.value[:80]),
                                    "topic": r.topic,
                                    "partition": r.partition,
                                    "offset": r.offset,
                                    "quarantined_at": "?" * 19,
                                }
                            )
        return entries

    entries = asyncio.run(read())
    if args.quarantine_command == "show":
        if not 1 <= args.number <= len(entries):
            raise ConfigError(f"there are {len(entries)} quarantined record(s); give a number from 1")
        print(json.dumps(entries[args.number - 1], indent=2))
        return 0
    if args.json:
        print(json.dumps(entries, indent=2))
        return 0
    if not entries:
        print(f"nothing in {args.topic_prefix}.{name}")
    for n, e in enumerate(entries, start=1):
        print(
            f"{n:>4}  {e['quarantined_at'][:19]}Z  {e['reason']:<18} {e['topic']}[{e['partition']}]@{e['offset']}  "
            f"{e['detail'][:80]}"
        )
    return 0


#: Retention of each kind of topic: alerts matter for days, directed exchanges until answered and audited.
RETENTION = {
    "alerts": timedelta(days=7),
    "cases": timedelta(days=90),
    "requests": timedelta(days=90),
    "reports": timedelta(days=400),
    "receipts": timedelta(days=90),
    "inbox": timedelta(days=90),
    "quarantine": timedelta(days=400),
}


def cmd_topics_create(args: argparse.Namespace, home: Home) -> int:
    trust = home.trust()
    nodes = [check_node_id(n) for n in args.node]
    if isinstance(trust, DirectoryTrust) and trust.directory is not None:
        nodes += [n.node_id for n in trust.directory.nodes]

    async def create() -> list[str]:
        transport = make_transport(
            args.bootstrap,
            home.embedded_path,
            replication_factor=args.replication_factor,
            min_insync_replicas=args.min_insync_replicas,
        )
        names: list[str] = []
        async with transport:
            registry = default_registry()
            for topic in sorted({registry.topic_of(t) for t in registry.message_types} | {"quarantine"}):
                names.append(f"{args.topic_prefix}.{topic}")
            names.append(f"{args.topic_prefix}.directory")
            for node_id in sorted(set(nodes)):
                names += [f"{args.topic_prefix}.inbox.{node_id}", f"{args.topic_prefix}.quarantine.{node_id}"]
            for name in names:
                kind = name.removeprefix(f"{args.topic_prefix}.").split(".")[0]
                await transport.create_topic(
                    name,
                    partitions=1 if kind == "directory" else args.partitions,
                    compacted=kind == "directory",
                    retention=RETENTION.get(kind),
                )
        return names

    for name in asyncio.run(create()):
        print(f"{name}")
    return 0


def cmd_listen(args: argparse.Namespace, home: Home) -> int:
    registry = default_registry()
    known = sorted({registry.topic_of(t) for t in registry.message_types})
    me = check_node_id(args.as_node) if args.as_node else None
    if me:
        known.append(Node.inbox_of(me))
    topics = [Node.inbox_of(me) if t == "inbox" and me else t for t in args.topic] if args.topic else known
    for topic in topics:
        if topic not in known:
            raise ConfigError(f"unknown topic {topic!r}; one of: {', '.join(known)} (inbox needs --as)")

    def show(d: Delivery) -> None:
        if args.json:
            print(json.dumps(_delivery_json(d)), flush=True)
            return
        env = d.envelope
        to = ",".join(env.recipients) or "all"
        case = f" case {env.case_id}" if env.case_id else ""
        print(
            f"{env.created_at:%Y-%m-%dT%H:%M:%SZ} {env.message_type.rsplit('.', 1)[1]} from {env.sender} to {to}"
            f"{case} [{env.status.value}, TLP:{env.handling.tlp.value}] id {env.message_id} (signature verified)",
            flush=True,
        )

    return _listen(args, home, topics, show, ", ".join(topics))


# --- schemas ------------------------------------------------------------------------------------------


def _schema_root(args: argparse.Namespace) -> Path:
    return Path(args.schemas) if args.schemas else schema_dir()


def cmd_schemas_list(args: argparse.Namespace, home: Home) -> int:
    registry = SchemaRegistry(_schema_root(args))
    rows = [(n, registry.topic_of(n), registry.get(n).fingerprint_hex) for n in registry.message_types]
    if args.json:
        print(json.dumps([{"type": n, "topic": t, "fingerprint": f} for n, t, f in rows], indent=2))
        return 0
    width = max(len(n) for n, _, _ in rows)
    print(f"{'TYPE':<{width}}  {'TOPIC':<9} FINGERPRINT (SHA-256 of the Parsing Canonical Form)")
    for name, topic, fingerprint in rows:
        print(f"{name:<{width}}  {topic:<9} {fingerprint}")
    return 0


def cmd_schemas_show(args: argparse.Namespace, home: Home) -> int:
    registry = SchemaRegistry(_schema_root(args))
    name = args.type
    if name not in registry:
        try:
            name = message_model(name).avro_name
        except KeyError:
            raise ConfigError(f"no schema named {args.type!r}; see 'op7 schemas list'") from None
    schema = registry.get(name)
    if args.canonical:
        print(schema.canonical)
    else:
        print(json.dumps(json.loads(schema.definition), indent=2))
    print(f"fingerprint: {schema.fingerprint_hex}", file=sys.stderr)
    return 0


def cmd_schemas_check(args: argparse.Namespace, home: Home) -> int:
    root = _schema_root(args)
    registry, versions, problems = check_tree(root)
    if not versions:
        print(f"{root}: no released versions under {root / 'released'}; nothing to check against")
        return 0
    if problems:
        for problem in problems:
            print(f"op7: incompatible: {problem}", file=sys.stderr)
        print(
            f"{len(problems)} incompatible change(s) against release(s) {', '.join(versions)}",
            file=sys.stderr,
        )
        return 1
    print(
        f"{len(registry.message_types)} message types in {root} are backward and forward compatible with "
        f"release(s) {', '.join(versions)}"
    )
    return 0


def cmd_schemas_release(args: argparse.Namespace, home: Home) -> int:
    root = _schema_root(args)
    if not re.fullmatch(r"[0-9]+(\.[0-9]+)*", args.version):
        raise ConfigError(f"release version {args.version!r}: use numbers such as 2 or 1.1")
    target = root / "released" / args.version
    if target.exists():
        raise ConfigError(f"{target} already exists: a released version never changes")
    _, versions, problems = check_tree(root)
    if problems:
        raise ConfigError(f"the tree is not compatible with release(s) {', '.join(versions)}; run 'op7 schemas check'")
    target.mkdir(parents=True)
    for source in sorted(root.glob("*.avsc")):
        shutil.copy2(source, target / source.name)
    print(f"released the schemas of {root} as version {args.version} in {target}")
    return 0


# --- demo ---------------------------------------------------------------------------------------------


def cmd_demo(args: argparse.Namespace, home: Home) -> int:
    from .demo import run_demo

    transport = make_transport(args.bootstrap, None)
    result = asyncio.run(run_demo(transport, timeout=args.timeout))
    return 0 if result.ok else 1


# --- plumbing -----------------------------------------------------------------------------------------


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not at least 1")
    return value


def _duration(text: str) -> timedelta:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number of seconds")
    return value


def _version() -> str:
    try:
        return metadata.version("op7-exchange")
    except metadata.PackageNotFoundError:
        return "unknown"


#: Options accepted before or after the command; defaults are filled in by :func:`_apply_defaults`.
_GLOBAL_DEFAULTS = {"home": None, "bootstrap": None, "topic_prefix": None, "verbose": 0}


def _common_options() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--home", type=Path, default=argparse.SUPPRESS, help="state folder (default $OP7_HOME or ~/.op7)"
    )
    common.add_argument(
        "--bootstrap",
        default=argparse.SUPPRESS,
        metavar="HOST:PORT[,...]",
        help="Kafka bootstrap servers (default $OP7_BOOTSTRAP; without it, the embedded transport)",
    )
    common.add_argument(
        "--topic-prefix",
        default=argparse.SUPPRESS,
        metavar="PREFIX",
        help="topic names start with PREFIX. (default $OP7_TOPIC_PREFIX or op7; e.g. op7-exercise)",
    )
    common.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=argparse.SUPPRESS,
        help="more logging on standard error (-vv: with tracebacks)",
    )
    return common


def _apply_defaults(args: argparse.Namespace) -> None:
    for name, default in _GLOBAL_DEFAULTS.items():
        if not hasattr(args, name):
            setattr(args, name, default)
    args.bootstrap = args.bootstrap or os.environ.get("OP7_BOOTSTRAP") or None
    args.topic_prefix = args.topic_prefix or os.environ.get("OP7_TOPIC_PREFIX") or "op7"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="op7",
        description="op7: signed kidnapping alerts and case information between law-enforcement nodes.",
    )
    common = _common_options()
    parser.add_argument("--version", action="version", version=f"op7 {_version()}")
    for action in common._actions:
        parser._add_action(action)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    keys = sub.add_parser("keys", parents=[common], help="signing keys and the trust store").add_subparsers(
        dest="keys_command", required=True, metavar="SUBCOMMAND"
    )
    for name, text in (
        ("new", "create signing and encryption keys for a node id (CC.AGENCY)"),
        ("rotate", "replace a node's keys, keeping the old ones to open old sealed messages"),
    ):
        p = keys.add_parser(name, parents=[common], help=text)
        p.add_argument("node_id")
        if name == "new":
            p.add_argument("--force", action="store_true", help="replace existing keys (they are lost)")
        p.add_argument("--no-trust", action="store_true", help="do not add the public key to the local trust store")
        p.set_defaults(func=cmd_keys_new, command_name=name, force=False)
    p = keys.add_parser("trust", parents=[common], help="trust another node's public key card (.pub file)")
    p.add_argument("file")
    p.set_defaults(func=cmd_keys_trust)
    p = keys.add_parser("list", parents=[common], help="list trusted nodes and key ids")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_keys_list)

    alert = sub.add_parser("alert", parents=[common], help="issue kidnapping alerts").add_subparsers(
        dest="alert_command", required=True, metavar="SUBCOMMAND"
    )
    p = alert.add_parser("send", parents=[common], help="validate, sign and publish an alert from a JSON file")
    p.add_argument("file")
    p.add_argument("--as", dest="as_node", metavar="NODE_ID", help="signing node (default: the alert's issuer.node)")
    p.add_argument("--json", action="store_true", help="print where it was sent as JSON")
    p.set_defaults(func=cmd_alert_send)

    alerts = sub.add_parser("alerts", parents=[common], help="receive kidnapping alerts").add_subparsers(
        dest="alerts_command", required=True, metavar="SUBCOMMAND"
    )
    p = alerts.add_parser("listen", parents=[common], help="print each verified alert as it arrives")
    p.add_argument(
        "--as", dest="as_node", metavar="NODE_ID", help="the listening node: opens what was sealed to it; default group"
    )
    p.add_argument("--group", help="consumer group (default: the --as node id, else op7.cli-listen)")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.add_argument("--count", type=_positive_int, help="exit after this many alerts")
    p.add_argument("--timeout", type=_positive_seconds, help="exit after this many seconds without a new record")
    p.add_argument(
        "--from-now",
        action="store_true",
        help="a new group starts at the end of the topic instead of its beginning",
    )
    p.set_defaults(func=cmd_alerts_listen)

    directory = sub.add_parser(
        "directory", parents=[common], help="the signed network directory (network authorities)"
    ).add_subparsers(dest="directory_command", required=True, metavar="SUBCOMMAND")
    p = directory.add_parser("create", parents=[common], help="version 1 of a network's directory, unsigned")
    p.add_argument("file")
    p.add_argument("--network", required=True, help="network name, e.g. op7 or op7-exercise")
    p.add_argument("--threshold", type=_positive_int, required=True, help="authority signatures a version needs")
    p.add_argument("--authority", action="append", required=True, metavar="CARD.pub", help="an authority's card")
    p = directory.add_parser("add-node", parents=[common], help="add a node from its public key card")
    p.add_argument("file")
    p.add_argument("card", metavar="CARD.pub")
    p.add_argument("--agency", required=True)
    p.add_argument("--role", action="append", required=True, choices=[r.value for r in Role])
    p.add_argument("--allow", action="append", metavar="TYPE", help="a message type it may send (default: all)")
    p = directory.add_parser("remove-node", parents=[common], help="remove a node")
    p.add_argument("file")
    p.add_argument("node_id")
    p = directory.add_parser("rotate-key", parents=[common], help="add a node's new keys; old ones overlap")
    p.add_argument("file")
    p.add_argument("card", metavar="CARD.pub", help="the card with the node's new keys")
    p.add_argument("--overlap", default="7d", help="how long the old keys stay valid (default 7d)")
    p = directory.add_parser("revoke-key", parents=[common], help="revoke a key from a time on")
    p.add_argument("file")
    p.add_argument("node_id")
    p.add_argument("key_id")
    p.add_argument("--reason", required=True)
    p.add_argument("--at", help="from when (ISO 8601 with zone; default now)")
    p = directory.add_parser("sign", parents=[common], help="add an authority's signature")
    p.add_argument("file")
    p.add_argument("--as", dest="as_node", required=True, metavar="NODE_ID", help="the authority's key in this home")
    p = directory.add_parser("anchor", parents=[common], help="install (or write) the network's trust anchor")
    p.add_argument("file")
    p.add_argument("--out", help="write the anchor there instead of installing it in this home")
    for name, text in (
        ("show", "print a directory"),
        ("verify", "check a directory against the anchor or the version held"),
        ("install", "verify and keep as this node's directory"),
        ("publish", "verify, install and publish on the directory topic"),
    ):
        p = directory.add_parser(name, parents=[common], help=text)
        p.add_argument("file")
        if name != "show":
            p.add_argument("--anchor", help="check against this anchor instead of this home's trust")
    for p in directory.choices.values():
        p.set_defaults(func=cmd_directory)

    p = sub.add_parser("send", parents=[common], help="validate, sign and publish any message type from a JSON file")
    p.add_argument("type", help="message type, e.g. MutualLegalAssistanceRequest (see 'op7 schemas list')")
    p.add_argument("file")
    p.add_argument("--as", dest="as_node", metavar="NODE_ID", help="signing node (default: the issuer.node)")
    p.add_argument(
        "--seal",
        action="store_true",
        help="encrypt the content for the recipients only (the header stays readable and signed)",
    )
    p.add_argument(
        "--to",
        action="append",
        metavar="NODE_ID",
        help="addressee (repeatable; default: a request's requested_authority, else everyone)",
    )
    p.add_argument(
        "--deadline-in",
        type=_duration,
        metavar="DURATION",
        help="answer deadline counted from sending, e.g. 6h or 3d (also the request's deadline field, if it has one)",
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="send although a deadline, grant validity or expiry is already past (recorded as sent late)",
    )
    p.add_argument("--json", action="store_true", help="print where it was sent as JSON")
    p.set_defaults(func=cmd_send)

    p = sub.add_parser("listen", parents=[common], help="print every verified message of some topics as it arrives")
    p.add_argument(
        "--topic",
        action="append",
        help="alerts, cases, requests, reports, receipts, or inbox (with --as); default: all",
    )
    p.add_argument(
        "--as", dest="as_node", metavar="NODE_ID", help="the listening node: opens what was sealed to it; default group"
    )
    p.add_argument("--group", help="consumer group (default: the --as node id, else op7.cli-listen)")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.add_argument("--count", type=_positive_int, help="exit after this many messages")
    p.add_argument("--timeout", type=_positive_seconds, help="exit after this many seconds without a new record")
    p.add_argument(
        "--from-now", action="store_true", help="a new group starts at the end of the topics instead of their beginning"
    )
    p.set_defaults(func=cmd_listen)

    exchanges = sub.add_parser(
        "exchanges", parents=[common], help="directed exchanges this node sent or received, with their history"
    ).add_subparsers(dest="exchanges_command", required=True, metavar="SUBCOMMAND")
    p = exchanges.add_parser("list", parents=[common], help="every exchange, or those overdue, or of a case")
    p.add_argument("--overdue", action="store_true")
    p.add_argument("--case")
    p.add_argument("--json", action="store_true")
    p = exchanges.add_parser("show", parents=[common], help="one exchange, its conversation and its history")
    p.add_argument("id", help="message id (or its first characters)")
    p.add_argument("--json", action="store_true")
    p = exchanges.add_parser("close", parents=[common], help="mark an exchange closed")
    p.add_argument("id")
    p.add_argument("--note")
    for p in exchanges.choices.values():
        p.add_argument("--as", dest="as_node", metavar="NODE_ID", help="whose exchanges")
        p.set_defaults(func=cmd_exchanges)

    inbox = sub.add_parser("inbox", parents=[common], help="this node's inbox").add_subparsers(
        dest="inbox_command", required=True, metavar="SUBCOMMAND"
    )
    p = inbox.add_parser(
        "watch", parents=[common], help="receive directed messages: receipts, answers, deadlines, reminders, resends"
    )
    p.add_argument("--as", dest="as_node", metavar="NODE_ID", required=True)
    p.add_argument("--agency", help="your authority's name, in the receipts you sign")
    p.add_argument("--desk", help="your 24/7 desk, in the receipts you sign")
    p.add_argument("--phone", help="your 24/7 desk's E.164 number")
    p.add_argument("--json", action="store_true")
    p.add_argument("--count", type=_positive_int)
    p.add_argument("--timeout", type=_positive_seconds, help="exit after this many seconds without a record")
    p.add_argument("--tick", type=_positive_seconds, default=5.0, help="seconds between deadline and resend checks")
    p.set_defaults(func=cmd_inbox_watch)

    p = sub.add_parser("reply", parents=[common], help="answer a received exchange from a JSON file")
    p.add_argument("id", help="the received message's id (or its first characters)")
    p.add_argument("type")
    p.add_argument("file")
    p.add_argument("--as", dest="as_node", metavar="NODE_ID", required=True)
    p.add_argument("--force", action="store_true", help="send although a validity or expiry in it is already past")
    p.set_defaults(func=cmd_reply)

    quarantine = sub.add_parser("quarantine", parents=[common], help="records this node refused").add_subparsers(
        dest="quarantine_command", required=True, metavar="SUBCOMMAND"
    )
    p = quarantine.add_parser("list", parents=[common], help="every quarantined record, with its reason")
    p.add_argument("--json", action="store_true")
    p = quarantine.add_parser("show", parents=[common], help="one quarantined record, with its bytes")
    p.add_argument("number", type=_positive_int)
    for p in quarantine.choices.values():
        p.add_argument("--as", dest="as_node", metavar="NODE_ID", help="whose quarantine (default: the shared one)")
        p.set_defaults(func=cmd_quarantine)

    topics = sub.add_parser("topics", parents=[common], help="Kafka topics").add_subparsers(
        dest="topics_command", required=True, metavar="SUBCOMMAND"
    )
    p = topics.add_parser(
        "create", parents=[common], help="create the shared topics, and an inbox and quarantine per directory node"
    )
    p.add_argument("--node", action="append", default=[], metavar="NODE_ID", help="also for this node")
    p.add_argument("--partitions", type=_positive_int, default=3)
    p.add_argument("--replication-factor", type=_positive_int, help="default: 3, or fewer brokers")
    p.add_argument("--min-insync-replicas", type=_positive_int, help="default: the broker's")
    p.set_defaults(func=cmd_topics_create)

    schemas = sub.add_parser(
        "schemas", parents=[common], help="the shared schema: list, show, check compatibility"
    ).add_subparsers(dest="schemas_command", required=True, metavar="SUBCOMMAND")
    for name, func, text in (
        ("list", cmd_schemas_list, "message types, their topics and fingerprints"),
        ("show", cmd_schemas_show, "one schema, self-contained"),
        ("check", cmd_schemas_check, "check compatibility with every released version"),
        ("release", cmd_schemas_release, "snapshot the current schemas as a released version"),
    ):
        p = schemas.add_parser(name, parents=[common], help=text)
        p.add_argument("--schemas", metavar="DIR", help="schema tree (default: the installed one)")
        p.set_defaults(func=func)
        if name == "list":
            p.add_argument("--json", action="store_true")
        if name == "show":
            p.add_argument("type")
            p.add_argument("--canonical", action="store_true", help="print the Parsing Canonical Form")
        if name == "release":
            p.add_argument("version")

    p = sub.add_parser(
        "demo", parents=[common], help="two national nodes and an operations centre exchange an alert lifecycle"
    )
    p.add_argument(
        "--timeout", type=_positive_seconds, default=60.0, help="seconds to wait for deliveries (default 60)"
    )
    p.set_defaults(func=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _apply_defaults(args)
    level = (logging.WARNING, logging.INFO, logging.DEBUG)[min(args.verbose, 2)]
    logging.basicConfig(level=level, format="op7: %(levelname)s %(name)s: %(message)s")
    if args.verbose < 2:
        logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
        # Refusals are reported by the commands themselves; the node logs them for servers.
        logging.getLogger("op7.node").setLevel(max(level, logging.ERROR))
    home = Home.from_env(args.home)
    try:
        return int(args.func(args, home))
    except InputError as exc:
        for line in str(exc).splitlines():
            print(f"op7: error: {line}", file=sys.stderr)
        return 1
    except HandlerError as exc:
        print(f"op7: error: {exc}", file=sys.stderr)
        return 1
    except Op7Error as exc:
        hint = " (is Kafka running? scripts/kafka start)" if exc.retriable and args.bootstrap else ""
        print(f"op7: error: {exc}{hint}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("op7: interrupted", file=sys.stderr)
        return 130
    except OSError as exc:
        print(f"op7: error: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:
        # A defect, not a user mistake: one line, the traceback only on request.
        if args.verbose >= 2:
            raise
        print(f"op7: internal error: {exc.__class__.__name__}: {exc} (run with -vv for the traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
