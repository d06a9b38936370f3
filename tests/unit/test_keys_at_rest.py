"""Private keys at rest: encrypted with scrypt (a memory-hard KDF) under OP7_KEY_PASSPHRASE, loud warnings about keys
kept in clear or under the old PBKDF2 encryption, ``op7 keys protect`` to encrypt them again, and a home that only
its owner can open."""

from __future__ import annotations

import base64
import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from broker.config import Home
from broker.errors import ConfigError

# DER of the object identifiers that name the key derivation in an EncryptedPrivateKeyInfo.
SCRYPT = bytes.fromhex("06092b06010401da47040b")
PBKDF2 = bytes.fromhex("06092a864886f70d01050c")


def der_of(pem: bytes) -> bytes:
    return base64.b64decode(b"".join(line for line in pem.splitlines() if not line.startswith(b"-----")))


def warnings_of(caplog: pytest.LogCaptureFixture) -> str:
    return "\n".join(r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING)


@pytest.fixture
def loose_umask() -> Iterator[None]:
    """A umask that lets the group and others read what is created: the home must not depend on a strict one."""
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def test_a_passphrase_encrypts_keys_with_scrypt_not_pbkdf2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OP7_KEY_PASSPHRASE", "s3cret")
    home = Home(tmp_path / "home")
    key, key_path, _ = home.new_key("FR.GN")
    for path in (key_path, home.enc_key_path("FR.GN")):
        der = der_of(path.read_bytes())
        assert SCRYPT in der[:40] and PBKDF2 not in der
        # N = 2^15, r = 8, p = 1 follow the 16-byte salt: INTEGER 0x008000, 8, 1.
        assert bytes.fromhex("0203008000020108020101") in der[:80]
        # A standard EncryptedPrivateKeyInfo: cryptography itself reads it back.
        serialization.load_pem_private_key(path.read_bytes(), b"s3cret")
    assert home.identity("FR.GN").key.public == key.public
    assert home.opener("FR.GN") is not None


def test_keys_in_clear_are_warned_about_when_written_and_when_loaded(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    home = Home(tmp_path / "home")
    _, key_path, _ = home.new_key("FR.GN")
    written = warnings_of(caplog)
    assert f"{key_path}: private key written unprotected" in written and "op7 keys protect FR.GN" in written
    assert f"{home.enc_key_path('FR.GN')}: private key written unprotected" in written
    caplog.clear()
    fresh = tmp_path / "copy"
    (fresh / "keys").mkdir(parents=True, mode=0o700)
    os.chmod(fresh, 0o700)
    copy = fresh / "keys" / "FR.GN.key"
    copy.write_bytes(key_path.read_bytes())
    os.chmod(copy, 0o600)
    Home(fresh).identity("FR.GN")
    loaded = warnings_of(caplog)
    assert f"{copy}: private key is unprotected (not encrypted)" in loaded
    assert "OP7_KEY_PASSPHRASE" in loaded and "op7 keys protect FR.GN" in loaded


def test_keys_under_the_old_pbkdf2_encryption_load_with_a_warning_and_are_protected_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("OP7_KEY_PASSPHRASE", "s3cret")
    home = Home(tmp_path / "home")
    key, key_path, _ = home.new_key("FR.GN")
    old_enc = home.enc_key_path("FR.GN")
    # As op7 wrote keys before: PKCS#8 encrypted by cryptography (PBKDF2-HMAC-SHA256, 2,048 iterations).
    for path in (key_path, old_enc):
        loaded = serialization.load_pem_private_key(path.read_bytes(), b"s3cret")
        old = loaded.private_bytes(  # type: ignore[union-attr]
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"s3cret"),
        )
        assert PBKDF2 in der_of(old)
        path.write_bytes(old)
    caplog.clear()
    assert home.identity("FR.GN").key.public == key.public
    warned = warnings_of(caplog)
    assert f"{key_path}: private key is encrypted with a weak key derivation (PBKDF2" in warned
    assert "op7 keys protect FR.GN" in warned
    assert home.protect("FR.GN") == [key_path, old_enc]
    assert SCRYPT in der_of(key_path.read_bytes())[:40] and SCRYPT in der_of(old_enc.read_bytes())[:40]
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    caplog.clear()
    assert Home(tmp_path / "home").identity("FR.GN").key.public == key.public
    assert warnings_of(caplog) == ""
    assert home.protect("FR.GN") == []  # nothing left to do
    monkeypatch.setenv("OP7_KEY_PASSPHRASE", "wrong")
    (key_path.parent / "FR.GN.0011223344556677.old.key").write_bytes(old)
    os.chmod(key_path.parent / "FR.GN.0011223344556677.old.key", 0o600)
    with pytest.raises(ConfigError, match=r"FR\.GN\.0011223344556677\.old\.key: cannot decrypt .* wrong passphrase"):
        Home(tmp_path / "home").protect("FR.GN")


def test_a_new_home_is_open_to_its_owner_only(tmp_path: Path, loose_umask: None) -> None:
    home = Home(tmp_path / "home")
    _, key_path, _ = home.new_key("FR.GN")
    assert stat.S_IMODE(home.root.stat().st_mode) == 0o700
    assert stat.S_IMODE(home.keys_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE(key_path.stat().st_mode) == stat.S_IMODE(home.enc_key_path("FR.GN").stat().st_mode) == 0o600
    state = Home(tmp_path / "state-first")
    state.state_dir()  # a home first written by a command that keeps state, not keys
    assert stat.S_IMODE(state.root.stat().st_mode) == 0o700


def test_a_home_open_to_others_is_warned_about(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    root = tmp_path / "home"
    root.mkdir(mode=0o700)
    Home(root)
    assert "open to other users" not in warnings_of(caplog)
    os.chmod(root, 0o755)
    Home(root)
    assert f"home {root} is open to other users (mode 755)" in warnings_of(caplog)
    assert f"chmod 700 {root}" in warnings_of(caplog)
