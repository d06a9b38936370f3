"""The op7 command's shape: every command documented, one module per group kept small, adapters reached only
through the ``op7.adapters`` registry, usage errors and global options as argparse had them."""

from __future__ import annotations

import ast
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import click
import pytest

from broker.cli._click import HelpArgument
from broker.cli.app import cli, main
from broker.clock import ManualClock
from broker.errors import ConfigError
from broker.models import KidnappingAlert
from broker.plugins import adapter_names, load_adapter
from tests.conftest import EXAMPLE_ALERT, ROOT

CLI = ROOT / "broker" / "cli"


def _commands(group: click.Group, path: str = "op7") -> Iterator[tuple[str, click.Command]]:
    for name, command in group.commands.items():
        yield f"{path} {name}", command
        if isinstance(command, click.Group):
            yield from _commands(command, f"{path} {name}")


def test_every_command_option_and_argument_has_help() -> None:
    missing = []
    for path, command in _commands(cli):
        if not command.help:
            missing.append(path)
        for param in command.params:
            if isinstance(param, click.Option) and not param.help:
                missing.append(f"{path} {param.opts[0]}")
            if isinstance(param, click.Argument) and not (isinstance(param, HelpArgument) and param.help):
                missing.append(f"{path} {param.name}")
    assert missing == []
    groups = {path for path, command in _commands(cli) if isinstance(command, click.Group)}
    assert {"op7 keys", "op7 alert", "op7 alerts", "op7 directory", "op7 config", "op7 schemas"} <= groups


def test_cli_modules_stay_small_and_never_import_the_adapters() -> None:
    for path in sorted(CLI.glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        assert len(path.read_text(encoding="utf-8").splitlines()) <= 500, path.name
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                assert (node.end_lineno or node.lineno) - node.lineno < 60, f"{path.name}: {node.name}"
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                assert not any(n.split(".")[0] == "adapters" for n in names), f"{path.name}:{node.lineno}"


def test_nothing_else_in_broker_imports_the_cli() -> None:
    for path in sorted((ROOT / "broker").rglob("*.py")):
        if CLI in path.parents:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module:
                assert not node.module.startswith("broker.cli"), path
            if isinstance(node, ast.Import):
                assert not any(a.name.startswith("broker.cli") for a in node.names), path


def test_adapters_come_from_the_registry(clock: ManualClock) -> None:
    assert "json" in adapter_names()
    translated = load_adapter("json")(KidnappingAlert).translate_file(EXAMPLE_ALERT, now=clock.now())
    assert isinstance(translated.message, KidnappingAlert)
    with pytest.raises(ConfigError, match=r"unknown input format 'xml'; available: .*json"):
        load_adapter("xml")


@pytest.fixture(autouse=True)
def _logging_kept() -> Iterator[None]:
    """main() sets up logging for its process; here it runs inside the test process, which keeps its own."""
    root = logging.getLogger()
    loggers = [logging.getLogger(n) for n in ("op7.node", "aiokafka")]
    saved = root.level, list(root.handlers), [lg.level for lg in loggers]
    yield
    root.setLevel(saved[0])
    root.handlers[:] = saved[1]
    for logger, level in zip(loggers, saved[2], strict=True):
        logger.setLevel(level)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("OP7_HOME", str(tmp_path))
    for name in ("OP7_BOOTSTRAP", "OP7_TOPIC_PREFIX"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


@pytest.mark.usefixtures("home")
@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        ([], "op7: error: Missing command."),
        (["keys"], "op7 keys: error: Missing command."),
        (["send", "MutualLegalAssistanceRequest", "x.json", "--deadline-in=soon"], "not a duration"),
        (["alerts", "listen", "--count", "0"], "0 is not at least 1"),
        (["directory", "add-node", "d.json", "c.pub", "--agency", "A", "--role", "King"], "--role"),
        (["keys", "new", "FR.GN", "--colour"], "--colour"),
    ],
)
def test_usage_errors_exit_2_with_the_command_named(
    argv: list[str], expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert expected in err and "Traceback" not in err


def test_global_options_count_before_or_after_the_command(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--topic-prefix", "a", "config", "show", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["topic_prefix"] == "a"
    # Where given more than once, the one nearest the command counts (as with argparse's shared options).
    assert main(["--topic-prefix", "a", "config", "--topic-prefix", "b", "show", "--json", "--topic-prefix", "c"]) == 0
    assert json.loads(capsys.readouterr().out)["topic_prefix"] == "c"
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("op7 ")


def test_long_options_may_be_abbreviated_as_with_argparse(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--topic", "a", "config", "show", "--js", "--boot=h:1"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["topic_prefix"] == "a" and shown["bootstrap"] == "h:1"
    # Ambiguous (--to or --topic-prefix): a usage error, as argparse had it.
    assert main(["send", "KidnappingAlert", "x.json", "--t", "ES.PN"]) == 2
    assert "--t" in capsys.readouterr().err
