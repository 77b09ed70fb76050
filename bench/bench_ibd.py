"""Standard IBD selection over in-memory index columns: jaas engine vs peers, same run.

Selection (physics.md): muon veto 1.5 ms whole detector after any muon, r < 17.2 m,
prompt 0.7-12 MeV, delayed 1.9-2.5 MeV, 0 < dt < 1 ms, dR < 1.5 m, exactly one prompt.
Data: a seeded synthetic stream (singles 10 Hz uniform in the LS sphere with a
40K/208Tl-peaked spectrum, muons 3.9 Hz, IBD 57/day with tau 200 us), ~10^7 events
(8.3 days) or 10^6 with --quick. Every implementation must return the same pair count.

Usage: .venv/bin/python bench/bench_ibd.py [--quick] [--days D] [--python-events N]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _peers
from jaas.engine.correlate import correlate, standard_ibd

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
    a = ap.parse_args()
    days = a.days if a.days is not None else (0.83 if a.quick else 8.3)

    t0 = time.perf_counter()
    cols = synth(days)
    n = cols["t"].size
    print(f"stream: {n:,} events, {days} days, generated in {time.perf_counter() - t0:.1f} s")

    small = {k: v[:20_000] for k, v in cols.items()}
    t0 = time.perf_counter()
    ours(small)
    ours(small, threads=2, parts=4)
    jit = time.perf_counter() - t0
    print(f"numba first call (JIT or cache load), excluded from timings: {jit:.2f} s")

    rows: list[tuple[str, float, int, str]] = []  # name, seconds per n events, pairs, note
    sec, pairs = best(lambda: ours(cols), a.repeat)
    rows.append(("jaas engine, 1 thread", sec, pairs, ""))
    sec2, p2 = best(lambda: ours(cols, threads=2, parts=8), a.repeat)
    rows.append(("jaas engine, 2 threads (8 partitions)", sec2, p2, ""))
    assert p2 == pairs, (p2, pairs)

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

    peers = [r for r in rows if not r[0].startswith("jaas") and r[3] != "bound"]
    fastest = min(peers, key=lambda r: r[1])
    print(f"\n{'implementation':<44}{'M ev/s':>9}{'pairs':>7}  note")
    for name, s, p, note in rows:
        print(f"{name:<44}{n / s / 1e6:9.1f}{p:7d}  {note}")
    print(f"\nours (1 thread) / fastest peer ({fastest[0]}): {fastest[1] / sec:.1f}x")
    print(f"ours (2 threads) / fastest peer: {fastest[1] / sec2:.1f}x")
    print(f"ours (1 thread) / copy bound: {100 * sec_c / sec:.0f} %")
    print(f"ours (2 threads) / copy bound: {100 * sec_c / sec2:.0f} %")


if __name__ == "__main__":
    main()
