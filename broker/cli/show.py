"""``op7 show``: one signed message for people, every field labelled: an exchange of this node, or a frame file."""

from __future__ import annotations

from pathlib import Path

import click

from broker.cli._click import argument
from broker.cli._common import Env, command, echo_json, global_options, me, pass_env
from broker.cli.render import render_message
from broker.errors import ConfigError, DecryptionError
from broker.models import Message
from broker.node.exchange_store import ExchangeStore
from broker.wire.envelope import MAGIC, open_verified, verify_frame
from broker.wire.schemas import default_registry

__all__ = ["show"]


def _frame(env: Env, ref: str, as_node: str | None) -> bytes:
    """The signed bytes ``ref`` names: a frame file, or an exchange of ``as_node`` by (part of) its message id."""
    path = Path(ref)
    if path.is_file():
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
        if not data.startswith(MAGIC):
            raise ConfigError(f"{path}: not an op7 frame (a signed frame starts with the bytes {MAGIC.decode()})")
        return data
    node_id = me(as_node)
    store = ExchangeStore(env.home.exchanges_path(node_id))
    try:
        record = store.find(ref)
    finally:
        store.close()
    if record is None:
        raise ConfigError(
            f"{ref!r} is neither a file nor a message id of the exchanges of {node_id} "
            f"(see 'op7 exchanges list --as {node_id}')"
        )
    return record.frame


@command(None, "show", "one message for people, every field labelled: an exchange by id, or a frame file")
@argument(
    "ref", "a message id of this node's exchanges (or its first or last characters), or a frame file", metavar="REF"
)
@click.option(
    "--as", "as_node", metavar="NODE_ID", help="the node whose exchanges are read and keys open sealed content"
)
@click.option("--json", "as_json", is_flag=True, help="the header and the message as JSON")
@global_options
@pass_env
def show(env: Env, ref: str, as_node: str | None, as_json: bool) -> int:
    data = _frame(env, ref, as_node)
    registry = default_registry()
    # Verified again as it is shown: a stored or copied frame is believed only for its signature.
    verified = verify_frame(data, env.home.trust(), registry)
    message: Message | None
    try:
        message = open_verified(verified, registry, opener=env.home.opener(as_node) if as_node else None).message
    except DecryptionError:
        message = None  # sealed to other nodes: the signed header is still shown
    if as_json:
        echo_json(
            {
                "envelope": verified.envelope.model_dump(mode="json"),
                "message": message.model_dump(mode="json", exclude={"original_content_key"}) if message else None,
                "verified": True,
            },
            indent=2,
        )
        return 0
    click.echo(render_message(message, verified.envelope, now=env.home.clock.now()))
    return 0
