"""``op7 schemas release`` writes into a schema tree one keeps, never into the installed package."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT, run_op7


def test_release_into_a_tree_one_names(tmp_path: Path) -> None:
    tree = tmp_path / "schemas"
    shutil.copytree(ROOT / "schemas", tree)
    released = run_op7(tmp_path / "home", "schemas", "release", "99", "--schemas", str(tree))
    assert released.returncode == 0, released.stderr
    assert {p.name for p in (tree / "released" / "99").glob("*.avsc")} == {p.name for p in tree.glob("*.avsc")}


def _run(*args: str | Path, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False
    )


def test_release_refuses_the_installed_package(tmp_path: Path) -> None:
    """A user who installed op7 (a wheel, in a virtual environment) and runs ``op7 schemas release``."""
    built = _run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", tmp_path, ROOT,
                 cwd=tmp_path)  # fmt: skip
    assert built.returncode == 0, built.stderr
    (wheel,) = tmp_path.glob("op7_exchange-*.whl")
    venv = tmp_path / "venv"
    assert _run(sys.executable, "-m", "venv", "--system-site-packages", venv, cwd=tmp_path).returncode == 0
    installed = _run(venv / "bin" / "python", "-m", "pip", "install", "-q", "--no-deps", "--no-index", wheel,
                     cwd=tmp_path)  # fmt: skip
    assert installed.returncode == 0, installed.stderr
    env = {**os.environ, "OP7_HOME": str(tmp_path / "home")}
    found = _run(venv / "bin" / "python", "-c", "from broker.wire.schemas import schema_dir; print(schema_dir())",
                 cwd=tmp_path, env=env)  # fmt: skip
    shipped = Path(found.stdout.strip())
    assert shipped.is_relative_to(venv) and shipped.name == "_schemas", found.stderr
    for args in ((), ("--schemas", str(shipped))):
        refused = _run(venv / "bin" / "op7", "schemas", "release", "99", *args, cwd=tmp_path, env=env)
        assert refused.returncode == 1, refused.stdout
        assert f"op7: error: {shipped}: the schemas installed with op7" in refused.stderr
        assert "--schemas DIR" in refused.stderr and "Traceback" not in refused.stderr
    assert not (shipped / "released" / "99").exists()
