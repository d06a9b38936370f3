"""``op7 adapter``: the adapters installed, a dry run of one, and an adapter run between a local system and op7.

Offered to ``op7`` through the ``op7.commands`` entry point (op7's own code never imports the adapters).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import secrets
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import click
import httpx
import uvicorn

from adapters.base import COMMON_SETTINGS, Adapter, InboundAdapter, OutboundAdapter, Translation, read_file
from adapters.config import RunConfig, load
from adapters.delivering import Deliverer, Webhook
from adapters.folder import FileDone, FolderWatch
from adapters.ledger import Ledger
from adapters.sending import Sender
from adapters.webhook import inbound_app
from broker.cli._click import argument
from broker.cli._common import Env, command, echo_json, global_options, make_node, new_group, pass_env, where
from broker.cli._consuming import Reporter
from broker.cli._issuer import issuer_setting
from broker.errors import ConfigError, InputError
from broker.models import MESSAGE_MODELS, Message, check_node_id, message_model
from broker.plugins import ADAPTER_GROUP, adapter_names, load_adapter

__all__ = ["adapter"]

log = logging.getLogger("op7.adapter")

adapter = new_group("adapter", "translate local records to and from the shared schema")


def adapter_class(name: str) -> type[Adapter]:
    found = load_adapter(name)
    if not (isinstance(found, type) and issubclass(found, Adapter)):
        raise ConfigError(f"adapter {name!r} is not built on adapters.base.Adapter")
    return found


def _model(cls: type[Adapter], type_name: str | None) -> type[Message] | None:
    if type_name is not None:
        try:
            return message_model(type_name)
        except KeyError:
            names = ", ".join(sorted(n.rsplit(".", 1)[1] for n in MESSAGE_MODELS))
            raise ConfigError(f"unknown message type {type_name!r}; one of: {names}") from None
    if len(cls.message_types) == 1:
        return MESSAGE_MODELS[cls.message_types[0]]
    return None


def settings_for(env: Env, cls: type[Adapter], given: dict[str, Any], node_id: str | None) -> dict[str, Any]:
    """``given``, with the issuer filled from the network directory's entry of ``node_id`` when the adapter reads
    one and it is not given."""
    settings = dict(given)
    if "issuer" in cls.setting_names and "issuer" not in settings and node_id is not None:
        issuer = issuer_setting(env.home.trust(), node_id)
        if issuer is not None:
            settings["issuer"] = issuer
    return settings


def _parse_set(values: tuple[str, ...]) -> dict[str, Any]:
    settings: dict[str, Any] = {}
    for item in values:
        key, eq, value = item.partition("=")
        if not eq or not key:
            raise ConfigError(f"--set {item!r}: KEY=VALUE")
        try:
            settings[key] = json.loads(value)
        except json.JSONDecodeError:
            settings[key] = value
    return settings


@command(adapter, "list", "the adapters installed: their names, directions and message types")
@click.option("--json", "as_json", is_flag=True, help="as a JSON list")
@global_options
@pass_env
def adapter_list(env: Env, as_json: bool) -> int:
    rows = []
    for name in adapter_names():
        cls = adapter_class(name)
        types = [t.rsplit(".", 1)[1] for t in cls.message_types]
        rows.append(
            {
                "name": name,
                "directions": list(cls.directions()),
                "message_types": types if len(types) < len(MESSAGE_MODELS) else ["all"],
                "settings": list(cls.setting_names),
                "summary": cls.summary,
            }
        )
    if as_json:
        echo_json(rows, indent=2)
        return 0
    if not rows:
        click.echo(f"no adapters installed (no {ADAPTER_GROUP} entry points)")
    for row in rows:
        click.echo(f"{row['name']:<8} {'+'.join(row['directions']):<17} {', '.join(row['message_types'])}")
        click.echo(f"         {row['summary']}")
        if row["settings"]:
            click.echo(f"         settings: {', '.join(row['settings'])}")
    return 0


@command(adapter, "translate", "a dry run: translate a local file and print the shared message(s) and what was lost")
@argument("name", "the adapter (see 'op7 adapter list')")
@argument("file", "the local record(s); with --outbound, a message in op7's JSON form")
@click.option("--type", "type_name", metavar="TYPE", help="the message type, for adapters that read several")
@click.option("--config", "config_file", type=click.Path(path_type=Path), help="take [settings] from this run file")
@click.option("--set", "assignments", multiple=True, metavar="KEY=VALUE", help="an adapter setting (repeatable)")
@click.option("--as", "as_node", metavar="NODE_ID", help="the sending node (its directory entry is the issuer)")
@click.option("--outbound", is_flag=True, help="the other way: render an op7 JSON message as a local record")
@click.option("--json", "as_json", is_flag=True, help="one JSON object per record on standard output")
@global_options
@pass_env
def adapter_translate(
    env: Env,
    name: str,
    file: str,
    type_name: str | None,
    config_file: Path | None,
    assignments: tuple[str, ...],
    as_node: str | None,
    outbound: bool,
    as_json: bool,
) -> int:
    cls = adapter_class(name)
    given = load(config_file).settings if config_file is not None else {}
    node_id = check_node_id(as_node) if as_node else None
    settings = settings_for(env, cls, {**given, **_parse_set(assignments)}, node_id)
    if outbound:
        return _render(env, cls, settings, Path(file), type_name, as_json)
    if not issubclass(cls, InboundAdapter):
        raise ConfigError(f"adapter {name!r} only writes local records: add --outbound")
    reader = cls(_model(cls, type_name), settings)
    data = read_file(Path(file))
    failed = 0
    for result in reader.translate_all(data, file, now=env.home.clock.now()):
        if isinstance(result, InputError):
            failed += 1
            if as_json:
                echo_json({"refused": {"source": result.source, "problems": [str(p) for p in result.problems]}})
            for problem in result.problems:
                click.echo(f"op7: {result.source}: {problem}", err=True)
            continue
        _show(result, as_json)
    return 1 if failed else 0


def _show(result: Translation[Message], as_json: bool) -> None:
    message = result.message.model_dump(mode="json")
    if as_json:
        echo_json({"message_type": result.message.avro_name, "message": message, **result.report()})
        return
    click.echo(f"# {result.source}: {result.message.avro_name} (nothing sent)")
    click.echo(json.dumps(message, indent=2, ensure_ascii=False))
    if result.lost:
        click.echo(f"# {len(result.lost)} field(s) not carried:")
        for item in result.lost:
            click.echo(f"#   {item}")
    else:
        click.echo("# every field carried")


def _render(
    env: Env, cls: type[Adapter], settings: dict[str, Any], file: Path, type_name: str | None, as_json: bool
) -> int:
    if not issubclass(cls, OutboundAdapter):
        raise ConfigError(f"adapter {cls.name!r} only reads local records")
    json_reader = adapter_class("json")
    if not issubclass(json_reader, InboundAdapter):
        raise ConfigError("the json adapter does not read")
    model = _model(json_reader, type_name) if type_name else _model(cls, None)
    if model is None:
        raise ConfigError("say which message type the file holds with --type")
    message = json_reader(model).translate(read_file(file), str(file), now=env.home.clock.now()).message
    rendered = cls(None, settings).render(
        message, message_id="00000000-0000-0000-0000-000000000000", sender=message.issuer.node
    )
    if as_json:
        echo_json(
            {
                "media_type": rendered.media_type,
                "data": rendered.data.decode(errors="replace"),
                "lost": [i.as_dict() for i in rendered.lost],
            }
        )
        return 0
    sys.stdout.buffer.write(rendered.data)
    for item in rendered.lost:
        click.echo(f"op7: not carried: {item}", err=True)
    return 0


@command(adapter, "token", "a new bearer token for a webhook client, and the line its configuration takes")
@argument("client", "the client's name (a local system)")
@global_options
@pass_env
def adapter_token(env: Env, client: str) -> int:
    token = secrets.token_urlsafe(32)
    click.echo(f"token (give it to {client}; it is not kept anywhere): {token}")
    click.echo("configuration ([[inbound.webhook.clients]]):")
    click.echo(f'  name = "{client}"\n  token_sha256 = "{hashlib.sha256(token.encode()).hexdigest()}"')
    return 0


@command(adapter, "losses", "the loss report kept under a message id by an adapter run")
@argument("message_id", "the message id")
@argument("name", "the adapter")
@click.option("--as", "as_node", metavar="NODE_ID", required=True, help="the node the adapter ran as")
@global_options
@pass_env
def adapter_losses(env: Env, message_id: str, name: str, as_node: str) -> int:
    ledger = Ledger(ledger_path(env, check_node_id(as_node), name))
    try:
        report = ledger.report(message_id)
    finally:
        ledger.close()
    if report is None:
        raise ConfigError(f"no record of {message_id} in {ledger.path}")
    echo_json(report, indent=2)
    return 0


@command(adapter, "deliveries", "what an adapter run handed to the local system, and what it could not")
@argument("name", "the adapter")
@click.option("--as", "as_node", metavar="NODE_ID", required=True, help="the node the adapter ran as")
@click.option("--failed", is_flag=True, help="only the deliveries that failed for good")
@click.option("--json", "as_json", is_flag=True, help="as a JSON list")
@global_options
@pass_env
def adapter_deliveries(env: Env, name: str, as_node: str, failed: bool, as_json: bool) -> int:
    ledger = Ledger(ledger_path(env, check_node_id(as_node), name))
    try:
        rows = ledger.deliveries(only_failed=failed)
    finally:
        ledger.close()
    if as_json:
        echo_json(rows, indent=2)
        return 0
    for row in rows:
        error = f" ({row['last_error']})" if row["last_error"] else ""
        tries = f"{row['attempts']} attempt(s)"
        click.echo(f"{row['at']} {row['state']:<12} {row['message_id']} -> {row['target']}, {tries}{error}")
    if not rows:
        click.echo("no deliveries" + (" failed" if failed else ""))
    return 0


@command(adapter, "redeliver", "send again the deliveries to the local system's webhook that failed for good")
@argument("name", "the adapter")
@click.option("--config", "config_file", type=click.Path(path_type=Path), required=True, help="the run's TOML file")
@global_options
@pass_env
def adapter_redeliver(env: Env, name: str, config_file: Path) -> int:
    config = load(config_file)
    if config.outbound is None or config.outbound.webhook is None:
        raise ConfigError(f"{config_file}: no [outbound.webhook]: nothing is delivered to redeliver")
    hook = config.outbound.webhook
    ledger = Ledger(ledger_path(env, check_node_id(config.node), name))

    async def again() -> list[tuple[str, str | None]]:
        async with httpx.AsyncClient() as client:
            return await Webhook(hook, ledger, env.home.clock, client).redeliver()

    try:
        outcomes = asyncio.run(again())
    finally:
        ledger.close()
    for message_id, state in outcomes:
        click.echo(f"{message_id}: {state}")
    if not outcomes:
        click.echo(f"no failed delivery to {hook.url}")
    return 1 if any(state != "delivered" for _, state in outcomes) else 0


def ledger_path(env: Env, node_id: str, name: str) -> Path:
    """The ledger of adapter ``name`` run as ``node_id`` on this home's network (beside its outbox: the frames it
    keeps belong to that network)."""
    return env.home.state_dir() / f"adapter-{node_id}-{name}.db"


@command(adapter, "run", "run an adapter: read a folder and/or a webhook and send; write received messages back")
@argument("name", "the adapter (see 'op7 adapter list')")
@click.option("--config", "config_file", type=click.Path(path_type=Path), required=True, help="the run's TOML file")
@click.option("--once", is_flag=True, help="deal with the files waiting in the inbound folder, then stop")
@click.option(
    "--dry-run",
    is_flag=True,
    help="show what the files waiting in the inbound folder would send; send and move nothing",
)
@click.option("--json", "as_json", is_flag=True, help="one JSON line per file dealt with")
@global_options
@pass_env
def adapter_run(env: Env, name: str, config_file: Path, once: bool, dry_run: bool, as_json: bool) -> int:
    config = load(config_file)
    node_id = check_node_id(config.node)
    cls = adapter_class(name)
    settings = settings_for(env, cls, config.settings, node_id)
    model = _model(cls, config.type)
    reader = _side(cls, InboundAdapter, model, settings) if config.inbound else None
    writer = _side(cls, OutboundAdapter, model, settings) if config.outbound else None
    if dry_run:
        return _dry_run(env, config, reader, as_json)
    failures = asyncio.run(_run(env, name, config, node_id, reader, writer, once, as_json))
    return 1 if failures else 0


def _dry_run(env: Env, config: RunConfig, reader: InboundAdapter[Message] | None, as_json: bool) -> int:
    """What the files waiting in the inbound folder would send, record by record, with their losses."""
    if reader is None or config.inbound is None or config.inbound.folder is None:
        raise ConfigError("--dry-run reads the inbound folder: the configuration has no [inbound.folder]")
    folder = config.inbound.folder.path
    failed = 0
    waiting = FolderWatch.waiting_in(folder)
    for path in waiting:
        for result in reader.translate_all(read_file(path), path.name, now=env.home.clock.now()):
            if isinstance(result, InputError):
                failed += 1
                for problem in result.problems:
                    click.echo(f"op7: {result.source}: {problem}", err=True)
            else:
                _show(result, as_json)
    if not waiting:
        click.echo(f"no files wait in {folder}", err=True)
    return 1 if failed else 0


def _side(cls: type[Adapter], side: type, model: type[Message] | None, settings: dict[str, Any]) -> Any:
    if not issubclass(cls, side):
        raise ConfigError(f"adapter {cls.name!r} has no {side.__name__.removesuffix('Adapter').lower()} side")
    return cls(model, settings)


async def _run(
    env: Env,
    name: str,
    config: RunConfig,
    node_id: str,
    reader: InboundAdapter[Message] | None,
    writer: OutboundAdapter | None,
    once: bool,
    as_json: bool,
) -> int:
    failures = 0

    def report(done: FileDone) -> None:
        nonlocal failures
        failures += bool(done.problems)
        if as_json:
            echo_json(done.as_dict())
            return
        states = ", ".join(f"{o.message_id} {o.state}" for o in done.outcomes) or "nothing sent"
        click.echo(f"{done.path}: {states}" + (f"; {len(done.problems)} record(s) refused" if done.problems else ""))

    group = config.outbound.group if config.outbound and config.outbound.group else f"{node_id}.adapter-{name}"
    node = make_node(env, me=node_id, sign=True, group=group)
    ledger = Ledger(ledger_path(env, node_id, name))
    stop = asyncio.Event()
    try:
        async with node:
            sender = Sender(node, ledger)
            again = await sender.recover()
            if again:
                log.info("%d record(s) a crash left unsent were sent again", again)
            inbound = config.inbound
            folder = (
                FolderWatch(inbound.folder.path, reader, sender, node.clock)
                if inbound and inbound.folder and reader
                else None
            )
            if once:
                if folder is None:
                    raise ConfigError("--once reads the inbound folder: the configuration has no [inbound.folder]")
                for done in await folder.once():
                    report(done)
                return failures
            async with contextlib.AsyncExitStack() as stack:
                tasks: list[Coroutine[Any, Any, Any]] = []
                if folder is not None and inbound is not None and inbound.folder is not None:
                    tasks.append(folder.run(inbound.folder.poll, stop, on_file=report))
                if inbound is not None and inbound.webhook is not None and reader is not None:
                    readers = webhook_readers(env, name, reader, inbound.webhook.clients, config.settings, node_id)
                    tasks.append(_serve(inbound.webhook, readers, sender, node))
                if config.outbound is not None and writer is not None:
                    out = config.outbound
                    topics = [node.inbox_of(node_id) if t == "inbox" else t for t in out.topics]
                    hook = None
                    if out.webhook is not None:  # its key is read now: a missing one is refused before anything
                        client = await stack.enter_async_context(httpx.AsyncClient())
                        hook = Webhook(out.webhook, ledger, node.clock, client)
                    deliver = Deliverer(writer, ledger, node.clock, out.folder.path if out.folder else None, hook)
                    sub = await stack.enter_async_context(node.subscribe(group, topics))
                    tasks.append(sub.run(deliver, on_refused=Reporter(where(env), as_json).refused))
                click.echo(f"adapter {name} running as {node_id} on {where(env)} (Ctrl-C to stop)", err=True)
                await asyncio.gather(*tasks)
    finally:
        ledger.close()
    return failures


def webhook_readers(
    env: Env,
    name: str,
    reader: InboundAdapter[Message],
    clients: tuple[Any, ...],
    settings: dict[str, Any],
    node_id: str,
) -> dict[str, InboundAdapter[Message]]:
    """The adapters the webhook reads bodies with: this run's, each client's JSON format, and CAP for XML; the others
    get this run's common settings (issuer, handling, status). Built before anything runs: a bad one fails now."""
    readers: dict[str, InboundAdapter[Message]] = {name: reader}
    for fmt in {*(c.json_format for c in clients), "cap"} - {name}:
        cls = adapter_class(fmt)
        common = {k: v for k, v in settings.items() if k in COMMON_SETTINGS and k in cls.setting_names}
        readers[fmt] = _side(cls, InboundAdapter, _model(cls, None), settings_for(env, cls, common, node_id))
    return readers


async def _serve(hook: Any, readers: dict[str, InboundAdapter[Message]], sender: Sender, node: Any) -> None:
    app = inbound_app(readers, hook.clients, sender, node.clock, max_bytes=hook.max_bytes)

    async def settling() -> None:  # records that waited in the outbox are marked sent once delivered
        while True:
            await asyncio.sleep(2)
            sender.settle()

    settle = asyncio.create_task(settling())
    host, port = hook.address
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="off"))
    click.echo(f"webhook listening on http://{host}:{port}/v1/records", err=True)
    try:
        await server.serve()
    finally:
        settle.cancel()
