"""A node whose directory was installed weeks ago still starts after an authority key's planned end: the op7 commands
load the chain kept in its home, and a version signed with the lapsed key is refused."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from broker.cli import main
from broker.clock import ManualClock
from broker.models.directory import SignedDirectory
from broker.trust import admin
from broker.trust.directory import DirectoryDocument
from broker.trust.store import PublicKeyCard
from broker.wire.signing import EncryptionKey, SigningKey
from tests.conftest import run_op7

AUTHORITIES = [SigningKey.generate() for _ in range(3)]


def signed_by(signed: SignedDirectory, *keys: SigningKey) -> SignedDirectory:
    for key in keys:
        signed = admin.sign(signed, key)
    return signed


def test_a_node_starts_after_an_authority_key_s_planned_end(
    tmp_path: Path, clock: ManualClock, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    home, today = tmp_path / "home", clock.now()
    weeks_ago = today - timedelta(days=30)
    end = today - timedelta(days=5)  # the first authority key's planned end, passed since

    def first_key_ends(data: dict[str, Any]) -> None:
        data["authorities"][0]["valid_until"] = end

    cards = [PublicKeyCard(f"NL.NA{i}", k.public, EncryptionKey.generate().public) for i, k in enumerate(AUTHORITIES)]
    v1 = admin.edit(admin.create("op7-test", 2, cards, now=weeks_ago), first_key_ends, now=weeks_ago)
    v1 = signed_by(v1, *AUTHORITIES[:2])
    v2 = signed_by(admin.renew(v1, now=weeks_ago + timedelta(days=1)), *AUTHORITIES[:2])
    files = {name: tmp_path / f"{name}.json" for name in ("v1", "v2", "v3-lapsed", "v3")}
    DirectoryDocument(v1).to_file(files["v1"])
    DirectoryDocument(v2).to_file(files["v2"])

    # Weeks ago, the operator installed the anchor and versions 1 and 2 (the op7 command, run at that time).
    monkeypatch.setenv("OP7_HOME", str(home))
    clock.set(weeks_ago)
    assert main(["directory", "anchor", str(files["v1"])]) == 0
    assert main(["directory", "install", str(files["v1"])]) == 0
    clock.set(weeks_ago + timedelta(days=1))
    assert main(["directory", "install", str(files["v2"])]) == 0
    assert "valid: network op7-test version 2" in capsys.readouterr().out

    # Today, the op7 command loads the chain kept in the home.
    held = run_op7(home, "directory", "verify", str(files["v2"]))
    assert held.returncode == 0, held.stderr
    assert "valid: network op7-test version 2" in held.stdout and "the version held" in held.stdout
    v3 = admin.renew(v2, now=today)
    DirectoryDocument(signed_by(v3, *AUTHORITIES[:2])).to_file(files["v3-lapsed"])
    lapsed = run_op7(home, "directory", "install", str(files["v3-lapsed"]))
    assert lapsed.returncode == 1
    assert "directory version 3 refused (version 2 held): 1 valid signature(s)" in lapsed.stderr
    DirectoryDocument(signed_by(v3, *AUTHORITIES[1:])).to_file(files["v3"])
    installed = run_op7(home, "directory", "install", str(files["v3"]))
    assert installed.returncode == 0, installed.stderr
    assert "valid: network op7-test version 3" in installed.stdout
