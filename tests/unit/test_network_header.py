"""The header's ``network`` (docs/PROTOCOL.md section 3): written with the oldest header schema that holds it, read
with the one that consumes exactly its bytes, checked against the receiver's network."""

from __future__ import annotations

from pathlib import Path

import pytest

from broker.errors import ConfigError, DecodeError, VerificationError
from broker.models import KidnappingAlert
from broker.node.node import Node
from broker.transport.embedded import EmbeddedTransport
from broker.trust.store import TrustStore
from broker.wire.codec import decode_datum
from broker.wire.envelope import NodeIdentity, build, check_network, open_frame, parse_frame, read_header
from broker.wire.schemas import Schema, SchemaRegistry, default_registry, schema_dir
from tests.conftest import now


class OfNetwork(TrustStore):
    """A trust store read as a receiver of ``production`` reads."""

    @property
    def network(self) -> str | None:  # type: ignore[override]
        return "production"


def release_1_envelope() -> Schema:
    return released_envelope("1")


def released_envelope(version: str) -> Schema:
    return SchemaRegistry(schema_dir() / "released" / version, include_released=False).get("op7.Envelope")


def test_a_header_without_network_is_release_1s_bytes(fr: NodeIdentity, alert: KidnappingAlert) -> None:
    """Every reader of format version 1 reads it: it decodes exactly with release 1's header schema."""
    env, frame = build(fr, alert, now=now())
    header = parse_frame(frame).header
    assert str(decode_datum(release_1_envelope(), header)["message_id"]) == env.message_id
    assert read_header(header)["network"] is None
    with pytest.raises(DecodeError):
        decode_datum(default_registry().get("op7.Envelope"), header)  # the current schema runs out of bytes


def test_a_header_with_network_is_written_with_release_2s_schema(
    fr: NodeIdentity, trust: TrustStore, alert: KidnappingAlert
) -> None:
    """Release 2's header ends at the network; the current one also holds the sequence number, here null."""
    bound = NodeIdentity(fr.node_id, fr.key, network="exercise")
    env, frame = build(bound, alert, now=now())
    header = parse_frame(frame).header
    assert decode_datum(released_envelope("2"), header)["network"] == "exercise"
    with pytest.raises(DecodeError, match="trailing bytes"):
        decode_datum(release_1_envelope(), header)  # a release-1 reader refuses it
    assert open_frame(frame, trust).envelope == env  # a receiver without a network takes any


def test_a_header_no_schema_reads_is_undecodable() -> None:
    with pytest.raises(DecodeError) as info:
        read_header(b"\x02")
    assert info.value.reason == "undecodable"


def test_a_receiver_of_a_network_takes_only_frames_naming_it(
    fr: NodeIdentity, keys: dict[str, object], alert: KidnappingAlert
) -> None:
    trust = OfNetwork({"FR.GN": [fr.key.public]})
    for network, named in [("exercise", "was signed for network 'exercise'"), (None, "names no network")]:
        env, frame = build(NodeIdentity(fr.node_id, fr.key, network=network), alert, now=now())
        with pytest.raises(VerificationError) as info:
            open_frame(frame, trust)
        assert str(info.value) == f"{env.message_type} {env.message_id} {named}; this node is on network 'production'"
        assert info.value.reason == "wrong-network"
    _, frame = build(NodeIdentity(fr.node_id, fr.key, network="production"), alert, now=now())
    assert open_frame(frame, trust).envelope.network == "production"


def test_check_network_compares_exactly(fr: NodeIdentity, alert: KidnappingAlert) -> None:
    env, _ = build(NodeIdentity(fr.node_id, fr.key, network="prod"), alert, now=now())
    check_network(env, None)
    check_network(env, "prod")
    for other in ("production", "pro", "Prod"):
        with pytest.raises(VerificationError):
            check_network(env, other)


def test_a_network_name_is_checked_when_the_identity_is_made(fr: NodeIdentity) -> None:
    for bad in ("Production", "-x", "", "a" * 64, "ex ercise"):
        with pytest.raises(ConfigError, match="not a network name"):
            NodeIdentity(fr.node_id, fr.key, network=bad)
    assert NodeIdentity(fr.node_id, fr.key, network="a" * 63).network == "a" * 63


def test_a_node_signs_for_its_directorys_network_and_no_other(fr: NodeIdentity, tmp_path: Path) -> None:
    trust = OfNetwork({"FR.GN": [fr.key.public]})
    transport = EmbeddedTransport(tmp_path / "bus.db")
    assert Node(transport, trust, fr).identity.network == "production"  # type: ignore[union-attr]
    with pytest.raises(ConfigError, match="signs for network 'exercise', not 'production'"):
        Node(transport, trust, NodeIdentity(fr.node_id, fr.key, network="exercise"))
    local = TrustStore({"FR.GN": [fr.key.public]})
    assert Node(transport, local, fr).identity.network is None  # type: ignore[union-attr]
