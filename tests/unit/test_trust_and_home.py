from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from broker.config import Home
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
