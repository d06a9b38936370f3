"""``op7 config show``: the settings a command runs with, and where each comes from."""

from __future__ import annotations

import os
from typing import Any

import click
from pydantic import SecretStr

from broker.cli._common import Env, Globals, command, echo_json, global_options, new_group, pass_env, show_table, table
from broker.config import Settings

__all__ = ["config"]

config = new_group("config", "op7's settings: options over OP7_* environment variables over defaults")

#: What a secret is shown as.
MASK = "***"
#: The settings that have a command-line option, and its spelling.
_OPTIONS = {"home": "--home", "bootstrap": "--bootstrap", "topic_prefix": "--topic-prefix"}


def _value(env: Env, name: str) -> Any:
    """A setting's effective value as text (secrets masked), None when unset."""
    if name == "home":
        return str(env.home.root)
    if name == "embedded_path":
        return str(env.home.embedded_path)
    value = getattr(env.settings, name)
    if isinstance(value, SecretStr):
        return MASK
    return None if value is None else str(value)


def _source(given: Globals, name: str) -> str:
    if name in _OPTIONS and given.options().get(name) is not None:
        return _OPTIONS[name]
    if os.environ.get(Settings.variable(name)):
        return "environment"
    return "default"


@command(config, "show", "the effective settings (secrets shown as ***), and where each comes from")
@click.option("--json", "as_json", is_flag=True, help="the settings as one JSON object (unset ones null)")
@global_options
@pass_env
def config_show(env: Env, as_json: bool) -> int:
    names = list(Settings.model_fields)
    if as_json:
        echo_json({name: _value(env, name) for name in names}, indent=2)
        return 0
    given = click.get_current_context().ensure_object(Globals)
    rows = []
    for name in names:
        value = _value(env, name)
        rows.append((Settings.variable(name), "(not set)" if value is None else value, _source(given, name)))
    show_table(table("SETTING", "VALUE", "FROM"), rows)
    return 0
