"""``op7 keys``: a node's signing and encryption keys, and the local trust store."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import click

from broker.cli._click import argument
from broker.cli._common import Env, command, echo_json, global_options, new_group, pass_env, show_table, table
from broker.errors import ConfigError
from broker.models import check_node_id
from broker.models.directory import KeyEntry
from broker.trust.directory import DirectoryTrust
from broker.trust.store import PublicKeyCard, TrustStore
from broker.wire.keyfile import protection_of

__all__ = ["keys"]

keys = new_group("keys", "signing keys and the trust store")

_NO_TRUST = "do not add the public key to the local trust store"


@command(keys, "new", "create signing and encryption keys for a node id (CC.AGENCY)")
@argument("node_id", "the node id, CC.AGENCY: an ISO 3166-1 country code and the agency, e.g. FR.GN")
@click.option("--force", is_flag=True, help="replace existing keys (they are lost)")
@click.option("--no-trust", is_flag=True, help=_NO_TRUST)
@global_options
@pass_env
def keys_new(env: Env, node_id: str, force: bool, no_trust: bool) -> int:
    return _new_keys(env, node_id, force=force, no_trust=no_trust, rotate=False)


@command(keys, "rotate", "replace a node's keys, keeping the old ones to open old sealed messages")
@argument("node_id", "the node id whose keys in this home are replaced")
@click.option("--no-trust", is_flag=True, help=_NO_TRUST)
@global_options
@pass_env
def keys_rotate(env: Env, node_id: str, no_trust: bool) -> int:
    return _new_keys(env, node_id, force=False, no_trust=no_trust, rotate=True)


def _new_keys(env: Env, node_id: str, *, force: bool, no_trust: bool, rotate: bool) -> int:
    home = env.home
    node_id = check_node_id(node_id)
    key, key_path, card_path = home.new_key(node_id, overwrite=force, rotate=rotate)
    trust_locally = not no_trust and not home.uses_directory()
    if trust_locally:
        store = TrustStore.load_or_empty(home.trust_path)
        store.add(node_id, key.public, PublicKeyCard.load(card_path).encryption_key)
        store.save(home.trust_path)
    verb = "rotated the keys of" if rotate else "created keys for"
    click.echo(f"{verb} {node_id}: signing key {key.public.key_id.hex()} (Ed25519), encryption key (X25519)")
    click.echo(f"  private keys: {key_path} and {home.enc_key_path(node_id)} (mode 0600; never share them)")
    click.echo(f"  public card:  {card_path} (give this to other operators, or to the network authority)")
    if trust_locally:
        click.echo(f"  trusted in:   {home.trust_path}")
    elif home.uses_directory():
        click.echo(
            f"  the network directory decides trust: ask the authority to run "
            f"'op7 directory {'rotate-key' if rotate else 'add-node'}' with the card"
        )
    return 0


@command(keys, "protect", "encrypt a node's private keys with OP7_KEY_PASSPHRASE (scrypt), earlier keys included")
@argument("node_id", "the node id whose private keys in this home are encrypted")
@global_options
@pass_env
def keys_protect(env: Env, node_id: str) -> int:
    """Keys in clear, or encrypted with the same passphrase by an earlier op7 (PBKDF2, 2,048 iterations), are written
    again encrypted with scrypt; keys already so are left as they are."""
    home = env.home
    rewritten = home.protect(check_node_id(node_id))
    for path in rewritten:
        click.echo(f"encrypted {path} with scrypt")
    if not rewritten:
        click.echo(f"the private keys of {node_id} in {home.keys_dir} are already encrypted with scrypt")
    return 0


@command(keys, "trust", "trust another node's public key card (.pub file)")
@argument("file", "the card, as 'op7 keys new' wrote it (keys/CC.AGENCY.pub in the other node's home)")
@click.option("--force", is_flag=True, help="trust the key even if it is already trusted under another node id")
@global_options
@pass_env
def keys_trust(env: Env, file: str, force: bool) -> int:
    home = env.home
    card = PublicKeyCard.load(Path(file))
    store = TrustStore.load_or_empty(home.trust_path)
    home.create()
    others = [node for node in store.holders(card.key.key_id) if node != card.node]
    if others:
        # One key under two ids lets its holder sign as either: a card edited to another node id, most likely.
        problem = (
            f"{file}: key {card.key.key_id.hex()} of {card.node} is already trusted as {', '.join(others)} "
            f"in {home.trust_path}"
        )
        if not force:
            raise ConfigError(f"{problem}; one key must not speak for two nodes (check the card; --force to trust it)")
        click.echo(f"op7: warning: {problem}; trusted under both ids (--force)", err=True)
    store.add(card.node, card.key, card.encryption_key)
    store.save(home.trust_path)
    click.echo(f"trusted {card.node} key {card.key.key_id.hex()} in {home.trust_path}")
    return 0


@command(keys, "list", "list trusted nodes and key ids")
@click.option("--json", "as_json", is_flag=True, help="a JSON list of {node, key_id, state}")
@global_options
@pass_env
def keys_list(env: Env, as_json: bool) -> int:
    home = env.home
    trust = home.trust()
    if isinstance(trust, DirectoryTrust):
        directory = trust.directory
        rows = [
            (n.node_id, k.key_id, _key_state(k, home.clock.now()))
            for n in (directory.nodes if directory else ())
            for k in n.signing_keys
        ]
        source = f"network directory version {trust.version}" if directory else "network directory (none accepted)"
    else:
        assert isinstance(trust, TrustStore)
        rows = [(node, key.key_id.hex(), "valid") for node, keys in trust.nodes() for key in keys]
        source = f"trust store {home.trust_path}"
    if as_json:
        echo_json([{"node": n, "key_id": k, "state": s} for n, k, s in rows], indent=2)
        return 0
    click.echo(f"# {source}")
    mine = {node: _private_here(home.key_path(node), node) for node, _, _ in rows}
    show_table(
        table("NODE", "KEY ID", "STATE"),
        [(node, key_id, state + mine[node]) for node, key_id, state in rows],
        whole=[1],
    )
    return 0


def _private_here(path: Path, node: str) -> str:
    """What ``keys list`` says of a node whose private key is in this home: how the key file is protected."""
    try:
        protection = protection_of(path.read_bytes())
    except FileNotFoundError:
        return ""
    except OSError:
        return " (private key here)"
    advice = {"none": "; not encrypted", "weak": "; weakly encrypted", "scrypt": ""}[protection]
    return f" (private key here{advice}{f': op7 keys protect {node}' if advice else ''})"


def _key_state(key: KeyEntry, now: datetime) -> str:
    problem = key.problem_at(now)
    if problem is not None:
        return problem[0].removeprefix("key-")
    return f"valid until {key.valid_until:%Y-%m-%dT%H:%MZ}" if key.valid_until else "valid"
