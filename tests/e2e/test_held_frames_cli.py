"""A node added to the directory sends at once; a receiver whose directory lags holds its alert, and shows it when the
version listing the node arrives (embedded transport, homes as operators set them up)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from tests.conftest import EXAMPLE_ALERT
from tests.e2e.test_directory_cli import net  # noqa: F401 (the fixture: an authority, FR.GN and a receiver's homes)


def test_an_alert_from_a_node_the_receivers_directory_does_not_list_yet_is_held_then_shown(
    net: dict[str, Any],  # noqa: F811
    tmp_path: Path,
) -> None:
    op7, draft, homes = net["op7"], net["draft"], net["homes"]
    for authority in ("NL.NA1", "NL.NA2"):
        assert op7("authority", "directory", "sign", draft, "--as", authority).returncode == 0
    v1 = tmp_path / "v1.json"
    shutil.copy(draft, v1)
    for home in ("ops", "authority"):
        assert op7(home, "directory", "anchor", str(v1)).returncode == 0
    assert op7("authority", "directory", "publish", str(v1)).returncode == 0
    assert op7("ops", "listen", "--as", "NL.NCC", "--timeout", "2").returncode == 0  # NL.NCC now holds version 1

    # Version 2 adds ES.PN; ES.PN holds it (installed by hand), NL.NCC does not have it yet.
    homes["es"] = tmp_path / "es"
    assert op7("es", "keys", "new", "ES.PN").returncode == 0
    card = str(homes["es"] / "keys" / "ES.PN.pub")
    added = op7("authority", "directory", "add-node", draft, card, "--agency", "PN", "--role", "NationalNode")
    assert added.returncode == 0, added.stderr
    for authority in ("NL.NA2", "NL.NA3"):
        assert op7("authority", "directory", "sign", draft, "--as", authority).returncode == 0
    assert op7("es", "directory", "anchor", str(v1)).returncode == 0
    for version in (v1, draft):
        installed = op7("es", "directory", "install", str(version))
        assert installed.returncode == 0, installed.stderr
    alert = json.loads(EXAMPLE_ALERT.read_text())
    alert["issuer"]["node"] = "ES.PN"
    spanish = tmp_path / "spanish-alert.json"
    spanish.write_text(json.dumps(alert))
    sent = op7("es", "alert", "send", str(spanish), "--json")
    assert sent.returncode == 0, sent.stderr
    message_id = json.loads(sent.stdout)["message_id"]

    held = op7("ops", "listen", "--as", "NL.NCC", "--json", "--timeout", "3")
    assert held.returncode == 0, held.stderr
    assert held.stdout == ""  # not shown: ES.PN is unknown to version 1...
    assert "held op7" in held.stderr and "until the directory lists its sender" in held.stderr  # ...but told
    assert "unknown-sender" not in op7("ops", "quarantine", "list").stdout  # ...and not thrown away either

    assert op7("authority", "directory", "publish", draft).returncode == 0
    shown = op7("ops", "listen", "--as", "NL.NCC", "--json", "--timeout", "4")
    assert shown.returncode == 0, shown.stderr
    (line,) = shown.stdout.splitlines()
    assert json.loads(line)["envelope"]["message_id"] == message_id
    assert json.loads(line)["envelope"]["sender"] == "ES.PN"
