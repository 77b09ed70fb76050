"""The engine is the bottom of the analysis stack: it never imports a driver layer."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import jaas.engine

ENGINE = Path(jaas.engine.__file__).parent
DRIVERS = ("jaas.cluster", "jaas.kup", "jaas.cli")


def _imports(path: Path) -> set[str]:
    """Every module imported anywhere in ``path`` (also inside functions)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
            out |= {f"{node.module}.{a.name}" for a in node.names}
    return out


def test_no_engine_source_mentions_a_driver_layer() -> None:
    hits = [
        f"{p.relative_to(ENGINE)}:{i}"
        for p in sorted(ENGINE.rglob("*.py"))
        for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
        if any(d in line for d in DRIVERS)
    ]
    assert not hits, f"engine modules mention a driver layer: {hits}"


def test_engine_import_graph_has_no_driver_edge() -> None:
    bad = {
        f"{p.relative_to(ENGINE)} -> {m}"
        for p in sorted(ENGINE.rglob("*.py"))
        for m in _imports(p)
        if m.startswith(DRIVERS)
    }
    assert not bad, sorted(bad)


def test_importing_every_engine_module_loads_no_driver() -> None:
    names = [
        "jaas.engine." + ".".join(p.relative_to(ENGINE).with_suffix("").parts)
        for p in sorted(ENGINE.rglob("*.py"))
        if p.name != "__init__.py"
    ]
    code = (
        "import importlib, sys\n"
        f"for n in {names!r}: importlib.import_module(n)\n"
        f"bad = sorted(m for m in sys.modules if m.startswith({DRIVERS!r}))\n"
        "print(bad); raise SystemExit(1 if bad else 0)\n"
    )
    got = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert got.returncode == 0, got.stdout + got.stderr
