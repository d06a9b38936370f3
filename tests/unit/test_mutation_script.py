"""scripts/mutation reads mutmut's output and scores each module (the mutation run itself is not part of the suite)."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT

RESULTS = """\
    broker.wire.merkle.x_leaf_hash__mutmut_1: killed
    broker.wire.merkle.x_root_from_path__mutmut_4: survived
    broker.wire.merkle.x_root_from_path__mutmut_7: timeout
    broker.trust.directory.xǁDirectoryAnchorǁload__mutmut_2: survived
    broker.trust.directory.xǁDirectoryAnchorǁload__mutmut_3: no tests
    broker.trust.replay.x_fresh__mutmut_1: killed
"""

SHOW = """\
# broker.wire.merkle.x_root_from_path__mutmut_4: survived
--- broker/wire/merkle.py
+++ broker/wire/merkle.py
@@ -3,7 +3,7 @@
     \"\"\"
-    if not 0 <= index < size:
+    if not 0 <= index <= size:
         return None
"""


@pytest.fixture(scope="module")
def script() -> Any:
    loader = importlib.machinery.SourceFileLoader("mutation_script", str(ROOT / "scripts" / "mutation"))
    spec = importlib.util.spec_from_loader("mutation_script", loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["mutation_script"] = module  # its dataclasses look their module up there
    loader.exec_module(module)
    return module


def test_results_and_diffs_are_parsed(script: Any) -> None:
    mutants = script.parse_results("Some chatter\n" + RESULTS)
    assert [(m.name.rsplit(".", 1)[-1], m.status) for m in mutants][:2] == [
        ("x_leaf_hash__mutmut_1", "killed"),
        ("x_root_from_path__mutmut_4", "survived"),
    ]
    assert [m.module for m in mutants] == ["broker.wire.merkle"] * 3 + ["broker.trust.directory"] * 2 + [
        "broker.trust.replay"
    ]
    assert mutants[3].function == "broker.trust.directory.xǁDirectoryAnchorǁload"
    mutants[1].diff = script.parse_show(SHOW)
    assert mutants[1].diff == ["-    if not 0 <= index < size:", "+    if not 0 <= index <= size:"]
    assert mutants[1].mutated == "if not 0 <= index <= size:"


def test_scores_count_timeouts_as_killed_and_exclude_listed_equivalents(script: Any, capsys: Any) -> None:
    mutants = script.parse_results(RESULTS)
    mutants[1].diff = script.parse_show(SHOW)
    equivalents = [
        {
            "function": "broker.wire.merkle.x_root_from_path",
            "mutated": "if not 0 <= index <= size:",
            "reason": "for the test",
        }
    ]
    scores = script.score(mutants, ["broker.wire.merkle", "broker.trust.directory"], equivalents)
    merkle, directory = scores["broker.wire.merkle"], scores["broker.trust.directory"]
    assert (merkle.killed, merkle.counted, merkle.excluded, merkle.percent) == (2, 2, 1, 100.0)
    assert (directory.killed, directory.counted, directory.excluded, directory.percent) == (0, 2, 0, 0.0)
    assert "broker.trust.replay" not in scores  # a module not asked for is left out

    assert script.report(scores, mutants, threshold=90.0) is False
    out = capsys.readouterr().out
    assert "broker.trust.directory" in out and "under 90%" in out
    assert "xǁDirectoryAnchorǁload__mutmut_3  [no tests]" in out
    assert "x_root_from_path__mutmut_4: for the test" in out  # listed as excluded, with its reason
    assert script.report({"broker.wire.merkle": merkle}, mutants, threshold=90.0) is True


def test_the_equivalents_file_gives_a_reason_for_each_entry(script: Any, tmp_path: Path) -> None:
    assert all(e["reason"].strip() for e in script.load_equivalents(script.EQUIVALENTS))
    bad = tmp_path / "equivalents.toml"
    bad.write_text('[[equivalent]]\nfunction = "broker.wire.merkle.x_root"\nmutated = "x"\n')
    with pytest.raises(SystemExit, match="lacks reason"):
        script.load_equivalents(bad)


def test_every_configured_module_exists(script: Any) -> None:
    assert script.configured_modules()  # each one a module of the tree, else it exits naming it
