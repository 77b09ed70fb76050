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


LAYERS = {"lang": 0, "core": 1, "session": 2}


def _runtime_imports(path: Path) -> set[str]:
    """Modules imported at import time (module level, outside ``if TYPE_CHECKING``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
    return out


def _module(path: Path) -> str:
    parts = path.relative_to(ENGINE).with_suffix("").parts
    return ".".join(("jaas.engine", *parts)).removesuffix(".__init__")


def _layer(module: str) -> int | None:
    parts = module.split(".")
    return LAYERS.get(parts[2]) if len(parts) > 2 else None


def test_layers_import_downwards_only() -> None:
    """lang <- core <- session, at import time and inside functions alike; the flat
    compatibility modules are never imported from inside a layer."""
    bad = []
    for p in sorted(ENGINE.rglob("*.py")):
        here = _layer(_module(p))
        if here is None:
            continue
        for m in _imports(p):
            if not m.startswith("jaas.engine."):
                continue
            there = _layer(m)
            if there is None or there > here:
                bad.append(f"{_module(p)} -> {m}")
    assert not bad, bad


def test_no_import_cycles_between_engine_modules() -> None:
    graph = {
        _module(p): {m for m in _runtime_imports(p) if m.startswith("jaas.engine.")}
        for p in ENGINE.rglob("*.py")
    }
    state: dict[str, int] = {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                raise AssertionError(f"import cycle: {' -> '.join([*stack, node, nxt])}")
            if nxt not in state:
                visit(nxt, [*stack, node])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [])


def test_correlate_and_partition_do_not_import_each_other_both_ways() -> None:
    core = ENGINE / "core"
    assert "jaas.engine.core.correlate" not in _imports(core / "partition.py")
    assert not any("reference" in p.name for p in ENGINE.rglob("*.py"))  # tests/ only
