"""``op7 schemas``: the shared schema: list, show, check compatibility, release."""

from __future__ import annotations

import json
import re
import shutil
import sysconfig
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

import click

from broker.cli._click import argument
from broker.cli._common import Env, command, echo_json, global_options, new_group, pass_env, show_table, table
from broker.errors import ConfigError
from broker.models import message_model
from broker.wire.compat import check_tree
from broker.wire.schemas import SchemaRegistry, schema_dir

__all__ = ["schemas"]

schemas = new_group("schemas", "the shared schema: list, show, check compatibility")

F = Callable[..., Any]


def _schemas_option(f: F) -> F:
    return click.option("--schemas", "tree", metavar="DIR", help="schema tree (default: the installed one)")(f)


def _root(tree: str | None) -> Path:
    return Path(tree) if tree else schema_dir()


@command(schemas, "list", "message types, their topics and fingerprints")
@_schemas_option
@click.option("--json", "as_json", is_flag=True, help="a JSON list of {type, topic, fingerprint}")
@global_options
@pass_env
def schemas_list(env: Env, tree: str | None, as_json: bool) -> int:
    registry = SchemaRegistry(_root(tree))
    rows = [(n, registry.topic_of(n), registry.get(n).fingerprint_hex) for n in registry.message_types]
    if as_json:
        echo_json([{"type": n, "topic": t, "fingerprint": f} for n, t, f in rows], indent=2)
        return 0
    show_table(table("TYPE", "TOPIC", "FINGERPRINT (SHA-256 of the Parsing Canonical Form)"), rows, whole=[2])
    return 0


@command(schemas, "show", "one schema, self-contained")
@_schemas_option
@argument(
    "type_name", "a full Avro name (op7.alert.KidnappingAlert) or a message type (KidnappingAlert)", metavar="TYPE"
)
@click.option("--canonical", is_flag=True, help="print the Parsing Canonical Form")
@global_options
@pass_env
def schemas_show(env: Env, tree: str | None, type_name: str, canonical: bool) -> int:
    registry = SchemaRegistry(_root(tree))
    name = type_name
    if name not in registry:
        try:
            name = message_model(name).avro_name
        except KeyError:
            raise ConfigError(f"no schema named {type_name!r}; see 'op7 schemas list'") from None
    schema = registry.get(name)
    if canonical:
        click.echo(schema.canonical)
    else:
        click.echo(json.dumps(json.loads(schema.definition), indent=2))
    click.echo(f"fingerprint: {schema.fingerprint_hex}", err=True)
    return 0


@command(schemas, "check", "check compatibility with every released version")
@_schemas_option
@global_options
@pass_env
def schemas_check(env: Env, tree: str | None) -> int:
    root = _root(tree)
    registry, versions, problems = check_tree(root)
    if not versions:
        click.echo(f"{root}: no released versions under {root / 'released'}; nothing to check against")
        return 0
    if problems:
        for problem in problems:
            click.echo(f"op7: incompatible: {problem}", err=True)
        click.echo(f"{len(problems)} incompatible change(s) against release(s) {', '.join(versions)}", err=True)
        return 1
    click.echo(
        f"{len(registry.message_types)} message types in {root} are backward and forward compatible with "
        f"release(s) {', '.join(versions)}"
    )
    return 0


def _installed(root: Path) -> Path | None:
    """The installed place ``root`` lies in (the op7 package or site-packages), None for a folder of one's own."""
    resolved = root.resolve()
    places = {Path(str(resources.files("broker"))), *(Path(sysconfig.get_path(p)) for p in ("purelib", "platlib"))}
    return next((place for place in places if resolved.is_relative_to(place.resolve())), None)


def _release_root(tree: str | None) -> Path:
    """Where a release is written: a schema folder one keeps (``--schemas``, or a source checkout's ``schemas/``),
    never the installed package, whose copy the next upgrade replaces."""
    root = _root(tree)
    place = _installed(root)
    if place is not None:
        raise ConfigError(
            f"{root}: the schemas installed with op7 (in {place}); a release is written into a schema folder you keep: "
            "give it with --schemas DIR (e.g. the schemas/ folder of the network's source checkout)"
        )
    return root


@command(schemas, "release", "snapshot the current schemas as a released version")
@click.option("--schemas", "tree", metavar="DIR", help="schema tree you keep (default: the source checkout's)")
@argument("version", "the release's number, such as 2 or 1.1 (never reused)")
@global_options
@pass_env
def schemas_release(env: Env, tree: str | None, version: str) -> int:
    root = _release_root(tree)
    if not re.fullmatch(r"[0-9]+(\.[0-9]+)*", version):
        raise ConfigError(f"release version {version!r}: use numbers such as 2 or 1.1")
    target = root / "released" / version
    if target.exists():
        raise ConfigError(f"{target} already exists: a released version never changes")
    _, versions, problems = check_tree(root)
    if problems:
        raise ConfigError(f"the tree is not compatible with release(s) {', '.join(versions)}; run 'op7 schemas check'")
    target.mkdir(parents=True)
    for source in sorted(root.glob("*.avsc")):
        shutil.copy2(source, target / source.name)
    click.echo(f"released the schemas of {root} as version {version} in {target}")
    return 0
