"""``op7 keys protect``: the keys of a home made without a passphrase, encrypted with scrypt afterwards."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import EXAMPLE_ALERT, run_op7


@pytest.fixture
def loose_umask() -> Iterator[None]:
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def test_op7_keys_protect_encrypts_the_keys_of_a_home_made_without_a_passphrase(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, loose_umask: None
) -> None:
    home = tmp_path / "home"
    made = run_op7(home, "keys", "new", "FR.GN")
    assert made.returncode == 0, made.stderr
    assert f"{home / 'keys' / 'FR.GN.key'}: private key written unprotected" in made.stderr
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    listed = run_op7(home, "keys", "list").stdout
    assert "(private key here; not encrypted: op7 keys protect FR.GN)" in listed, listed
    refused = run_op7(home, "keys", "protect", "FR.GN")
    assert refused.returncode == 1 and "set OP7_KEY_PASSPHRASE" in refused.stderr
    monkeypatch.setenv("OP7_KEY_PASSPHRASE", "s3cret-passphrase")
    protected = run_op7(home, "keys", "protect", "FR.GN")
    assert protected.returncode == 0, protected.stderr
    assert f"encrypted {home / 'keys' / 'FR.GN.key'} with scrypt" in protected.stdout
    sent = run_op7(home, "alert", "send", str(EXAMPLE_ALERT))
    assert sent.returncode == 0, sent.stderr
    assert "WARNING" not in sent.stderr
    listed = run_op7(home, "keys", "list").stdout
    assert "(private key here)" in listed and "not encrypted" not in listed
