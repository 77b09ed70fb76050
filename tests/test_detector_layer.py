"""jaas.detector sits below sim and reco: reconstruction never loads the simulator."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import numpy as np

from jaas.detector import Detector, DetectorParams

SRC = Path(__file__).resolve().parents[1] / "src" / "jaas"


def _module_level_imports(path: Path) -> set[str]:
    """Modules imported at module level (not inside functions or TYPE_CHECKING blocks)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def test_reco_and_detector_modules_do_not_import_sim() -> None:
    offenders = {
        str(p.relative_to(SRC)): sorted(
            m for m in _module_level_imports(p) if m.startswith("jaas.sim")
        )
        for p in [*(SRC / "reco").rglob("*.py"), *(SRC / "detector").rglob("*.py")]
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_importing_reco_does_not_load_the_simulator() -> None:
    code = (
        "import sys, pkgutil, importlib, jaas.reco\n"
        "for m in pkgutil.walk_packages(jaas.reco.__path__, 'jaas.reco.'):\n"
        "    importlib.import_module(m.name)\n"
        "from jaas.reco.calib import default_calibration\n"
        "det = default_calibration().make_detector()\n"
        "print(sorted(m for m in sys.modules if m.startswith('jaas.sim')))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300
    )
    assert out.stdout.strip() == "[]"


def test_the_simulator_extends_the_shared_model() -> None:
    from jaas.sim.detector import Detector as Simulated

    base = Detector(light_scale=0.1, pmt_scale=0.01)
    sim = Simulated.from_dict(base.to_dict())
    assert isinstance(sim, Detector)
    assert sim.to_dict() == base.to_dict()
    np.testing.assert_array_equal(sim.pmt_pos, base.pmt_pos)
    np.testing.assert_array_equal(sim.pmt_is_dynode, base.pmt_is_dynode)
    np.testing.assert_allclose(
        sim.expected_pe([0, 0, 1.0], 2.0), base.expected_pe([0, 0, 1.0], 2.0)
    )
    assert not hasattr(base, "respond")
    assert base.params == DetectorParams()
