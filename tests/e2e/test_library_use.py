"""The README's library example runs as a user would paste it."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import broker
from tests.conftest import ROOT


def test_the_readme_library_example_publishes_and_receives(tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Library use") :]
    code = re.search(r"```python\n(.*?)```", section, re.S)
    assert code is not None
    (tmp_path / "example.py").write_text(code.group(1), encoding="utf-8")
    run = subprocess.run(
        [sys.executable, "example.py"], cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout == "FR.GN Child abducted in Lyon\n"


def test_the_public_api_is_listed_and_importable() -> None:
    assert len(broker.__all__) == len(set(broker.__all__))
    for name in broker.__all__:
        assert getattr(broker, name) is not None, name
    for name in ("Node", "Subscription", "ExchangeAgent", "SigningKey", "TrustStore", "Clock", "Op7Error"):
        assert name in broker.__all__
