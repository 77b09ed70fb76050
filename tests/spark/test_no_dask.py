"""The `spark` extra does not pull in Dask: the Spark path runs with `distributed`
unimportable (the planner and the partition step are dask-free cluster pieces)."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

pytestmark = pytest.mark.spark

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import sys
sys.modules["distributed"] = None  # import distributed -> ImportError
import jaas
from jaas.cluster import plan
from jaas.cluster.worker import PartTask, Query
from jaas.engine.session.analysis import build_query, prepare
from jaas.spark import SparkBackend, executor
from jaas.spark.local import spark_home

ds = jaas.open(sys.argv[1])
built = prepare(*build_query(prompt="E > 0.7 MeV", delayed="E > 1 MeV", dt="1 ms")[:2])
names = tuple(sorted(built.columns))
before, after = built.spec.halo()
(part,) = plan.plan(ds.files[:1], before, after)
ref = plan.file_refs(ds.files[:1])[0]
q = Query(names, dict(built.exprs), built.spec, ds.segments, before, after, names)
fc = executor.load_file(0, ref.path, ref.n_events, names)
pieces = list(executor.emit_pieces(fc, q, {0: executor.Route(ref, ((0, part.lo, part.hi),))}))
task = PartTask(0, part.t_lo, part.t_hi, part.lo, part.hi, ())
(out,) = executor.run_group(0, iter(pieces), [task], q)
assert len(out.core()["t"]) == ref.n_events
assert "distributed" not in [m.split(".")[0] for m in sys.modules if sys.modules[m]]
print("ok")
"""


def test_spark_extra_has_no_dask_and_the_spark_path_imports_none() -> None:
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    assert not any("dask" in req or "distributed" in req for req in extras["spark"])


def test_spark_path_runs_without_distributed(sim_dir: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src") + os.pathsep + str(ROOT)}
    res = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(sim_dir)], env=env, capture_output=True, text=True,
        timeout=300, check=False,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr[-3000:]
    assert res.stdout.strip().endswith("ok")
