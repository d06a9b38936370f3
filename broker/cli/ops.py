"""``op7 ops``: the operations centre's dashboard, and its operators' accounts."""

from __future__ import annotations

import asyncio
import os

import click

from broker.cli._click import argument
from broker.cli._common import Env, command, echo_json, global_options, make_node, me, new_group, pass_env, where
from broker.cli._issuer import directory_entry
from broker.cli.inbox import Given
from broker.errors import ConfigError
from broker.ops.accounts import Accounts, Role
from broker.ops.case_store import CaseStore
from broker.ops.cases import CaseBook
from broker.ops.service import OpsCentre
from broker.trust.replay import ReplayGuard

__all__ = ["ops"]

ops = new_group("ops", "the operations centre: a live dashboard of the alerts, and its operators")
user = new_group("user", "the operators who may log in to the dashboard")
ops.add_command(user)

#: Where a script gives a new operator's password (people are asked for it).
PASSWORD_VARIABLE = "OP7_OPS_PASSWORD"  # noqa: S105 (the name of a variable, not a password)


def _accounts(env: Env) -> Accounts:
    env.home.create()
    return Accounts(env.home.root / "ops-accounts.db", env.home.clock)


def _password(name: str) -> str:
    given = os.environ.get(PASSWORD_VARIABLE)
    if given:
        return given
    return str(click.prompt(f"password for {name}", hide_input=True, confirmation_prompt=True, err=True))


@command(ops, "serve", "serve the dashboard: open cases live, their history, acknowledgements to the issuing node")
@click.option("--as", "as_node", metavar="NODE_ID", help="the operations centre's node (its keys in this home)")
@click.option("--listen", default="127.0.0.1:8460", show_default=True, metavar="HOST:PORT", help="where to serve")
@click.option("--agency", help="your authority's name, signed into acknowledgements (default: the directory's)")
@click.option("--desk", help="your 24/7 desk (default: the directory's)")
@click.option("--phone", help="your 24/7 desk's E.164 number (default: the directory's)")
@click.option("--secure-cookies", is_flag=True, help="send cookies over HTTPS only (behind a TLS-terminating proxy)")
@global_options
@pass_env
def ops_serve(
    env: Env,
    as_node: str | None,
    listen: str,
    agency: str | None,
    desk: str | None,
    phone: str | None,
    secure_cookies: bool,
) -> int:
    node_id = me(as_node)
    host, _, port = listen.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"--listen {listen!r}: HOST:PORT, e.g. 127.0.0.1:8460")
    accounts = _accounts(env)
    if not accounts.operators():
        raise ConfigError("no operator can log in: add one with 'op7 ops user add NAME'")
    book = CaseBook(CaseStore(env.home.state_dir() / f"ops-{node_id}.db"), env.home.clock)
    # The group and the replay store go with the case store: a new store is filled again from the alerts topic.
    group = f"{node_id}.ops.{book.store.store_id}"
    node = make_node(env, me=node_id, sign=True, group=group)
    node.replay_guard.close()
    node.replay_guard = ReplayGuard(env.home.replay_path(group))
    authority = Given(agency, desk, phone).authority(node_id, directory_entry(node.trust, node_id))

    async def run() -> None:
        async with node:
            centre = OpsCentre(node, book, accounts, authority, group)
            url = f"http://{host}:{port}/"
            click.echo(f"dashboard of {node_id} on {url} reading {where(env)} (Ctrl-C to stop)", err=True)
            await centre.serve(host.strip("[]"), int(port), secure_cookies=secure_cookies)

    try:
        asyncio.run(run())
    finally:
        book.store.close()
        accounts.close()
    return 0


@command(user, "add", f"add an operator (the password is asked for, or read from {PASSWORD_VARIABLE})")
@argument("name", "the operator's login name")
@click.option(
    "--role",
    type=click.Choice([r.value for r in Role]),
    default="operator",
    show_default=True,
    help="operator: sees and acknowledges; viewer: sees only (a wall screen)",
)
@global_options
@pass_env
def user_add(env: Env, name: str, role: str) -> int:
    accounts = _accounts(env)
    try:
        added = accounts.add(name, _password(name), Role(role))
    finally:
        accounts.close()
    click.echo(f"operator {added.name} added ({added.role.value})")
    return 0


@command(user, "passwd", "set an operator's password (their sessions end)")
@argument("name", "the operator's login name")
@global_options
@pass_env
def user_passwd(env: Env, name: str) -> int:
    accounts = _accounts(env)
    try:
        accounts.set_password(name, _password(name))
    finally:
        accounts.close()
    click.echo(f"password of {name} changed")
    return 0


@command(user, "remove", "remove an operator (their sessions end)")
@argument("name", "the operator's login name")
@global_options
@pass_env
def user_remove(env: Env, name: str) -> int:
    accounts = _accounts(env)
    try:
        accounts.remove(name)
    finally:
        accounts.close()
    click.echo(f"operator {name} removed")
    return 0


@command(user, "list", "the operators and their roles")
@click.option("--json", "as_json", is_flag=True, help="as a JSON list")
@global_options
@pass_env
def user_list(env: Env, as_json: bool) -> int:
    accounts = _accounts(env)
    try:
        found = accounts.operators()
    finally:
        accounts.close()
    if as_json:
        echo_json([{"name": o.name, "role": o.role.value} for o in found], indent=2)
    for operator in [] if as_json else found:
        click.echo(f"{operator.name:<32} {operator.role.value}")
    return 0
