from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from broker.config import Home, Settings
from broker.errors import ConfigError, VerificationError
from broker.trust.directory import DirectoryDocument
from broker.trust.store import PublicKeyCard, TrustStore
from broker.wire.signing import SigningKey


def test_trust_store_round_trip(tmp_path: Path) -> None:
    a, b = SigningKey.generate(), SigningKey.generate()
    store = TrustStore({"FR.GN": [a.public, b.public]})
    store.save(tmp_path / "trust.json")
    loaded = TrustStore.load(tmp_path / "trust.json")
    assert loaded.key_for("FR.GN", b.public.key_id) == b.public
    with pytest.raises(VerificationError) as info:
        loaded.key_for("ES.PN", a.public.key_id)
    assert info.value.reason == "unknown-sender"


_DIRECTORY = '{"format": "op7-signed-directory/1", '


@pytest.mark.parametrize(
    ("load", "content", "fragment"),
    [
        (TrustStore.load, "{", "cannot read JSON"),
        (TrustStore.load, '{"format": "other", "nodes": {}}', "not an op7 trust store"),
        (TrustStore.load, '{"format": "op7-trust-store/1", "nodes": {"france": []}}', "CC.AGENCY"),
        (TrustStore.load, '{"format": "op7-trust-store/1", "nodes": {"FR.GN": [{"public_key": "AAAA"}]}}', "32 bytes"),
        (
            TrustStore.load,
            '{"format": "op7-trust-store/1", "nodes": {"FR.GN": [{"key_id": "00", '
            '"public_key": "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="}]}}',
            "does not match",
        ),
        (DirectoryDocument.from_file, '{"format": "other"}', "not an op7 directory file"),
        (DirectoryDocument.from_file, _DIRECTORY + '"body": "not base64!"}', "body is not valid base64"),
        (DirectoryDocument.from_file, _DIRECTORY + '"body": "", "signatures": [{"key_id": "00"}]}', "malformed"),
        (DirectoryDocument.from_file, _DIRECTORY + '"body": "", "signatures": ["x"]}', "malformed"),
    ],
)
def test_bad_trust_files_name_the_file_and_problem(
    tmp_path: Path, load: Callable[[Path], object], content: str, fragment: str
) -> None:
    path = tmp_path / "trust.json"
    path.write_text(content)
    with pytest.raises(ConfigError, match=fragment) as info:
        load(path)
    assert str(path) in str(info.value)


def test_home_keys_are_private_and_cards_load(tmp_path: Path) -> None:
    home = Home(tmp_path)
    key, key_path, card_path = home.new_key("FR.GN")
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    assert PublicKeyCard.load(card_path).key == key.public
    assert home.identity("FR.GN").key.public == key.public
    with pytest.raises(ConfigError, match="already exists"):
        home.new_key("FR.GN")
    os.chmod(key_path, 0o644)
    with pytest.raises(ConfigError, match="readable by other users"):
        home.identity("FR.GN")
    with pytest.raises(ConfigError, match=r"op7 keys new ES\.PN"):
        home.identity("ES.PN")
    assert "PRIVATE" not in card_path.read_text()
    assert json.loads(card_path.read_text())["key_id"] == key.public.key_id.hex()


def test_passphrase_protected_keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OP7_KEY_PASSPHRASE", "s3cret")
    home = Home(tmp_path)
    _, key_path, _ = home.new_key("FR.GN")
    assert b"ENCRYPTED" in key_path.read_bytes()
    home.identity("FR.GN")
    monkeypatch.setenv("OP7_KEY_PASSPHRASE", "wrong")
    with pytest.raises(ConfigError, match="passphrase"):
        Home(tmp_path).identity("FR.GN")  # a home reads its settings once, when it is opened


def test_missing_or_wrong_passphrase_names_the_file_and_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OP7_KEY_PASSPHRASE", "s3cret")
    _, key_path, _ = Home(tmp_path).new_key("FR.GN")
    monkeypatch.delenv("OP7_KEY_PASSPHRASE")
    with pytest.raises(ConfigError) as missing:
        Home(tmp_path).identity("FR.GN")
    assert str(missing.value).startswith(f"{key_path}: the private key is encrypted and OP7_KEY_PASSPHRASE is not set")
    with pytest.raises(ConfigError, match="OP7_KEY_PASSPHRASE is not set"):
        Home(tmp_path).opener("FR.GN")
    monkeypatch.setenv("OP7_KEY_PASSPHRASE", "wrong")
    with pytest.raises(ConfigError, match=f"{key_path}: cannot decrypt .* OP7_KEY_PASSPHRASE: wrong passphrase"):
        Home(tmp_path).identity("FR.GN")
    monkeypatch.delenv("OP7_KEY_PASSPHRASE")
    _, clear_path, _ = Home(tmp_path / "clear").new_key("ES.PN")
    monkeypatch.setenv("OP7_KEY_PASSPHRASE", "s3cret")
    with pytest.raises(ConfigError, match=f"{clear_path}: the private key is not encrypted, but OP7_KEY_PASSPHRASE"):
        Home(tmp_path / "clear").identity("ES.PN")


def test_a_home_must_be_a_folder(tmp_path: Path) -> None:
    path = tmp_path / "home"
    path.write_text("")
    with pytest.raises(ConfigError, match=f"home {path}: a file, not a folder; OP7_HOME"):
        Home(path)
    Home(tmp_path / "not-yet")  # created when first written


def test_the_embedded_file_is_the_users_by_default(
    tmp_path: Path, user_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert Home(tmp_path / "a").embedded_path == Home(tmp_path / "b").embedded_path == user_data / "op7" / "embedded.db"
    monkeypatch.delenv("XDG_DATA_HOME")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert Settings.load().embedded_path == tmp_path / ".local" / "share" / "op7" / "embedded.db"
    monkeypatch.setenv("OP7_EMBEDDED_PATH", str(tmp_path / "exercise.db"))
    assert Home(tmp_path / "a").embedded_path == tmp_path / "exercise.db"


def test_state_is_kept_per_network(tmp_path: Path) -> None:
    def home(**settings: str) -> Home:
        return Home(tmp_path, settings=Settings.load(**settings))

    embedded = home().exchanges_path("FR.GN")
    kafka = home(bootstrap="Kafka1:9092,kafka2:9092").exchanges_path("FR.GN")
    assert kafka == home(bootstrap="kafka2:9092, kafka1:9092").exchanges_path("FR.GN")  # same cluster, same state
    paths = {
        embedded,
        kafka,
        home(bootstrap="kafka3:9092").exchanges_path("FR.GN"),
        home(topic_prefix="op7-exercise").exchanges_path("FR.GN"),
        home(embedded_path=str(tmp_path / "other.db")).exchanges_path("FR.GN"),
    }
    assert len(paths) == 5 and all(p.name == "exchanges-FR.GN.db" for p in paths)
    assert kafka.parent.name.startswith("kafka-op7-") and embedded.parent.name.startswith("embedded-op7-")
    assert json.loads((kafka.parent / "network.json").read_text()) == {
        "format": "op7-network/1",
        "transport": "kafka",
        "address": "kafka1:9092,kafka2:9092",
        "topic_prefix": "op7",
    }
    assert home().replay_path("NL.NCC") == embedded.parent / "replay-NL.NCC.db"
    assert home(bootstrap="kafka3:9092").replay_path("NL.NCC").parent != embedded.parent


def test_holders_of_a_key(tmp_path: Path) -> None:
    key = SigningKey.generate().public
    store = TrustStore({"FR.GN": [key], "ES.PN": [key], "NL.NCC": [SigningKey.generate().public]})
    assert store.holders(key.key_id) == ["ES.PN", "FR.GN"]
