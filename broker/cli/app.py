"""The ``op7`` command: the root group, its commands, and how errors end a run.

Exit codes: 0 success; 1 an op7 error (bad input, bad configuration, transport failure), with one line per
problem on standard error and no traceback; 2 a usage error; 75 a message signed and kept in the outbox, not yet
acknowledged by the cluster (it is sent again: ``op7 outbox``); 130 interrupted.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from importlib import metadata
from typing import Any

import click

from broker.cli._click import Op7Group
from broker.cli._common import Globals, global_options
from broker.cli.alerts import alert, alerts
from broker.cli.audit import audit, verify_bundle_command
from broker.cli.config import config
from broker.cli.demo import demo
from broker.cli.directory import directory
from broker.cli.exchanges import exchanges
from broker.cli.inbox import inbox
from broker.cli.keys import keys
from broker.cli.ops import ops
from broker.cli.outbox import PENDING, outbox
from broker.cli.quarantine import quarantine
from broker.cli.schemas import schemas
from broker.cli.send import listen, reply, send
from broker.cli.show import show
from broker.cli.topics import topics
from broker.errors import DeliveryError, HandlerError, InputError, Op7Error
from broker.plugins import command_names, load_command

__all__ = ["cli", "main"]


def _version() -> str:
    try:
        return metadata.version("op7-exchange")
    except metadata.PackageNotFoundError:
        return "unknown"


def _print_version(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if value and not ctx.resilient_parsing:
        click.echo(f"op7 {_version()}")
        ctx.exit(0)


class _Cli(Op7Group):
    """op7's own commands, then the command groups installed through ``op7.commands``, loaded when called."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [*self.commands, *(n for n in command_names() if n not in self.commands)]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        found = super().get_command(ctx, cmd_name)
        if found is None and cmd_name in command_names():
            found = load_command(cmd_name)
            self.add_command(found, cmd_name)
        return found


@click.group(
    "op7",
    cls=_Cli,
    help="op7: signed kidnapping alerts and case information between law-enforcement nodes.",
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 120},
    no_args_is_help=False,
)
@click.option(
    "--version",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=_print_version,
    help="show the program's version number and exit",
)
@global_options
def cli() -> None:
    pass


for _command in (
    keys,
    alert,
    alerts,
    directory,
    send,
    show,
    listen,
    exchanges,
    inbox,
    outbox,
    ops,
    audit,
    verify_bundle_command,
    reply,
    quarantine,
    topics,
    schemas,
    demo,
    config,
):
    cli.add_command(_command)


def _usage_error(exc: click.UsageError) -> int:
    """As argparse did: the usage line, then the command and the problem, exit 2."""
    if exc.ctx is not None:
        click.echo(exc.ctx.get_usage(), err=True)
    prog = exc.ctx.command_path if exc.ctx is not None else "op7"
    click.echo(f"{prog}: error: {exc.format_message()}", err=True)
    return 2


def _run(argv: list[str], given: Globals) -> int:
    try:
        with cli.make_context("op7", argv, obj=given) as ctx:
            result: Any = cli.invoke(ctx)
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.UsageError as exc:
        return _usage_error(exc)
    except click.ClickException as exc:
        click.echo(f"op7: error: {exc.format_message()}", err=True)
        return exc.exit_code
    return int(result or 0)


def main(argv: Sequence[str] | None = None) -> int:
    given = Globals()
    try:
        return _run(list(sys.argv[1:] if argv is None else argv), given)
    except InputError as exc:
        for line in str(exc).splitlines():
            click.echo(f"op7: error: {line}", err=True)
        return 1
    except HandlerError as exc:
        click.echo(f"op7: error: {exc}", err=True)
        return 1
    except DeliveryError as exc:
        click.echo(f"op7: {'pending' if exc.outcome == 'pending' else 'error'}: {exc}", err=True)
        return PENDING if exc.outcome == "pending" else 1
    except Op7Error as exc:
        bootstrap = given.env.bootstrap if given.env is not None else given.bootstrap
        hint = " (is Kafka running? scripts/kafka start)" if exc.retriable and bootstrap else ""
        click.echo(f"op7: error: {exc}{hint}", err=True)
        return 1
    except (KeyboardInterrupt, click.Abort):
        click.echo("op7: interrupted", err=True)
        return 130
    except OSError as exc:
        click.echo(f"op7: error: {exc}", err=True)
        return 1
    except Exception as exc:
        # A defect, not a user mistake: one line, the traceback only on request.
        if given.verbose >= 2:
            raise
        click.echo(f"op7: internal error: {exc.__class__.__name__}: {exc} (run with -vv for the traceback)", err=True)
        return 1
