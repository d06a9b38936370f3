"""``op7 directory``: the signed network directory, as network authorities draft, sign and publish it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from broker.cli._click import POSITIVE_INT, argument
from broker.cli._common import Env, command, global_options, new_group, pass_env, transport
from broker.clock import parse_duration, parse_offset
from broker.errors import ConfigError, MessageError
from broker.models import check_node_id
from broker.models.directory import Role, SignedDirectory
from broker.node.node import Node
from broker.trust import admin
from broker.trust.directory import DirectoryAnchor, DirectoryDocument, DirectoryTrust, keep_directory
from broker.trust.files import write_json
from broker.trust.store import PublicKeyCard

__all__ = ["directory"]

directory = new_group("directory", "the signed network directory (network authorities)")

_DRAFT = "the directory file (a draft, or a signed version)"


def _file(f: Callable[..., Any]) -> Callable[..., Any]:
    return argument("file", _DRAFT)(f)


def _draft(path: str) -> SignedDirectory:
    return DirectoryDocument.from_file(Path(path)).signed


def _save_draft(path: str, signed: SignedDirectory) -> None:
    DirectoryDocument(signed).to_file(Path(path))
    current = admin.read(signed)
    state = f"{len(signed.signatures)}/{current.threshold} signatures" if signed.signatures else "unsigned"
    click.echo(f"{path}: network {current.network} version {current.version}, {len(current.nodes)} node(s), {state}")


@command(directory, "create", "version 1 of a network's directory, unsigned")
@_file
@click.option("--network", required=True, help="network name, e.g. op7 or op7-exercise")
@click.option("--threshold", type=POSITIVE_INT, required=True, help="authority signatures a version needs")
@click.option("--authority", multiple=True, required=True, metavar="CARD.pub", help="an authority's card")
@global_options
@pass_env
def directory_create(env: Env, file: str, network: str, threshold: int, authority: tuple[str, ...]) -> int:
    cards = [PublicKeyCard.load(Path(p)) for p in authority]
    _save_draft(file, admin.create(network, threshold, cards, now=env.home.clock.now()))
    return 0


@command(directory, "add-node", "add a node from its public key card")
@_file
@argument("card", "the node's public key card", metavar="CARD.pub")
@click.option("--agency", required=True, help="the agency's name, as other nodes will see it")
@click.option(
    "--role",
    multiple=True,
    required=True,
    type=click.Choice([r.value for r in Role]),
    help="what the node is in the network (repeatable)",
)
@click.option("--allow", multiple=True, metavar="TYPE", help="a message type it may send (default: all)")
@global_options
@pass_env
def directory_add_node(
    env: Env, file: str, card: str, agency: str, role: tuple[str, ...], allow: tuple[str, ...]
) -> int:
    key_card = PublicKeyCard.load(Path(card))
    roles = [Role(r) for r in role]
    signed = admin.add_node(_draft(file), key_card, agency, roles, list(allow) or ["all"], now=env.home.clock.now())
    _save_draft(file, signed)
    return 0


@command(directory, "remove-node", "remove a node")
@_file
@argument("node_id", "the node id to remove")
@global_options
@pass_env
def directory_remove_node(env: Env, file: str, node_id: str) -> int:
    _save_draft(file, admin.remove_node(_draft(file), check_node_id(node_id), now=env.home.clock.now()))
    return 0


@command(directory, "rotate-key", "add a node's new keys; old ones overlap")
@_file
@argument("card", "the card with the node's new keys", metavar="CARD.pub")
@click.option("--overlap", default="7d", show_default=False, help="how long the old keys stay valid (default 7d)")
@global_options
@pass_env
def directory_rotate_key(env: Env, file: str, card: str, overlap: str) -> int:
    key_card = PublicKeyCard.load(Path(card))
    try:
        period = parse_duration(overlap)
    except ValueError as exc:
        raise ConfigError(f"--overlap: {exc}") from None
    _save_draft(file, admin.rotate_key(_draft(file), key_card, period, now=env.home.clock.now()))
    return 0


@command(directory, "revoke-key", "revoke a key from a time on")
@_file
@argument("node_id", "the node whose key is revoked")
@argument("key_id", "the key id (hex), as 'op7 keys list' shows it")
@click.option("--reason", required=True, help="why, recorded in the directory")
@click.option("--at", help="from when: ISO 8601 with its zone, or relative to now such as -2h (default now)")
@global_options
@pass_env
def directory_revoke_key(env: Env, file: str, node_id: str, key_id: str, reason: str, at: str | None) -> int:
    now = env.home.clock.now()
    when = _instant(at, now) if at else None
    signed = admin.revoke_key(_draft(file), check_node_id(node_id), key_id, reason, when, now=now)
    _save_draft(file, signed)
    return 0


def _instant(text: str, now: datetime) -> datetime:
    """``--at``: an ISO 8601 time with its zone, or an offset from now (``-2h``)."""
    offset = parse_offset(text) if text.strip()[:1] in "+-" else None
    if offset is not None:
        return now + offset
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        when = None
    if when is None or when.tzinfo is None:
        raise ConfigError(
            f"--at {text}: give a time with its zone, e.g. 2026-12-01T10:00:00+00:00, or an offset such as -2h"
        )
    return when


@command(directory, "sign", "add an authority's signature")
@_file
@click.option("--as", "as_node", required=True, metavar="NODE_ID", help="the authority's key in this home")
@global_options
@pass_env
def directory_sign(env: Env, file: str, as_node: str) -> int:
    _save_draft(file, admin.sign(_draft(file), env.home.identity(as_node).key))
    return 0


@command(directory, "anchor", "install (or write) the network's trust anchor")
@_file
@click.option("--out", help="write the anchor there instead of installing it in this home")
@global_options
@pass_env
def directory_anchor(env: Env, file: str, out: str | None) -> int:
    current = admin.read(_draft(file))
    target = Path(out) if out else env.home.anchor_path
    anchor = DirectoryAnchor.of(current)
    write_json(target, anchor.to_json())
    click.echo(
        f"{target}: anchor of network {current.network} ({len(current.authorities)} authority keys, "
        f"threshold {current.threshold})"
    )
    return 0


@command(directory, "show", "print a directory")
@_file
@global_options
@pass_env
def directory_show(env: Env, file: str) -> int:
    current = admin.read(_draft(file))
    click.echo(json.dumps(current.model_dump(mode="json"), indent=2, default=str))
    return 0


_ANCHOR = "check against this anchor instead of this home's trust"


@command(directory, "verify", "check a directory against the anchor or the version held")
@_file
@click.option("--anchor", help=_ANCHOR)
@global_options
@pass_env
def directory_verify(env: Env, file: str, anchor: str | None) -> int:
    return _verify(env, file, anchor, "verify")


@command(directory, "install", "verify and keep as this node's directory")
@_file
@click.option("--anchor", help=_ANCHOR)
@global_options
@pass_env
def directory_install(env: Env, file: str, anchor: str | None) -> int:
    return _verify(env, file, anchor, "install")


@command(directory, "publish", "verify, install and publish on the directory topic")
@_file
@click.option("--anchor", help=_ANCHOR)
@global_options
@pass_env
def directory_publish(env: Env, file: str, anchor: str | None) -> int:
    return _verify(env, file, anchor, "publish")


def _verify(env: Env, file: str, anchor: str | None, action: str) -> int:
    home = env.home
    signed = _draft(file)
    trust = home.trust() if not anchor else DirectoryTrust(DirectoryAnchor.load(Path(anchor)))
    if not isinstance(trust, DirectoryTrust):
        raise ConfigError(f"no network anchor in {home.root}; install one with 'op7 directory anchor' or pass --anchor")
    held = trust.version
    try:
        newer = trust.offer(signed, home.clock.now())
    except MessageError as exc:
        click.echo(f"op7: refused: {file}: {exc}", err=True)
        return 1
    current = admin.read(signed)
    if not newer and current.version != held:
        click.echo(f"op7: refused: {file}: version {current.version} is older than version {held} held", err=True)
        return 1
    click.echo(
        f"{file}: valid: network {current.network} version {current.version}, "
        f"{len(signed.signatures)} signature(s), threshold {trust.anchor.threshold if not held else 'met'}"
    )
    if action in ("install", "publish"):
        click.echo(f"installed as {keep_directory(home.directory_dir, trust)}")
    if action == "publish":
        asyncio.run(_publish(env, trust, signed))
    return 0


async def _publish(env: Env, trust: DirectoryTrust, signed: SignedDirectory) -> None:
    current = admin.read(signed)
    node = Node(transport(env), trust, topic_prefix=env.topic_prefix, follow_directory=False, clock=env.home.clock)
    async with node:
        sent = await node.publish_directory(signed, current.network, current.version)
    click.echo(f"published to {sent.topic}[{sent.partition}]@{sent.offset}")
