"""``op7 directory``: the signed network directory, as network authorities draft, sign and publish it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import click

from broker.cli._click import POSITIVE_INT, argument
from broker.cli._common import Env, command, global_options, new_group, pass_env, transport
from broker.clock import parse_duration, parse_offset
from broker.errors import ConfigError, MessageError
from broker.models import Contact, check_node_id
from broker.models.directory import Role, SignedDirectory
from broker.models.inputs import validate
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
    click.echo(
        f"{path}: network {current.network} version {current.version}, {len(current.nodes)} node(s), "
        f"expires {_expiry(current.expires_at)}, {state}"
    )


def _expiry(when: datetime | None) -> str:
    return f"{when:%Y-%m-%dT%H:%M:%SZ}" if when else "never (written before directories expired)"


_EXPIRES_HELP = "how long the new version is in force, e.g. 365d or 26w"


def _expires_in(default: str | None) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``--expires-in``: on create (default a year) and on every edit (default: the lifetime of the version
    edited)."""
    help_text = (
        f"{_EXPIRES_HELP} (default {default})" if default else f"{_EXPIRES_HELP} (default: as the version edited)"
    )
    return click.option("--expires-in", "expires_in", default=default, metavar="DURATION", help=help_text)


def _period(text: str | None) -> timedelta | None:
    if text is None:
        return None
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise ConfigError(f"--expires-in: {exc}") from None


@command(directory, "create", "version 1 of a network's directory, unsigned")
@_file
@click.option("--network", required=True, help="network name, e.g. op7 or op7-exercise")
@click.option("--threshold", type=POSITIVE_INT, required=True, help="authority signatures a version needs")
@click.option("--authority", multiple=True, required=True, metavar="CARD.pub", help="an authority's card")
@_expires_in("365d")
@global_options
@pass_env
def directory_create(
    env: Env, file: str, network: str, threshold: int, authority: tuple[str, ...], expires_in: str
) -> int:
    cards = [PublicKeyCard.load(Path(p)) for p in authority]
    period = _period(expires_in) or admin.DEFAULT_LIFETIME
    _save_draft(file, admin.create(network, threshold, cards, now=env.home.clock.now(), expires_in=period))
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
@click.option("--desk", help="its 24/7 desk, signed into its receipts and reminders (with --phone)")
@click.option("--phone", help="its 24/7 desk's E.164 number (with --desk)")
@click.option("--email", help="its 24/7 desk's e-mail address")
@_expires_in(None)
@global_options
@pass_env
def directory_add_node(
    env: Env, /, file: str, card: str, agency: str, role: tuple[str, ...], allow: tuple[str, ...], **more: str | None
) -> int:
    key_card = PublicKeyCard.load(Path(card))
    roles = [Role(r) for r in role]
    allowed = list(allow) or ["all"]
    now, period = env.home.clock.now(), _period(more.pop("expires_in"))
    contact = None
    if any(more.values()):
        if not (more["desk"] and more["phone"]):
            raise ConfigError("a node's contact needs both --desk and --phone (and optionally --email)")
        contact = validate(Contact, {k: v for k, v in more.items() if v}, "--desk/--phone/--email")
    draft = admin.add_node(_draft(file), key_card, agency, roles, allowed, now=now, expires_in=period, contact=contact)
    _save_draft(file, draft)
    return 0


@command(directory, "remove-node", "remove a node")
@_file
@argument("node_id", "the node id to remove")
@_expires_in(None)
@global_options
@pass_env
def directory_remove_node(env: Env, file: str, node_id: str, expires_in: str | None) -> int:
    now, period = env.home.clock.now(), _period(expires_in)
    _save_draft(file, admin.remove_node(_draft(file), check_node_id(node_id), now=now, expires_in=period))
    return 0


@command(directory, "renew", "issue the directory again with a new expiry (the next version, if signed)")
@_file
@_expires_in(None)
@global_options
@pass_env
def directory_renew(env: Env, file: str, expires_in: str | None) -> int:
    _save_draft(file, admin.renew(_draft(file), now=env.home.clock.now(), expires_in=_period(expires_in)))
    return 0


@command(directory, "rotate-key", "add a node's new keys; old ones overlap")
@_file
@argument("card", "the card with the node's new keys", metavar="CARD.pub")
@click.option("--overlap", default="7d", show_default=False, help="how long the old keys stay valid (default 7d)")
@_expires_in(None)
@global_options
@pass_env
def directory_rotate_key(env: Env, file: str, card: str, overlap: str, expires_in: str | None) -> int:
    key_card = PublicKeyCard.load(Path(card))
    try:
        period = parse_duration(overlap)
    except ValueError as exc:
        raise ConfigError(f"--overlap: {exc}") from None
    now, lifetime = env.home.clock.now(), _period(expires_in)
    _save_draft(file, admin.rotate_key(_draft(file), key_card, period, now=now, expires_in=lifetime))
    return 0


@command(directory, "revoke-key", "revoke a key from a time on")
@_file
@argument("node_id", "the node whose key is revoked")
@argument("key_id", "the key id (hex), as 'op7 keys list' shows it")
@click.option("--reason", required=True, help="why, recorded in the directory")
@click.option("--at", help="from when: ISO 8601 with its zone, or relative to now such as -2h (default now)")
@_expires_in(None)
@global_options
@pass_env
def directory_revoke_key(
    env: Env, file: str, node_id: str, key_id: str, reason: str, at: str | None, expires_in: str | None
) -> int:
    now = env.home.clock.now()
    when = _instant(at, now) if at else None
    period = _period(expires_in)
    signed = admin.revoke_key(_draft(file), check_node_id(node_id), key_id, reason, when, now=now, expires_in=period)
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


@command(directory, "authorities", "replace the network authorities and their threshold")
@_file
@click.option("--threshold", type=POSITIVE_INT, required=True, help="authority signatures a version needs")
@click.option("--authority", multiple=True, required=True, metavar="CARD.pub", help="an authority's card")
@_expires_in(None)
@global_options
@pass_env
def directory_authorities(
    env: Env, file: str, threshold: int, authority: tuple[str, ...], expires_in: str | None
) -> int:
    cards = [PublicKeyCard.load(Path(p)) for p in authority]
    now, period = env.home.clock.now(), _period(expires_in)
    _save_draft(file, admin.replace_authorities(_draft(file), threshold, cards, now=now, expires_in=period))
    return 0


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
        f"{target}: anchor of network {current.network} version {current.version} "
        f"({len(current.authorities)} authority keys, threshold {current.threshold})"
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
    trust = home.trust() if not anchor else DirectoryTrust(DirectoryAnchor.load(Path(anchor)), clock=home.clock)
    if not isinstance(trust, DirectoryTrust):
        raise ConfigError(f"no network anchor in {home.root}; install one with 'op7 directory anchor' or pass --anchor")
    held, now = trust.version, home.clock.now()
    try:
        newer = trust.offer(signed, now)
    except MessageError as exc:
        click.echo(f"op7: refused: {file}: {exc}", err=True)
        return 1
    current = admin.read(signed)
    if not newer and current.version != held:
        base = f"version {held} held" if held else f"the anchor's version {trust.anchor.version}"
        click.echo(f"op7: refused: {file}: version {current.version} is older than {base}", err=True)
        return 1
    expired = trust.expired(now)
    if expired is not None:
        click.echo(f"op7: refused: {file}: {expired} ({expired.reason})", err=True)
        return 1
    before = "the anchor" if not held else f"version {held}"
    checked = f"thresholds of {before} and of version {current.version} met" if newer else "the version held"
    click.echo(
        f"{file}: valid: network {current.network} version {current.version}, {len(signed.signatures)} "
        f"signature(s), {checked}, expires {_expiry(current.expires_at)}"
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
