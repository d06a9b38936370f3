"""What the commands share: the global options, the settings and home they run with, the node and transport built
from them, and output (JSON, and Rich tables that stay plain text when standard output is not a terminal)."""

from __future__ import annotations

import functools
import json
import logging
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

import click
from rich.console import Console
from rich.table import Table

from broker.cli._click import Op7Command, Op7Group
from broker.config import Home, Settings
from broker.errors import ConfigError
from broker.models import Authority, check_node_id
from broker.node.deadlines import DeadlinePolicy
from broker.node.exchange import EventHook, ExchangeAgent
from broker.node.exchange_store import ExchangeStore
from broker.node.node import Delivery, Node
from broker.node.outbox import Outbox
from broker.node.sequence import SenderSequence
from broker.transport import Transport
from broker.trust.replay import ReplayGuard
from broker.wire.trust import Trust

__all__ = [
    "Env",
    "Globals",
    "agent",
    "command",
    "delivery_json",
    "echo_json",
    "global_options",
    "make_node",
    "me",
    "new_group",
    "pass_env",
    "show_table",
    "table",
    "transport",
    "where",
]

P = ParamSpec("P")
F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class Env:
    """What a command runs with: the effective settings (options over ``OP7_*`` variables) and the home."""

    settings: Settings
    home: Home
    verbose: int

    @property
    def bootstrap(self) -> str | None:
        return self.settings.bootstrap

    @property
    def topic_prefix(self) -> str:
        return self.settings.topic_prefix


@dataclass
class Globals:
    """The global options as given, before or after any command word (the last one given counts)."""

    home: Path | None = None
    bootstrap: str | None = None
    topic_prefix: str | None = None
    verbose: int = 0
    env: Env | None = None

    def options(self) -> dict[str, Any]:
        """The settings the command line gives (empty ones count as not given, as ever)."""
        return {"home": self.home, "bootstrap": self.bootstrap or None, "topic_prefix": self.topic_prefix or None}

    def finish(self) -> Env:
        """Settle the settings, start logging at the chosen verbosity and open the home (once)."""
        if self.env is None:
            _start_logging(self.verbose)
            settings = Settings.load(**self.options())
            self.env = Env(settings, Home(settings.home, settings=settings), self.verbose)
        return self.env


def _start_logging(verbose: int) -> None:
    level = (logging.WARNING, logging.INFO, logging.DEBUG)[min(verbose, 2)]
    logging.basicConfig(level=level, format="op7: %(levelname)s %(name)s: %(message)s")
    if verbose < 2:
        logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
        # Refusals are reported by the commands themselves; the node logs them for servers.
        logging.getLogger("op7.node").setLevel(max(level, logging.ERROR))


def _remember(ctx: click.Context, param: click.Parameter, value: Any) -> None:
    if value is not None and value != 0 and param.name is not None:
        setattr(ctx.ensure_object(Globals), param.name, value)


#: The global options: accepted by ``op7`` and by every command and group under it (argparse's common parent).
_GLOBAL_OPTIONS: tuple[tuple[tuple[str, ...], dict[str, Any]], ...] = (
    (
        ("--home",),
        {"type": click.Path(path_type=Path), "metavar": "HOME", "help": "state folder (default $OP7_HOME or ~/.op7)"},
    ),
    (
        ("--bootstrap",),
        {
            "metavar": "HOST:PORT[,...]",
            "help": "Kafka bootstrap servers (default $OP7_BOOTSTRAP; without it, the embedded transport)",
        },
    ),
    (
        ("--topic-prefix",),
        {
            "metavar": "PREFIX",
            "help": "topic names start with PREFIX. (default $OP7_TOPIC_PREFIX or op7; e.g. op7-exercise)",
        },
    ),
    (("-v", "--verbose"), {"count": True, "help": "more logging on standard error (-vv: with tracebacks)"}),
)


def global_options(f: F) -> F:
    """Add ``--home``, ``--bootstrap``, ``--topic-prefix`` and ``-v``; given values land in :class:`Globals`."""
    for decls, attrs in reversed(_GLOBAL_OPTIONS):
        f = click.option(*decls, expose_value=False, callback=_remember, **attrs)(f)
    return f


def pass_env(f: Callable[Concatenate[Env, P], int | None]) -> Callable[P, int]:
    """The command receives the :class:`Env` first; its return value is the exit code."""

    @functools.wraps(f)
    def run(*args: P.args, **kwargs: P.kwargs) -> int:
        env = click.get_current_context().ensure_object(Globals).finish()
        return int(f(env, *args, **kwargs) or 0)

    return run


# --- transport and node -------------------------------------------------------------------------------


def transport(env: Env) -> Transport:
    return env.settings.transport(env.home.embedded_path, clock=env.home.clock)


def make_node(
    env: Env,
    *,
    me: str | None = None,
    sign: bool = False,
    group: str | None = None,
    follow: bool = True,
    trust: Trust | None = None,
) -> Node:
    """A node as the CLI runs it: this home's trust, and, for a node id, its keys (to sign, to open what is sealed
    to it), the replay store of a node reading (the node's, whichever its group, so that every group and process of
    the home hands a message over once; a reader without a node id has one per ``group``), and the directory versions
    it follows."""
    home = env.home
    signs = bool(sign and me)
    return Node(
        transport(env),
        trust or home.trust(),
        home.identity(me) if signs and me else None,
        topic_prefix=env.topic_prefix,
        opener=home.opener(me) if me else None,
        replay_guard=ReplayGuard(home.replay_path(me or group)) if group else None,
        follow_directory=follow,
        directory_dir=home.directory_dir if follow and home.uses_directory() else None,
        clock=home.clock,
        outbox=Outbox(home.outbox_path(me)) if signs and me else None,
        sequence=SenderSequence(me, home.sequence_path(me)) if signs and me else None,
    )


def where(env: Env) -> str:
    return f"Kafka at {env.bootstrap}" if env.bootstrap else f"embedded transport {env.home.embedded_path}"


def me(as_node: str | None) -> str:
    """The node id of ``--as``, required."""
    if not as_node:
        raise ConfigError("say which node you are with --as NODE_ID (its keys must be in this home)")
    return check_node_id(as_node)


async def agent(home: Home, node: Node, authority: Authority, on_event: EventHook | None = None) -> ExchangeAgent:
    """The exchange agent of ``node`` (started): its exchange store in this home, this network's deadlines if set.
    The store is this network's only if the cluster reached is the one it was kept about (:meth:`Home.bind_cluster`).
    """
    assert node.node_id is not None
    cluster_id = await node.transport.cluster_id()
    if cluster_id is not None:
        home.bind_cluster(cluster_id)
    deadlines = DeadlinePolicy.load(home.deadlines_path) if home.deadlines_path.exists() else None
    return ExchangeAgent(
        node, ExchangeStore(home.exchanges_path(node.node_id)), authority, deadlines=deadlines, on_event=on_event
    )


# --- output -------------------------------------------------------------------------------------------


def echo_json(value: Any, *, indent: int | None = None) -> None:
    click.echo(json.dumps(value, indent=indent))


def delivery_json(d: Delivery, key: str = "message") -> dict[str, Any]:
    # A forwarded sealed original's content key stays out of logs and terminals.
    return {
        "envelope": d.envelope.model_dump(mode="json"),
        key: d.message.model_dump(mode="json", exclude={"original_content_key"}),
        "verified": True,
        "topic": d.record.topic,
        "partition": d.record.partition,
        "offset": d.record.offset,
    }


def table(*columns: str) -> Table:
    """A table for people: no borders, a bold header on a terminal, two spaces between columns."""
    grid = Table(box=None, header_style="bold", pad_edge=False, show_edge=False)
    for column in columns:
        grid.add_column(column, overflow="fold")
    return grid


def show_table(grid: Table, rows: Sequence[Sequence[str]] = (), *, whole: Sequence[int] = ()) -> None:
    """Print ``grid`` (with ``rows`` added) on standard output, nothing if it has no rows. On a terminal Rich fits it
    to the width, folding long cells except in the ``whole`` columns (identifiers one copies); otherwise (a pipe, a
    file, a test) it is plain text: no colour, no markup, no wrapping, no trailing blanks."""
    for row in rows:
        grid.add_row(*row)
    if not grid.rows:
        return
    for index in whole:
        column = grid.columns[index]
        column.no_wrap = True
        column.min_width = max(len(str(cell)) for cell in column.cells)
    tty = sys.stdout.isatty()
    console = Console(
        file=sys.stdout,
        force_terminal=tty,
        no_color=not tty,
        markup=False,
        highlight=False,
        emoji=False,
        width=None if tty else 100_000,
    )
    if tty:
        console.print(grid)
        return
    with console.capture() as captured:
        console.print(grid)
    for line in captured.get().splitlines():
        click.echo(line.rstrip())


# --- command definitions ------------------------------------------------------------------------------


def new_group(name: str, text: str) -> Op7Group:
    """A command group taking the global options; without a command word under it, a usage error (exit 2)."""

    @click.group(name, cls=Op7Group, help=text, short_help=text, no_args_is_help=False)
    @global_options
    def group() -> None:
        pass

    return group


def command(parent: click.Group | None, name: str, text: str) -> Callable[[Callable[..., Any]], click.Command]:
    """Define the command ``name`` of ``parent`` (None: one that ``op7`` adds itself), described by ``text`` (in its
    help and in the list of its group)."""
    if parent is None:
        return click.command(name, cls=Op7Command, help=text, short_help=text)
    return parent.command(name, cls=Op7Command, help=text, short_help=text)
