"""Adapters and command groups found by name: the ``op7.adapters`` and ``op7.commands`` entry-point groups.

A distribution offers an adapter with an entry point in that group whose object, called with a message model,
returns something with ``translate_file(path, *, now)``; op7's own JSON reader is registered as ``json``::

    [project.entry-points."op7.adapters"]
    json = "adapters.native_json:NativeJsonAdapter"

Nothing in ``broker`` imports an adapter: ``op7 send --format NAME`` loads one through :func:`load_adapter`, and
``op7`` adds the command groups of ``op7.commands`` (``op7 adapter``, from the adapters package) when they are
called, through :func:`load_command`.
"""

from __future__ import annotations

from datetime import datetime
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import Any, Protocol, cast

import click

from broker.errors import ConfigError
from broker.models import Message

__all__ = [
    "ADAPTER_GROUP",
    "COMMAND_GROUP",
    "AdapterFactory",
    "InboundAdapter",
    "Translated",
    "adapter_names",
    "command_names",
    "load_adapter",
    "load_command",
]

#: The entry-point group adapters are registered in.
ADAPTER_GROUP = "op7.adapters"
#: The entry-point group of command groups ``op7`` offers beside its own.
COMMAND_GROUP = "op7.commands"


class Translated(Protocol):
    """What an adapter returns: the message read (and possibly more, such as the fields it left behind)."""

    @property
    def message(self) -> Message: ...


class InboundAdapter(Protocol):
    """Reads a local file into a shared-schema message to be sent at ``now``; raises
    :class:`broker.errors.InputError` listing every problem of the file."""

    def translate_file(self, path: Path, *, now: datetime) -> Translated: ...


class AdapterFactory(Protocol):
    """What the entry point names (usually the adapter class): the adapter of one message model."""

    def __call__(self, model: type[Message], /, settings: dict[str, Any] | None = None) -> InboundAdapter: ...


def _registered() -> dict[str, EntryPoint]:
    return {ep.name: ep for ep in entry_points(group=ADAPTER_GROUP)}


def adapter_names() -> list[str]:
    """The names of the adapters installed, sorted."""
    return sorted(_registered())


def load_adapter(name: str) -> AdapterFactory:
    """The adapter registered as ``name``; :class:`ConfigError` naming the ones there are otherwise."""
    registered = _registered()
    entry = registered.get(name)
    if entry is None:
        available = ", ".join(sorted(registered)) or f"none (no {ADAPTER_GROUP} entry points: is op7 installed?)"
        raise ConfigError(f"unknown input format {name!r}; available: {available}")
    try:
        factory = entry.load()
    except Exception as exc:  # a broken plugin is a configuration problem, reported in one line
        raise ConfigError(
            f"input format {name!r}: cannot load {entry.value}: {exc.__class__.__name__}: {exc}"
        ) from None
    if not callable(factory):
        raise ConfigError(f"input format {name!r}: {entry.value} is not a class or function")
    return cast(AdapterFactory, factory)


def command_names() -> list[str]:
    """The names of the command groups installed beside op7's own."""
    return sorted(ep.name for ep in entry_points(group=COMMAND_GROUP))


def load_command(name: str) -> click.Command:
    """The command group registered as ``name``; :class:`ConfigError` when it cannot be loaded."""
    entry = next((ep for ep in entry_points(group=COMMAND_GROUP) if ep.name == name), None)
    if entry is None:
        raise ConfigError(f"no command {name!r} is installed")
    try:
        found = entry.load()
    except Exception as exc:  # a broken plugin is a configuration problem, reported in one line
        raise ConfigError(f"command {name!r}: cannot load {entry.value}: {exc.__class__.__name__}: {exc}") from None
    if not isinstance(found, click.Command):
        raise ConfigError(f"command {name!r}: {entry.value} is not a click command")
    return found
