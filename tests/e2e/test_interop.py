"""A second implementation, written from docs/PROTOCOL.md alone, agrees with the committed test vectors."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.conftest import ROOT, under_ci

NODE_DIR = ROOT / "interop" / "node"


def test_independent_node_verifier_accepts_and_refuses_every_vector() -> None:
    if shutil.which("node") is None or shutil.which("npm") is None:
        if under_ci():
            pytest.fail("Node.js and npm are needed for the interoperability check", pytrace=False)
        pytest.skip("Node.js is not installed")
    if not (NODE_DIR / "node_modules" / "avsc").is_dir():
        subprocess.run(["npm", "ci", "--silent", "--no-audit", "--no-fund"], cwd=NODE_DIR, check=True, timeout=300)
    result = subprocess.run(
        ["node", "verify.mjs"], cwd=NODE_DIR, capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    summary = result.stdout.strip().splitlines()[-1]
    passed, failed = (int(part.split()[0]) for part in summary.split(", "))
    assert failed == 0 and passed >= 40, summary
