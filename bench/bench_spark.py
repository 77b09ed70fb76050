"""Standard IBD on Spark (``local[2]``) vs a 2-worker Dask cluster vs the local engine.

Data and query as in ``bench_cluster.py`` (a seeded ``jaas.sim`` index-mode run, the full
standard IBD selection); every backend must return the identical pairs and exposure.
Measured on the same data, all backends up at once:

- cold: the first query on the big dataset (empty caches; Spark reads the files into its
  persisted column RDD, Dask into its workers' caches);
- warm: a query with new cuts (another ``dr_max`` per repetition) on cached columns,
  ``--reps`` repetitions interleaved across the backends (local, spark, dask, local,
  ...), so that load from elsewhere on the machine hits all of them alike; median;
- overhead: median warm query on a tiny dataset (60 s) minus the local engine's.

Usage: .venv/bin/python bench/bench_spark.py [--days D] [--reps N] [--no-dask]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("JAAS_PROGRESS", "0")

import numpy as np

import jaas
from bench_cluster import make_data, timed
from jaas.engine.session.cache import ColumnCache
from jaas.spark import SparkBackend

Query = Callable[[jaas.Dataset, float], Any]  # (dataset, dr_max in m) -> result


def _check(res: Any, ref: Any) -> None:
    assert np.array_equal(res.result.delayed, ref.result.delayed), "pairs differ"
    assert res.exposure == ref.exposure, "exposure differs"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--days", type=float, default=0.05)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--no-dask", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        root = Path(tmp)
        big, tiny = make_data(root, args.days)
        probe = jaas.open(big, cache=ColumnCache())
        print(f"data: {probe.n_events:,} events, {len(probe.files)} files, {args.days} day")
        runners: dict[str, Query] = {"local": lambda ds, dr: ds.ibd(dr_max=f"{dr} m")}
        spark = stack.enter_context(SparkBackend("local[2]"))
        runners["spark local[2]"] = lambda ds, dr: ds.ibd(backend=spark, dr_max=f"{dr} m")
        if not args.no_dask:
            from jaas.cluster import connect
            from jaas.cluster import local as local_cluster

            lc = local_cluster.start(2, state_dir=root / "dask", dashboard=False)
            stack.callback(local_cluster.stop, root / "dask")
            c = stack.enter_context(connect(lc.address))
            runners["dask 2 workers"] = lambda ds, dr: c.ibd(ds, dr_max=f"{dr} m")
        first: dict[str, float] = {}
        datasets = {name: jaas.open(big, cache=ColumnCache()) for name in runners}
        smalls = {name: jaas.open(tiny, cache=ColumnCache()) for name in runners}
        for name, run in runners.items():  # JVM, executors, numba kernels in the workers
            first[name], _ = timed(lambda run=run, name=name: run(smalls[name], 1.5))
        cold: dict[str, float] = {}
        ref = None
        for name, run in runners.items():
            cold[name], res = timed(lambda run=run, name=name: run(datasets[name], 1.5))
            ref = res if ref is None else ref
            _check(res, ref)
        warm: dict[str, list[float]] = {n: [] for n in runners}
        tiny_t: dict[str, list[float]] = {n: [] for n in runners}
        spark_reads: list[int] = []
        n_parts = 0
        for k in range(args.reps):
            dr = 1.0 + 0.1 * k  # new cuts every repetition: compute, not I/O
            for name, run in runners.items():
                t, res = timed(lambda run=run, name=name, dr=dr: run(datasets[name], dr))
                warm[name].append(t)
                if name.startswith("spark"):
                    spark_reads.append(spark.last_files_read)
                    n_parts = len(res.backend_info.partitions)
                small = smalls[name]
                tiny_t[name].append(timed(lambda run=run, small=small, dr=dr: run(small, dr))[0])
    assert ref is not None
    l_tiny = statistics.median(tiny_t["local"])
    print(f"\nstandard IBD, {ref.n_pairs} pairs (identical on every backend), "
          f"{args.reps} interleaved warm repetitions (medians)\n")  # fmt: skip
    print(f"{'backend':<18}{'first s':>9}{'cold s':>9}{'warm s':>9}{'tiny s':>9}{'overhead s':>12}")
    for name in runners:
        w, t = statistics.median(warm[name]), statistics.median(tiny_t[name])
        print(f"{name:<18}{first[name]:>9.2f}{cold[name]:>9.3f}{w:>9.3f}{t:>9.3f}"
              f"{t - l_tiny:>12.3f}")  # fmt: skip
    print(f"\nspark: files read by the warm queries: {spark_reads}; last query {n_parts} parts")


if __name__ == "__main__":
    main()
