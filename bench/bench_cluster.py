"""Distributed IBD on a local Dask cluster of real processes vs the in-process engine.

Data: a seeded ``jaas.sim`` index-mode run with 30x the reactor IBD rate (0.5 day,
~0.9 10^6 events in ~35 files;
0.05 day with --quick). Query: the full standard IBD selection (four vetoes incl. two
cylinders around muon tracks, 200 off-time windows, exposure with the volume-veto
Monte Carlo), every backend must return the identical pairs.

Measured in the same run:
  * local engine (peer, one process): cold (empty column cache) and warm;
  * cluster with 1 and with 2 worker processes (kernels loaded on a tiny query first):
    cold (workers read Parquet) and warm (cached columns and masks), i.e. scaling
    1 -> 2 workers;
  * per-query overhead: warm queries on a tiny dataset (60 s, 1 file), cluster minus
    local, median of 10;
  * hardware bound: the local warm time divided by the cores used (perfect scaling).

Usage: .venv/bin/python bench/bench_cluster.py [--quick] [--days D]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

os.environ.setdefault("JAAS_PROGRESS", "0")

import numpy as np

import jaas
from jaas.cluster import connect
from jaas.cluster import local as local_cluster
from jaas.engine.session.cache import ColumnCache
from jaas.sim import SimConfig, simulate


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def make_data(root: Path, days: float) -> tuple[Path, Path]:
    big, tiny = root / "big", root / "tiny"
    simulate(
        SimConfig(
            duration_s=days * 86400,
            seed=7,
            mode="index",
            scale={"reactor_ibd": 30},
            max_events_per_file=25_000,
        ),
        big,
    )
    simulate(SimConfig(duration_s=60, seed=8, mode="index"), tiny)
    return big, tiny


def cluster_run(n: int, big: Path, tiny: Path, state: Path, ref: Any) -> dict[str, float]:
    lc = local_cluster.start(n, state_dir=state / f"w{n}", dashboard=False)
    try:
        with connect(lc.address) as c:
            small = jaas.open(tiny, cache=ColumnCache())
            c.ibd(small)  # loads the numba kernels in the fresh worker processes
            ds = jaas.open(big, cache=ColumnCache())
            cold, res = timed(lambda: c.ibd(ds))
            assert np.array_equal(res.result.delayed, ref.result.delayed), "pairs differ"
            assert res.exposure == ref.exposure, "exposure differs"
            warm, res2 = timed(lambda: c.ibd(ds))
            assert res2.n_pairs == ref.n_pairs
            stats = c.cache_stats()
            over = statistics.median(timed(lambda: c.ibd(small))[0] for _ in range(10))
            return {
                "cold": cold,
                "warm": warm,
                "tiny": over,
                "parts": float(len(res.backend_info.partitions)),
                "cached_mb": sum(s.bytes_cached for s in stats.values()) / 1e6,
            }
    finally:
        local_cluster.stop(state / f"w{n}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="0.05 day instead of 0.5")
    ap.add_argument("--days", type=float, default=None)
    args = ap.parse_args()
    days = args.days or (0.05 if args.quick else 0.5)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        t_sim, (big, tiny) = timed(lambda: make_data(root, days))
        ds = jaas.open(big, cache=ColumnCache())
        print(f"data: {ds.n_events:,} events, {len(ds.files)} files, {days} day "
              f"(simulated in {t_sim:.1f} s); cores: {os.cpu_count()}")  # fmt: skip
        jaas.ibd(jaas.open(tiny, cache=ColumnCache()))  # JIT warm-up
        l_cold, ref = timed(lambda: jaas.ibd(ds))
        l_warm, _ = timed(lambda: jaas.ibd(ds))
        small = jaas.open(tiny, cache=ColumnCache())
        jaas.ibd(small)
        l_tiny = statistics.median(timed(lambda: jaas.ibd(small))[0] for _ in range(10))
        runs = {n: cluster_run(n, big, tiny, root, ref) for n in (1, 2)}

    cores = min(os.cpu_count() or 1, 2)
    print(f"\nstandard IBD, {ref.n_pairs} pairs (identical on every backend)\n")
    print(f"{'backend':<22}{'cold s':>9}{'warm s':>9}{'warm/cold':>11}{'parts':>7}")
    print(f"{'local engine (peer)':<22}{l_cold:>9.3f}{l_warm:>9.3f}{l_warm / l_cold:>11.2f}{1:>7}")
    for n, r in runs.items():
        name = f"dask {n} worker(s)"
        print(f"{name:<22}{r['cold']:>9.3f}{r['warm']:>9.3f}{r['warm'] / r['cold']:>11.2f}"
              f"{int(r['parts']):>7}")  # fmt: skip
    r1, r2 = runs[1], runs[2]
    print("\nratios")
    print(f"  scaling warm 1 -> 2 workers        {r1['warm'] / r2['warm']:6.2f} x (ideal 2)")
    print(f"  scaling cold 1 -> 2 workers        {r1['cold'] / r2['cold']:6.2f} x")
    print(f"  dask 2 workers vs local, warm      {r2['warm'] / l_warm:6.2f} x the time")
    bound = l_warm / cores
    print(f"  dask 2 workers vs bound ({cores} cores)   {r2['warm'] / bound:6.2f} x "
          f"(bound = local warm / cores = {bound:.3f} s)")  # fmt: skip
    over = 1e3 * (r2["tiny"] - l_tiny)
    print(
        f"  per-query overhead (tiny, warm)    {over:6.1f} ms "
        f"(dask {1e3 * r2['tiny']:.1f} vs local {1e3 * l_tiny:.1f} ms, median of 10)"
    )
    print(f"  worker caches after the queries    {r2['cached_mb']:6.1f} MB on 2 workers")


if __name__ == "__main__":
    main()
