"""The house rules of the tree, checked: layers point one way, modules and functions stay small."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import ROOT

BROKER = ROOT / "broker"

#: Rank of each part of the library, lowest first: a module may import parts of a lower rank, or its own part.
#: The data path reads upwards: models -> wire bytes -> trust -> the node, then the programs built on it.
RANKS = {
    "errors": 0,
    "clock": 1,
    "lifecycle": 1,
    "_sqlite": 1,
    "models": 2,
    "wire": 3,
    "transport": 3,
    "trust": 4,
    "node": 5,
    "plugins": 5,
    "config": 6,
    "ops": 7,
    "audit": 7,
    "cli": 8,
    "__init__": 9,
}
MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 60


def _part(module: str) -> str:
    """``broker.wire.envelope`` -> ``wire``; ``broker`` itself -> ``__init__``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _module_of(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    return ".".join(p for p in rel.parts if p != "__init__")


def _imports(path: Path) -> list[tuple[int, str]]:
    module = _module_of(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            names = [f"{target}.{a.name}" for a in node.names] if target in ("broker",) else [target]
            found += [(node.lineno, n) for n in names]
    return found


def _sources() -> list[Path]:
    return sorted(BROKER.rglob("*.py"))


def test_every_part_of_the_library_has_a_rank() -> None:
    parts = {_part(_module_of(p)) for p in _sources()}
    assert parts <= set(RANKS), f"give these a rank in RANKS: {sorted(parts - set(RANKS))}"


def test_imports_point_down_the_layers_and_never_at_the_adapters() -> None:
    wrong = []
    for path in _sources():
        own = _part(_module_of(path))
        for line, target in _imports(path):
            where = f"{path.relative_to(ROOT)}:{line}: imports {target}"
            if target == "adapters" or target.startswith("adapters."):
                wrong.append(where + " (adapters depend on broker, never the reverse)")
            elif target.startswith("broker."):
                theirs = _part(target)
                if theirs != own and RANKS.get(theirs, 99) >= RANKS[own]:
                    wrong.append(f"{where} ({own} is rank {RANKS[own]}, {theirs} rank {RANKS.get(theirs)})")
    assert wrong == []


def test_the_layer_check_sees_a_wrong_import(tmp_path: Path) -> None:
    # The walk itself: a relative import from the wire up into the node is found and named.
    bad = BROKER / "wire" / "_layer_probe.py"
    bad.write_text("from ..node import node\n", encoding="utf-8")
    try:
        assert [t for _, t in _imports(bad)] == ["broker.node"]
    finally:
        bad.unlink()


def test_modules_and_functions_stay_small() -> None:
    long_modules, long_functions = [], []
    for path in _sources():
        text = path.read_text(encoding="utf-8")
        if path.name != "_iso.py" and len(text.splitlines()) > MAX_MODULE_LINES:
            long_modules.append(f"{path.relative_to(ROOT)}: {len(text.splitlines())} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    long_functions.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}: {length} lines")
    assert long_modules == []
    assert long_functions == []
