"""Standard IBD selection over in-memory index columns: jaas engine vs peers, same run.

Selection (physics.md): muon veto 1.5 ms whole detector after any muon, r < 17.2 m,
prompt 0.7-12 MeV, delayed 1.9-2.5 MeV, 0 < dt < 1 ms, dR < 1.5 m, exactly one prompt.
Data: a seeded synthetic stream (singles 10 Hz uniform in the LS sphere with a
40K/208Tl-peaked spectrum, muons 3.9 Hz, IBD 57/day with tau 200 us), ~10^7 events
(8.3 days) or 10^6 with --quick; or, with --sim, the index columns of a ``jaas.sim``
index-mode run (7 days, ~1.1 10^7 events; 1 day with --quick). Every implementation
must return the same pair count.

Then cold vs warm through the user-level API on index files (a ``jaas.sim`` run):
``jaas.open(dir).ibd()`` (the full standard selection: four vetoes, 200 off-time windows,
exposure) with an empty column cache (reads Parquet), then ``ibd(dr_max="1.2 m")``
(cached columns and masks: compute only).

Usage: .venv/bin/python bench/bench_ibd.py [--quick] [--sim] [--days D] [--sim-dir DIR]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _peers
from jaas.engine.core.correlate import correlate, standard_ibd

DAY = 86_400.0
R_LS = 17.7  # LS sphere radius, m (physics.md, V: arXiv:2201.11321)


def synth(days: float, seed: int = 2024) -> dict[str, np.ndarray]:
    """Seeded synthetic index stream: t, E, x, y, z, muon (time-sorted)."""
    rng = np.random.default_rng(seed)
    dur = days * DAY
    t0 = 1_700_000_000 * 10**9

    def ball(n: int) -> np.ndarray:
        v = rng.normal(size=(n, 3))
        v *= (R_LS * np.cbrt(rng.random(n)) / np.linalg.norm(v, axis=1))[:, None]
        return v

    n_s = rng.poisson(10.0 * dur)
    kind = rng.random(n_s)
    e_s = np.where(
        kind < 0.55,
        rng.uniform(0.7, 2.0, n_s),
        np.where(
            kind < 0.75,
            rng.normal(1.46, 0.04, n_s),
            np.where(kind < 0.85, rng.normal(2.61, 0.05, n_s), 3 + rng.exponential(1.0, n_s)),
        ),
    )
    p_s = ball(n_s)
    n_m = rng.poisson(3.9 * dur)
    e_m = rng.uniform(200, 20_000, n_m)
    p_m = np.zeros((n_m, 3))
    n_i = rng.poisson(57 * days)
    p_p = ball(n_i)
    p_d = p_p + rng.normal(0, 0.3, (n_i, 3))
    t_p = rng.uniform(0, dur, n_i)
    t_d = t_p + rng.exponential(200e-6, n_i)
    t = np.concatenate([rng.uniform(0, dur, n_s), rng.uniform(0, dur, n_m), t_p, t_d])
    e = np.concatenate([e_s, e_m, rng.uniform(1.0, 8.0, n_i), rng.normal(2.2, 0.05, n_i)])
    pos = np.concatenate([p_s, p_m, p_p, p_d])
    mu = np.concatenate([np.zeros(n_s, bool), np.ones(n_m, bool), np.zeros(2 * n_i, bool)])
    order = np.argsort(t, kind="stable")
    cols = {
        "t": t0 + (t[order] * 1e9).astype(np.int64),
        "E": e[order].astype(np.float32),
        "x": pos[order, 0].astype(np.float32),
        "y": pos[order, 1].astype(np.float32),
        "z": pos[order, 2].astype(np.float32),
        "muon": mu[order],
    }
    return cols


SPEC = standard_ibd()


def ours(cols: dict[str, np.ndarray], threads: int = 1, parts: int | None = None) -> int:
    """End to end from columns: masks (numpy), vetoes, coincidence, exposure."""
    e, x, y, z, mu = cols["E"], cols["x"], cols["y"], cols["z"], cols["muon"]
    r2 = x * x
    r2 += y * y
    r2 += z * z
    fid = r2 < np.float32(_peers.R_FV**2)
    prompt = (e > np.float32(0.7)) & (e < np.float32(12.0)) & fid & ~mu
    delayed = (e > np.float32(1.9)) & (e < np.float32(2.5)) & fid
    t = cols["t"]
    stream = {"t": t, "x": x, "y": y, "z": z, "muon": mu, "prompt": prompt, "delayed": delayed}
    seg = [[int(t[0]) - 10**10, int(t[-1]) + 1]]  # before the first muon: no gap veto effect
    n = t.size
    part = None if parts is None else -(-n // parts)
    res = correlate(stream, SPEC, seg, partition_events=part, threads=threads)
    return int(res.prompt.size)


def sim_dir(days: float, where: str | None) -> str:
    """A ``jaas.sim`` index-mode run of ``days`` (seed 1), reused if ``where`` holds one."""
    from jaas.sim.run import simulate

    out = where or os.path.join(tempfile.gettempdir(), f"jaas_bench_ibd_{days:g}d")
    if not os.path.isdir(os.path.join(out, "index")):
        t0 = time.perf_counter()
        cfg = {"duration_s": days * DAY, "seed": 1, "mode": "index", "write_truth": False}
        simulate(cfg, out)
        print(f"simulated {days:g} days into {out} in {time.perf_counter() - t0:.1f} s")
    return out


def sim_columns(path: str) -> dict[str, np.ndarray]:
    """The bench columns of a sim run (time-sorted, as the dataset serves them)."""
    import jaas

    cols = jaas.open(path).load(["t", "E", "x", "y", "z", "muon"])
    return {k: np.ascontiguousarray(v) for k, v in cols.items()}


def cold_warm(path: str, threads: int, repeat: int) -> tuple[float, float, int, int]:
    """Best-of-``repeat`` cold (empty cache) and warm (changed dr) ``ds.ibd()`` times."""
    import jaas
    from jaas.engine.session.cache import ColumnCache

    cold, warm = [], []
    n = pairs = 0
    for _ in range(repeat):
        ds = jaas.open(path, cache=ColumnCache())
        t0 = time.perf_counter()
        r = ds.ibd(threads=threads)
        cold.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        ds.ibd(dr_max="1.2 m", threads=threads)
        warm.append(time.perf_counter() - t0)
        n, pairs = int(r.columns["t"].size), int(r.result.prompt.size)
    return min(cold), min(warm), n, pairs


_FRESH = """
import json, sys, time
t0 = time.perf_counter()
import jaas
ds = jaas.open(sys.argv[1])
r = ds.ibd()
cold = time.perf_counter() - t0
t0 = time.perf_counter()
ds.ibd(dr_max="1.2 m")
print(json.dumps([cold, time.perf_counter() - t0, int(r.result.prompt.size)]))
"""


def cold_warm_fresh(path: str, repeat: int) -> tuple[float, float, int]:
    """Cold in a new process (import, numba cache load, Parquet, compute), then warm."""
    import json
    import subprocess

    runs = []
    for _ in range(repeat):
        out = subprocess.run(
            [sys.executable, "-c", _FRESH, path], capture_output=True, text=True, check=True
        )
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return min(r[0] for r in runs), min(r[1] for r in runs), int(runs[0][2])


def best(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    out, times = None, []
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="~10^6 events instead of ~10^7")
    ap.add_argument("--days", type=float, default=None, help="stream length in days")
    ap.add_argument(
        "--python-events",
        type=int,
        default=1_000_000,
        help="prefix length for the plain-Python loop (extrapolated)",
    )
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--sim", action="store_true", help="stream from a jaas.sim index run")
    ap.add_argument("--sim-days", type=float, default=None, help="sim run length (days)")
    ap.add_argument("--sim-dir", default=None, help="reuse (or create) the sim run here")
    a = ap.parse_args()
    days = a.days if a.days is not None else (0.83 if a.quick else 8.3)
    sim_days = a.sim_days if a.sim_days is not None else (1.0 if a.quick else 7.0)
    path = sim_dir(sim_days, a.sim_dir)

    t0 = time.perf_counter()
    if a.sim:
        cols, days = sim_columns(path), sim_days
        what = f"jaas.sim index run {path}"
    else:
        cols, what = synth(days), "synthetic"
    n = cols["t"].size
    print(f"stream: {n:,} events, {days} days ({what}), ready in {time.perf_counter() - t0:.1f} s")

    small = {k: v[:20_000] for k, v in cols.items()}
    t0 = time.perf_counter()
    ours(small)
    ours(small, threads=2, parts=4)
    jit = time.perf_counter() - t0
    print(f"numba first call (JIT or cache load), excluded from timings: {jit:.2f} s")

    rows: list[tuple[str, float, int, str]] = []  # name, seconds per n events, pairs, note
    sec, pairs = best(lambda: ours(cols), a.repeat)
    rows.append(("jaas engine, 1 thread", sec, pairs, ""))
    sec2, p2 = best(lambda: ours(cols, threads=2, parts=2), a.repeat)
    rows.append(("jaas engine, 2 threads (2 partitions)", sec2, p2, ""))
    assert p2 == pairs, (p2, pairs)
    sec8, p8 = best(lambda: ours(cols, threads=2, parts=8), a.repeat)
    rows.append(("jaas engine, 2 threads (8 partitions)", sec8, p8, ""))
    assert p8 == pairs, (p8, pairs)

    sec_c, _ = best(lambda: _peers.copy_bound(cols), a.repeat)
    rows.append(("memory-copy bound (6 columns)", sec_c, pairs, "bound"))

    m = min(a.python_events, n)
    pre = {k: v[:m] for k, v in cols.items()}
    sp, pp = best(
        lambda: _peers.python_loop(*(pre[k] for k in ("t", "E", "x", "y", "z", "muon"))), 1
    )
    assert pp == ours(pre), (pp, ours(pre))
    note = "" if m == n else f"run on first {m:,} events, extrapolated"
    rows.append(("plain-Python event-buffer loop", sp * n / m, pairs, note))

    for threads in (1, 2):
        sd, pd_ = best(lambda th=threads: _peers.duckdb_query(cols, th), 1)
        assert pd_ == pairs, (pd_, pairs)
        rows.append((f"DuckDB window + IEJoin, {threads} thread(s)", sd, pairs, ""))

    if _peers.root_available():
        sr_jit, pr = best(lambda: _peers.root_rdf(cols), 1)
        sr, pr = best(lambda: _peers.root_rdf(cols), 2)
        assert pr == pairs, (pr, pairs)
        rows.append(("ROOT RDataFrame + C++ helper, after JIT", sr, pairs, ""))
        rows.append(("ROOT RDataFrame, first run incl. JIT", sr_jit, pairs, ""))
    else:
        print("ROOT RDataFrame: skipped: ROOT not installed")

    cw = {th: cold_warm(path, th, a.repeat) for th in (1, 2)}
    fresh = cold_warm_fresh(path, a.repeat)

    peers = [r for r in rows if not r[0].startswith("jaas") and r[3] != "bound"]
    fastest = min(peers, key=lambda r: r[1])
    print(f"\n{'implementation':<44}{'M ev/s':>9}{'pairs':>7}  note")
    for name, s, p, note in rows:
        print(f"{name:<44}{n / s / 1e6:9.1f}{p:7d}  {note}")
    print(f"\nours (1 thread) / fastest peer ({fastest[0]}): {fastest[1] / sec:.1f}x")
    print(f"ours (2 threads) / fastest peer: {fastest[1] / sec2:.1f}x")
    print(f"ours (1 thread) / copy bound: {100 * sec_c / sec:.0f} %")
    print(f"ours (2 threads) / copy bound: {100 * sec_c / sec2:.0f} %")
    print(f"ours 2 threads / 1 thread speed-up: {sec / sec2:.2f}x")

    print(f"\ncold vs warm, jaas.open(dir).ibd() on {path} (full standard selection):")
    print(f"{'threads':<9}{'events':>12}{'pairs':>7}{'cold s':>9}{'warm s':>9}{'cold/warm':>11}")
    for th, (c, w, ne, npairs) in cw.items():
        print(f"{th:<9}{ne:12,d}{npairs:7d}{c:9.3f}{w:9.3f}{c / w:10.1f}x")
    c, w, npairs = fresh
    ne = cw[1][2]
    print(f"{'1 fresh':<9}{ne:12,d}{npairs:7d}{c:9.3f}{w:9.3f}{c / w:10.1f}x")
    print("(cold: empty column cache, numba kernels loaded; 'fresh': first query of a new")
    print(" process, as a notebook's first cell: import + numba cache load + Parquet + compute)")


if __name__ == "__main__":
    main()
