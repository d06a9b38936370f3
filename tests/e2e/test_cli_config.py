"""Settings and input formats as a user meets them: ``op7 config show`` and ``--format`` (real processes)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import EXAMPLE_ALERT, run_op7


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in (
        ("OP7_TOPIC_PREFIX", "op7-exercise"),
        ("OP7_KEY_PASSPHRASE", "s3cret-passphrase"),
        ("OP7_KAFKA_SASL_USERNAME", "op7"),
        ("OP7_KAFKA_SASL_PASSWORD", "sasl-s3cret"),
        ("OP7_KAFKA_SECURITY_PROTOCOL", "SASL_SSL"),
    ):
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("OP7_EMBEDDED_PATH", raising=False)


def _cells(line: str) -> list[str]:
    return re.split(r"\s{2,}", line.strip())


def _shown(home: Path, *args: str) -> dict[str, Any]:
    result = run_op7(home, *args)
    assert result.returncode == 0, result.stderr
    shown: dict[str, Any] = json.loads(result.stdout)
    return shown


@pytest.mark.usefixtures("environment")
def test_config_show_lists_the_environment_and_masks_secrets(tmp_path: Path, user_data: Path) -> None:
    result = run_op7(tmp_path, "config", "show")
    assert result.returncode == 0, result.stderr
    assert "s3cret" not in result.stdout
    header, *lines = [_cells(line) for line in result.stdout.splitlines()]
    assert header == ["SETTING", "VALUE", "FROM"]
    rows = {cells[0]: cells[1:] for cells in lines}
    assert rows["OP7_HOME"] == [str(tmp_path), "environment"]
    assert rows["OP7_TOPIC_PREFIX"] == ["op7-exercise", "environment"]
    assert rows["OP7_KEY_PASSPHRASE"] == ["***", "environment"]
    assert rows["OP7_KAFKA_SASL_PASSWORD"] == ["***", "environment"]
    assert rows["OP7_KAFKA_SASL_USERNAME"] == ["op7", "environment"]
    assert rows["OP7_BOOTSTRAP"] == ["(not set)", "default"]
    assert rows["OP7_EMBEDDED_PATH"] == [str(user_data / "op7" / "embedded.db"), "default"]
    assert rows["OP7_KAFKA_KEY_PASSWORD"] == ["(not set)", "default"]


@pytest.mark.usefixtures("environment")
def test_config_show_json_and_options_over_the_environment(tmp_path: Path) -> None:
    shown = _shown(tmp_path, "config", "show", "--json")
    assert shown["topic_prefix"] == "op7-exercise"
    assert shown["key_passphrase"] == shown["kafka_sasl_password"] == "***"
    assert shown["kafka_key_password"] is None and shown["bootstrap"] is None
    assert shown["kafka_security_protocol"] == "SASL_SSL"
    assert shown["home"] == str(tmp_path)
    # An option overrides its variable, before the command word or after it.
    assert _shown(tmp_path, "--topic-prefix", "op7-drill", "config", "show", "--json")["topic_prefix"] == "op7-drill"
    after = _shown(tmp_path, "config", "show", "--json", "--bootstrap", "kafka1:9093", "--home", str(tmp_path / "h"))
    assert after["bootstrap"] == "kafka1:9093" and after["home"] == str(tmp_path / "h")
    human = run_op7(tmp_path, "config", "show", "--topic-prefix", "op7-drill").stdout
    assert ["OP7_TOPIC_PREFIX", "op7-drill", "--topic-prefix"] in [_cells(line) for line in human.splitlines()]


def test_format_names_an_installed_adapter(tmp_path: Path) -> None:
    assert run_op7(tmp_path, "keys", "new", "FR.GN").returncode == 0
    unknown = run_op7(tmp_path, "alert", "send", str(EXAMPLE_ALERT), "--format", "xls")
    assert unknown.returncode == 1
    assert "op7: error: unknown input format 'xls'; available: cap, csv, json, notice" in unknown.stderr
    sent = run_op7(tmp_path, "send", "KidnappingAlert", str(EXAMPLE_ALERT), "--format", "json", "--json")
    assert sent.returncode == 0, sent.stderr
    assert json.loads(sent.stdout)["message_type"] == "op7.alert.KidnappingAlert"


def test_a_bad_kafka_setting_fails_only_what_reaches_kafka(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OP7_KAFKA_REPLICATION_FACTOR", "three")
    assert run_op7(tmp_path, "schemas", "list").returncode == 0
    assert run_op7(tmp_path, "keys", "new", "FR.GN").returncode == 0
    result = run_op7(tmp_path, "alert", "send", str(EXAMPLE_ALERT), bootstrap="127.0.0.1:1")
    assert result.returncode == 1
    assert "op7: error: OP7_KAFKA_REPLICATION_FACTOR='three': a whole number from 1" in result.stderr
    assert "Traceback" not in result.stderr
