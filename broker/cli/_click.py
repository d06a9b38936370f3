"""Click plumbing of the op7 command: commands listed in the order they are added, arguments with help text,
and the value types of today's options (with their error messages)."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypeVar

import click

from broker.clock import parse_duration

__all__ = [
    "DURATION",
    "POSITIVE_INT",
    "POSITIVE_SECONDS",
    "HelpArgument",
    "Op7Command",
    "Op7Group",
    "argument",
    "expand_abbreviations",
]

F = TypeVar("F", bound=Callable[..., Any])

if TYPE_CHECKING:  # generic in Click's stubs from 8.2 on, not at run time in 8.1
    _IntType = click.ParamType[int]
    _FloatType = click.ParamType[float]
    _DurationType = click.ParamType[timedelta]
else:
    _IntType = _FloatType = _DurationType = click.ParamType


class HelpArgument(click.Argument):
    """A positional argument with a help text, shown under "Arguments" in the command's help."""

    def __init__(self, param_decls: list[str], help: str, **attrs: Any) -> None:
        super().__init__(param_decls, **attrs)
        self.help = help


def argument(name: str, help: str, **attrs: Any) -> Callable[[F], F]:
    """``click.argument`` with a help text."""
    return click.argument(name, cls=HelpArgument, help=help, **attrs)


def expand_abbreviations(params: list[click.Parameter], args: list[str], *, words_end: bool) -> list[str]:
    """Long options written as an unambiguous prefix (``--dead`` for ``--deadline-in``), spelled out, as argparse
    accepted them. ``words_end``: the options stop at the first word (a group's, before its command word)."""
    longs = {
        name: p
        for p in params
        if isinstance(p, click.Option)
        for name in (*p.opts, *p.secondary_opts)
        if name.startswith("--")
    }
    out: list[str] = []
    rest = iter(args)
    for arg in rest:
        if arg == "--" or (words_end and not arg.startswith("-")):
            out += [arg, *rest]
            break
        name, eq, value = arg.partition("=")
        if name.startswith("--") and name not in longs:
            matches = [n for n in longs if n.startswith(name)]
            name = matches[0] if len(matches) == 1 else name
        out.append(name + eq + value)
        option = longs.get(name)
        if option is not None and not eq and not (option.is_flag or option.count):
            out += list(itertools.islice(rest, 1))  # its value, whatever it looks like
    return out


def _argparse_help(option: click.Option | None) -> click.Option | None:
    if option is not None:
        option.help = "show this help message and exit"
    return option


class Op7Command(click.Command):
    """A command whose help lists its arguments, with their help, before its options; abbreviated long options
    are accepted."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, expand_abbreviations(self.get_params(ctx), args, words_end=False))

    def get_help_option(self, ctx: click.Context) -> click.Option | None:
        return _argparse_help(super().get_help_option(ctx))

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [
            (p.metavar or (p.name or "").upper(), p.help)
            for p in self.get_params(ctx)
            if isinstance(p, HelpArgument) and p.help
        ]
        if rows:
            with formatter.section("Arguments"):
                formatter.write_dl(rows)
        super().format_options(ctx, formatter)


class Op7Group(click.Group):
    """A group that lists its commands in the order they were added (as ``op7 -h`` always has)."""

    command_class = Op7Command

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, expand_abbreviations(self.get_params(ctx), args, words_end=True))

    def get_help_option(self, ctx: click.Context) -> click.Option | None:
        return _argparse_help(super().get_help_option(ctx))


Op7Group.group_class = Op7Group


class _PositiveInt(_IntType):
    name = "integer"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        try:
            number = int(value)
        except ValueError:
            self.fail(f"{value!r} is not a whole number", param, ctx)
        if number < 1:
            self.fail(f"{number} is not at least 1", param, ctx)
        return number


class _PositiveSeconds(_FloatType):
    name = "seconds"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        if isinstance(value, float):
            return value
        try:
            number = float(value)
        except ValueError:
            self.fail(f"{value!r} is not a number of seconds", param, ctx)
        if not math.isfinite(number) or number <= 0:
            self.fail(f"{value!r} is not a positive number of seconds", param, ctx)
        return number


class _Duration(_DurationType):
    name = "duration"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> timedelta:
        if isinstance(value, timedelta):
            return value
        try:
            return parse_duration(value)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


#: A whole number from 1 ("0 is not at least 1").
POSITIVE_INT = _PositiveInt()
#: A finite number of seconds above 0 ("'nan' is not a positive number of seconds").
POSITIVE_SECONDS = _PositiveSeconds()
#: A duration such as 90s, 6h or 3d (``broker.clock.parse_duration``: "not a duration").
DURATION = _Duration()
