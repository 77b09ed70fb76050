"""Distributed IBD on a local Dask cluster of real processes vs the in-process engine.

Data: a seeded ``jaas.sim`` index-mode run with 30x the reactor IBD rate (0.5 day,
~0.9 10^6 events in ~35 files;
0.05 day with --quick). Query: the full standard IBD selection (four vetoes incl. two
cylinders around muon tracks, 200 off-time windows, exposure with the volume-veto
Monte Carlo), every backend must return the identical pairs.

Measured in the same run, a 1-worker and a 2-worker cluster alive side by side:
  * cold: local engine (empty column cache), each cluster (workers read Parquet);
  * warm, interleaved repetitions (local, 1 worker, 2 workers, again...), query plus its
    ``pairs`` table: scaling 1 -> 2 workers and the ratio to the local engine;
  * per-query overhead: warm queries on a tiny dataset (60 s, 1 file), cluster minus
    local, medians over the interleaved repetitions;
  * hardware bound: the local warm time divided by the cores used (perfect scaling).

With ``--vary`` every repetition changes the muon veto window (1.5 ms + k * 10 us, the
same on every backend within a repetition, identical pairs checked): the memoised veto
phase cannot be reused, so the warm query is CPU-bound on the workers.

Usage: .venv/bin/python bench/bench_cluster.py [--quick] [--days D] [--reps N] [--vary]
       [--sim-dir DIR]   (reuse DIR/big and DIR/tiny, simulated there if missing)
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
    if any(big.glob("**/*.parquet")) and any(tiny.glob("**/*.parquet")):
        return big, tiny
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


def _check(res: Any, ref: Any) -> None:
    assert np.array_equal(res.result.delayed, ref.result.delayed), "pairs differ"
    assert np.array_equal(res.result.prompt, ref.result.prompt), "pairs differ"
    assert res.exposure == ref.exposure, "exposure differs"
    assert res.pairs.equals(ref.pairs), "pair table differs"


def _vetoes(rep: int) -> tuple[Any, ...]:
    """The standard vetoes with the muon window 1.5 ms + rep * 10 us."""
    from dataclasses import replace

    from jaas.engine.session.analysis import IBDSelection

    first, *rest = IBDSelection().vetoes
    return (replace(first, window=f"{1500 + 10 * rep} us"), *rest)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="0.05 day instead of 0.5")
    ap.add_argument("--days", type=float, default=None)
    ap.add_argument("--reps", type=int, default=5, help="interleaved repetitions")
    ap.add_argument("--vary", action="store_true", help="a new muon veto window per rep")
    ap.add_argument("--sim-dir", type=Path, default=None, help="reuse data simulated here")
    args = ap.parse_args()
    days = args.days or (0.05 if args.quick else 0.5)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        t_sim, (big, tiny) = timed(lambda: make_data(args.sim_dir or root, days))
        ds = jaas.open(big, cache=ColumnCache())
        small = jaas.open(tiny, cache=ColumnCache())
        print(f"data: {ds.n_events:,} events, {len(ds.files)} files in {big} "
              f"(simulated in {t_sim:.1f} s); cores: {os.cpu_count()}; "
              f"load average {os.getloadavg()[0]:.1f}")  # fmt: skip
        jaas.ibd(small)  # JIT warm-up
        l_cold, ref = timed(lambda: jaas.ibd(ds))
        tiny_ref = jaas.ibd(small)
        clusters = {n: local_cluster.start(n, state_dir=root / f"w{n}", dashboard=False)
                    for n in (1, 2)}  # fmt: skip
        try:
            conns = {n: connect(lc.address) for n, lc in clusters.items()}
            cold: dict[str, float] = {"local": l_cold}
            for n, c in conns.items():
                c.ibd(small)  # loads the numba kernels in the fresh worker processes
                cold[f"dask{n}"], res = timed(lambda c=c: c.ibd(ds))
                _check(res, ref)
                _check(c.ibd(small), tiny_ref)
            runners: dict[str, Callable[..., Any]] = {"local": lambda d, **kw: jaas.ibd(d, **kw)}
            for n, c in conns.items():
                runners[f"dask{n}"] = lambda d, c=c, **kw: c.ibd(d, **kw)
            warm: dict[str, list[float]] = {k: [] for k in runners}
            tiny_t: dict[str, list[float]] = {k: [] for k in runners}
            for rep in range(args.reps):  # interleaved: load changes hit every backend alike
                kw = {"vetoes": _vetoes(rep)} if args.vary else {}
                first = None
                for k, fn in runners.items():
                    dt, res = timed(lambda fn=fn, kw=kw: fn(ds, **kw))
                    warm[k].append(dt + timed(lambda res=res: res.pairs)[0])
                    first = first or res
                    _check(res, first)
                    for _ in range(3):
                        tiny_t[k].append(timed(lambda fn=fn: fn(small).pairs)[0])
            stats = conns[2].cache_stats()
            parts = {n: len(c.ibd(ds).backend_info.partitions) for n, c in conns.items()}
            for c in conns.values():
                c.close()
        finally:
            for n in clusters:
                local_cluster.stop(root / f"w{n}")
    med = {k: statistics.median(v) for k, v in warm.items()}
    tmed = {k: statistics.median(v) for k, v in tiny_t.items()}
    cores = min(os.cpu_count() or 1, 2)
    what = "muon veto window new each rep (veto phase recomputed)" if args.vary else "same query"
    print(f"\nstandard IBD (+ pairs table), {ref.n_pairs} pairs (identical on every backend); "
          f"median of {args.reps} interleaved warm runs, {what}\n")  # fmt: skip
    print(f"{'backend':<22}{'cold s':>9}{'warm s':>9}{'tiny ms':>9}{'parts':>7}")
    for k in runners:
        p = parts.get(int(k[4:]), 1) if k.startswith("dask") else 1
        print(f"{k:<22}{cold[k]:>9.3f}{med[k]:>9.3f}{1e3 * tmed[k]:>9.1f}{p:>7}")
    print("\nratios")
    print(f"  scaling warm 1 -> 2 workers        {med['dask1'] / med['dask2']:6.2f} x (ideal 2)")
    print(f"  dask 2 workers vs local, warm      {med['dask2'] / med['local']:6.2f} x the time")
    print(f"  dask 1 worker vs local, warm       {med['dask1'] / med['local']:6.2f} x the time")
    bound = med["local"] / cores
    print(f"  dask 2 workers vs bound ({cores} cores)   {med['dask2'] / bound:6.2f} x "
          f"(bound = local warm / cores = {bound:.3f} s)")  # fmt: skip
    for k in ("dask1", "dask2"):
        over = 1e3 * (tmed[k] - tmed["local"])
        print(f"  per-query overhead {k} (tiny)     {over:6.1f} ms "
              f"({1e3 * tmed[k]:.1f} vs local {1e3 * tmed['local']:.1f} ms)")  # fmt: skip
    mb = sum(s.bytes_cached for s in stats.values()) / 1e6
    print(f"  worker caches after the queries    {mb:6.1f} MB on 2 workers")
    print(f"  load average at the end            {os.getloadavg()[0]:6.1f}")


if __name__ == "__main__":
    main()
