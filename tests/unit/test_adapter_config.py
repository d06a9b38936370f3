"""The run files of ``op7 adapter run``: the examples load, and a wrong one is refused key by key."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.config import load
from broker.errors import ConfigError
from tests.conftest import ROOT

EXAMPLES = sorted((ROOT / "examples" / "adapters").rglob("*.toml"))


@pytest.mark.parametrize(
    "path", [p for p in EXAMPLES if p.name != "alerts.toml"], ids=lambda p: p.parent.name + "/" + p.name
)
def test_each_example_run_file_loads_with_its_paths_beside_it(path: Path) -> None:
    config = load(path)
    assert config.node == "FR.GN"
    if config.inbound is not None and config.inbound.folder is not None:
        assert config.inbound.folder.path.parent == path.parent
    if "mapping" in config.settings:
        assert Path(config.settings["mapping"]).exists()


def test_a_wrong_run_file_is_refused_with_every_problem_by_key(tmp_path: Path) -> None:
    path = tmp_path / "run.toml"
    path.write_text(
        'as = "FR.GN"\n[inbound.webhook]\nlisten = "everywhere"\n[[inbound.webhook.clients]]\nname = "x y"\n'
        'token_sha256 = "abc"\n[outbound.webhook]\nurl = "ftp://x"\nsecret_env = "lower"\n'
    )
    with pytest.raises(ConfigError) as caught:
        load(path)
    text = str(caught.value)
    for key in (
        "inbound.webhook.listen",
        "inbound.webhook.clients.0.name",
        "inbound.webhook.clients.0.token_sha256",
        "outbound.webhook.url",
        "outbound.webhook.secret_env",
    ):
        assert f"run.toml: {key}:" in text, text


def test_a_run_file_that_is_not_toml_or_runs_nothing_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "run.toml"
    path.write_text("as = ")
    with pytest.raises(ConfigError, match="not TOML"):
        load(path)
    path.write_text('as = "FR.GN"\n')
    with pytest.raises(ConfigError, match="nothing to run"):
        load(path)
    with pytest.raises(ConfigError, match="no such configuration file"):
        load(tmp_path / "missing.toml")


def test_the_webhook_key_comes_from_the_environment_and_is_long_enough(monkeypatch: pytest.MonkeyPatch) -> None:
    hook = load(ROOT / "examples" / "adapters" / "webhook.toml").outbound
    assert hook is not None and hook.webhook is not None
    monkeypatch.delenv("OP7_WEBHOOK_SECRET", raising=False)
    with pytest.raises(ConfigError, match=r"OP7_WEBHOOK_SECRET .*not set"):
        hook.webhook.secret()
    monkeypatch.setenv("OP7_WEBHOOK_SECRET", "short")
    with pytest.raises(ConfigError, match="too short"):
        hook.webhook.secret()
    monkeypatch.setenv("OP7_WEBHOOK_SECRET", "x" * 32)
    assert hook.webhook.secret() == b"x" * 32
