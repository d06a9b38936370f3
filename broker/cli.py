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
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from adapters.native_json import NativeJsonAdapter

from .compat import check_tree
from .config import Home
from .directory import PublicKeyCard, check_node_id
from .errors import ConfigError, HandlerError, InputError, Op7Error
from .models import MESSAGE_MODELS, KidnappingAlert, message_model
from .node import Delivery, Handler, Node
from .schemas import SchemaRegistry, default_registry, schema_dir
from .transport import Record, Transport, make_transport

__all__ = ["main"]

log = logging.getLogger("op7.cli")


def _transport(args: argparse.Namespace, home: Home) -> Transport:
    return make_transport(args.bootstrap, home.embedded_path)


def _where(args: argparse.Namespace, home: Home) -> str:
    return f"Kafka at {args.bootstrap}" if args.bootstrap else f"embedded transport {home.embedded_path}"


# --- keys ---------------------------------------------------------------------------------------------


def cmd_keys_new(args: argparse.Namespace, home: Home) -> int:
    node_id = check_node_id(args.node_id)
    key, key_path, card_path = home.new_key(node_id, overwrite=args.force)
    if not args.no_trust:
        trust = home.trust()
        trust.add(node_id, key.public)
        trust.save(home.trust_path)
    print(f"created signing key for {node_id} (Ed25519, key id {key.public.key_id.hex()})")
    print(f"  private key: {key_path} (mode 0600; never share it)")
    print(f"  public key:  {card_path} (give this to the operators of other nodes)")
    if not args.no_trust:
        print(f"  trusted in:  {home.trust_path}")
    return 0


def cmd_keys_trust(args: argparse.Namespace, home: Home) -> int:
    card = PublicKeyCard.load(Path(args.file))
    trust = home.trust()
    trust.add(card.node, card.key)
    trust.save(home.trust_path)
    print(f"trusted {card.node} key {card.key.key_id.hex()} in {home.trust_path}")
    return 0


def cmd_keys_list(args: argparse.Namespace, home: Home) -> int:
    trust = home.trust()
    rows = [(node, key.key_id.hex()) for node, keys in trust.nodes() for key in keys]
    if args.json:
        print(json.dumps([{"node": n, "key_id": k} for n, k in rows], indent=2))
        return 0
    if not rows:
        print(f"the trust store {home.trust_path} is empty")
    for node, key_id in rows:
        mine = " (private key here)" if home.key_path(node).exists() else ""
        print(f"{node:<16} {key_id}{mine}")
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
    return {
        "envelope": d.envelope.model_dump(mode="json"),
        key: d.message.model_dump(mode="json"),
        "verified": True,
        "topic": d.record.topic,
        "partition": d.record.partition,
        "offset": d.record.offset,
    }


def _listen(args: argparse.Namespace, home: Home, topics: list[str], show: Handler, what: str) -> int:
    """Print verified messages of ``topics`` with ``show``; refusals go to standard error."""
    trust = home.trust()
    if not list(trust.nodes()):
        raise ConfigError(
            f"the trust store {home.trust_path} is empty: nothing could verify; "
            "add senders with 'op7 keys trust FILE.pub'"
        )
    group = args.group or "op7.cli-listen"

    def refused(record: Record, error: Op7Error) -> None:
        print(
            f"op7: refused {record.topic}[{record.partition}]@{record.offset}: {error} (quarantined)",
            file=sys.stderr,
            flush=True,
        )

    async def listen() -> None:
        node = Node(_transport(args, home), trust, topic_prefix=args.topic_prefix)
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
    message = NativeJsonAdapter(model).translate_file(Path(args.file)).message
    sender = args.as_node or message.issuer.node
    identity = home.identity(sender)
    recipients = tuple(check_node_id(r) for r in args.to) if args.to else ()

    async def send() -> None:
        async with Node(_transport(args, home), home.trust(), identity, topic_prefix=args.topic_prefix) as node:
            published = await node.publish(message, recipients=recipients)
        env, sent = published.envelope, published.sent
        if args.json:
            print(
                json.dumps(
                    {
                        "message_id": env.message_id,
                        "message_type": env.message_type,
                        "case_id": env.case_id,
                        "recipients": list(env.recipients),
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


def cmd_listen(args: argparse.Namespace, home: Home) -> int:
    registry = default_registry()
    known = sorted({registry.topic_of(t) for t in registry.message_types})
    topics = args.topic or known
    for topic in topics:
        if topic not in known:
            raise ConfigError(f"unknown topic {topic!r}; one of: {', '.join(known)}")

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
    p = keys.add_parser("new", parents=[common], help="create a signing key for a node id (CC.AGENCY) and trust it")
    p.add_argument("node_id")
    p.add_argument("--force", action="store_true", help="replace an existing key")
    p.add_argument("--no-trust", action="store_true", help="do not add the public key to the trust store")
    p.set_defaults(func=cmd_keys_new)
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
    p.add_argument("--group", help="consumer group, usually your node id (default op7.cli-listen)")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.add_argument("--count", type=_positive_int, help="exit after this many alerts")
    p.add_argument("--timeout", type=_positive_seconds, help="exit after this many seconds without a new record")
    p.add_argument(
        "--from-now",
        action="store_true",
        help="a new group starts at the end of the topic instead of its beginning",
    )
    p.set_defaults(func=cmd_alerts_listen)

    p = sub.add_parser("send", parents=[common], help="validate, sign and publish any message type from a JSON file")
    p.add_argument("type", help="message type, e.g. MutualLegalAssistanceRequest (see 'op7 schemas list')")
    p.add_argument("file")
    p.add_argument("--as", dest="as_node", metavar="NODE_ID", help="signing node (default: the issuer.node)")
    p.add_argument(
        "--to",
        action="append",
        metavar="NODE_ID",
        help="addressee (repeatable; default: a request's requested_authority, else everyone)",
    )
    p.add_argument("--json", action="store_true", help="print where it was sent as JSON")
    p.set_defaults(func=cmd_send)

    p = sub.add_parser("listen", parents=[common], help="print every verified message of some topics as it arrives")
    p.add_argument("--topic", action="append", help="alerts, cases, requests, reports or receipts (default: all)")
    p.add_argument("--group", help="consumer group, usually your node id (default op7.cli-listen)")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.add_argument("--count", type=_positive_int, help="exit after this many messages")
    p.add_argument("--timeout", type=_positive_seconds, help="exit after this many seconds without a new record")
    p.add_argument(
        "--from-now", action="store_true", help="a new group starts at the end of the topics instead of their beginning"
    )
    p.set_defaults(func=cmd_listen)

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
