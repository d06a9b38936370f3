"""The Kafka ACLs of a node (broker.node.acls): what it reads, writes and joins, and the kafka-acls.sh lines."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest

from broker.cli.app import main
from broker.errors import ConfigError
from broker.node.acls import (
    DIRECTORY_FOLLOWER_GROUPS,
    QUARANTINE_READER_GROUPS,
    AclBinding,
    Operation,
    PatternType,
    ResourceType,
    kafka_acls_commands,
    node_bindings,
)
from broker.node.topics import TopicLayout
from tests.conftest import ROOT

LAYOUT = TopicLayout("op7")
READ, WRITE, DESCRIBE = Operation.READ, Operation.WRITE, Operation.DESCRIBE
TOPIC, GROUP = ResourceType.TOPIC, ResourceType.GROUP
LITERAL, PREFIXED = PatternType.LITERAL, PatternType.PREFIXED


def allowed(bindings: list[AclBinding], kind: ResourceType, name: str, operation: Operation) -> bool:
    """Whether ``bindings`` let their principal do ``operation`` on ``name`` as Kafka's authorizer decides it: a
    literal or prefix match, Read and Write imply Describe."""
    implied = {operation} | ({READ, WRITE} if operation == DESCRIBE else set())
    return any(
        b.resource_type == kind
        and b.operation in implied
        and (name == b.resource_name if b.pattern_type == LITERAL else name.startswith(b.resource_name))
        for b in bindings
    )


def test_a_node_reads_its_own_inbox_and_writes_every_inbox_but_reads_no_other() -> None:
    fr = node_bindings(LAYOUT, "FR.GN")
    assert allowed(fr, TOPIC, "op7.inbox.FR.GN", READ)
    for other in ("op7.inbox.ES.PN", "op7.inbox.NL.NCC", "op7.inbox.FR.GN2"):
        assert allowed(fr, TOPIC, other, WRITE)
        assert not allowed(fr, TOPIC, other, READ)
    assert AclBinding("User:FR.GN", TOPIC, "op7.inbox.", PREFIXED, WRITE) in fr
    assert not allowed(fr, TOPIC, "op7.quarantine.ES.PN", READ)
    assert not allowed(fr, TOPIC, "op7.quarantine.ES.PN", WRITE)


def test_shared_topics_are_read_and_written_the_directory_only_read() -> None:
    fr = node_bindings(LAYOUT, "FR.GN")
    for short in ("alerts", "cases", "requests", "reports", "receipts", "quarantine.FR.GN"):
        assert allowed(fr, TOPIC, f"op7.{short}", READ) and allowed(fr, TOPIC, f"op7.{short}", WRITE), short
    assert allowed(fr, TOPIC, "op7.directory", READ)
    assert not allowed(fr, TOPIC, "op7.directory", WRITE)
    assert allowed(fr, TOPIC, "op7.quarantine", DESCRIBE)
    assert not allowed(fr, TOPIC, "op7.quarantine", READ) and not allowed(fr, TOPIC, "op7.quarantine", WRITE)
    authority = node_bindings(LAYOUT, "NL.NA1", authority=True)
    assert allowed(authority, TOPIC, "op7.directory", WRITE)


def test_every_topic_a_node_checks_at_start_is_visible_to_it() -> None:
    fr = node_bindings(LAYOUT, "FR.GN")
    for short in [*LAYOUT.shared, *LAYOUT.of_node("FR.GN")]:
        assert allowed(fr, TOPIC, LAYOUT.name(short), DESCRIBE), short


def test_groups_are_the_node_id_and_the_throwaway_readers() -> None:
    fr = node_bindings(LAYOUT, "FR.GN")
    assert {(b.resource_name, b.pattern_type) for b in fr if b.resource_type == GROUP} == {
        ("FR.GN", LITERAL),
        (DIRECTORY_FOLLOWER_GROUPS, PREFIXED),
        (QUARANTINE_READER_GROUPS, PREFIXED),
    }
    assert {b.operation for b in fr if b.resource_type == GROUP} == {READ}
    # Not a prefix: FR.GN must not join the groups of a node FR.GNX.
    assert not allowed(fr, GROUP, "FR.GNX", READ) and not allowed(fr, GROUP, "op7.cli-listen", READ)
    # The throwaway groups are named where they are used; a rename there must show here.
    assert f'f"{DIRECTORY_FOLLOWER_GROUPS}{{' in (ROOT / "broker" / "node" / "node.py").read_text()
    assert f'f"{QUARANTINE_READER_GROUPS}{{' in (ROOT / "broker" / "cli" / "quarantine.py").read_text()


def test_the_topic_prefix_and_the_principal_are_followed() -> None:
    bindings = node_bindings(TopicLayout("op7-exercise"), "ES.PN", "User:es-pn-cert")
    assert {b.principal for b in bindings} == {"User:es-pn-cert"}
    assert allowed(bindings, TOPIC, "op7-exercise.inbox.ES.PN", READ)
    assert not allowed(bindings, TOPIC, "op7.inbox.ES.PN", READ)
    assert bindings == sorted(set(bindings))


@pytest.mark.parametrize("principal", ["FR.GN", "User:", "User:a b", "User:*", "User:a,b", "Group:x"])
def test_a_bad_principal_is_refused(principal: str) -> None:
    with pytest.raises(ConfigError, match="principal"):
        node_bindings(LAYOUT, "FR.GN", principal)


def test_a_bad_node_id_is_refused() -> None:
    with pytest.raises(ConfigError, match="node id"):
        node_bindings(LAYOUT, "fr")


def parse(line: str) -> set[AclBinding]:
    """The bindings one kafka-acls.sh --add line creates (every operation on every resource given)."""
    words = shlex.split(line)
    assert words[:2] == ["kafka-acls.sh", "--bootstrap-server"] and "--add" in words
    add = words.index("--add")
    pairs = list(zip(words[add + 1 :: 2], words[add + 2 :: 2], strict=True))
    get = {option: [v for o, v in pairs if o == option] for option, _ in pairs}
    (principal,) = get["--allow-principal"]
    (pattern,) = get["--resource-pattern-type"]
    resources = [(TOPIC, n) for n in get.get("--topic", [])] + [(GROUP, n) for n in get.get("--group", [])]
    return {
        AclBinding(principal, kind, name, PatternType(pattern), Operation(op))
        for op in get["--operation"]
        for kind, name in resources
    }


@pytest.mark.parametrize("authority", [False, True])
def test_the_kafka_acls_lines_create_exactly_the_bindings(authority: bool) -> None:
    bindings = node_bindings(LAYOUT, "FR.GN", authority=authority)
    lines = kafka_acls_commands(bindings, "broker1:9093", "/etc/op7/admin client.properties")
    assert all("--command-config '/etc/op7/admin client.properties'" in line for line in lines)
    created = [parse(line) for line in lines]
    assert set().union(*created) == set(bindings)
    assert sum(len(c) for c in created) == len(bindings)  # nothing twice
    assert len(lines) <= 7


def test_the_command_prints_the_lines_or_json(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("OP7_HOME", str(tmp_path))
    monkeypatch.delenv("OP7_BOOTSTRAP", raising=False)
    assert main(["topics", "acls", "FR.GN", "--bootstrap", "k:9093"]) == 0
    expected = kafka_acls_commands(node_bindings(LAYOUT, "FR.GN"), "k:9093", "admin.properties")
    assert capsys.readouterr().out.splitlines() == expected
    assert main(["topics", "acls", "FR.GN", "--principal", "User:fr", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == [b.as_json() for b in node_bindings(LAYOUT, "FR.GN", "User:fr")]
    assert main(["topics", "acls", "FR.GN", "--principal", "fr"]) == 1
    assert "expected User:NAME" in capsys.readouterr().err
