"""What a user gets from the distribution, and how the suite behaves without Kafka."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

from tests.conftest import ROOT


def test_wheel_ships_the_schemas_inside_the_package(tmp_path: Path) -> None:
    # The build backend comes with the test extras: building needs no registry (whose TLS certificates a machine with
    # its clock moved years ahead would find expired).
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--quiet",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = tmp_path.glob("op7_exchange-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {Path(n).name for n in names if n.startswith("broker/_schemas/")}
    assert shipped == {p.name for p in (ROOT / "schemas").glob("*.avsc")}
    assert "broker/cli/__init__.py" in names and "adapters/base.py" in names
    assert not any(n.endswith((".key", ".pem")) for n in names)
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "op7 = broker.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()


def _pytest_without_kafka(ci: bool) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OP7_TEST_BOOTSTRAP": "127.0.0.1:1", "CI": "true" if ci else ""}
    test = "tests/integration/test_kafka_alert_path.py::test_broker_grants_the_producer_an_idempotent_id"
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", test],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_kafka_tests_fail_under_ci_when_kafka_is_unreachable() -> None:
    result = _pytest_without_kafka(ci=True)
    assert result.returncode == 1, result.stdout
    assert "under CI the Kafka tests must run" in result.stdout
    assert "1 error" in result.stdout or "1 failed" in result.stdout


def test_kafka_tests_skip_on_a_developer_machine_without_kafka() -> None:
    result = _pytest_without_kafka(ci=False)
    assert result.returncode == 0, result.stdout
    assert "1 skipped" in result.stdout
