"""Months of data on one machine: standard IBD over D simulated days, cache below the data.

For each length in --days (default 1, 30): simulate an index-mode run (reused when the
directory holds one), then in a fresh process per cache budget run the full standard
IBD selection cold (empty cache) and warm (same query again) and report events, pairs,
seconds, ns per event, peak RSS and the cache's high-water mark
(``CacheStats.peak_bytes``). Below the data size the local query streams file-aligned
partitions (``jaas.engine.session.stream``), so peak RSS follows the budget, not the
data. Budgets: a large cache and ``--small-cache`` bytes (default: 1/10 of the index
columns read, at least three files' columns). Pairs, veto bits and exposure must be
identical for both budgets.

Usage: .venv/bin/python bench/bench_scale.py [--days 1 30 90] [--dir DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

_CHILD = """
import json, resource, sys, time
from jaas.engine.session.cache import ColumnCache
from jaas.engine.session.dataset import open_dataset
budget = int(sys.argv[2])
cache = ColumnCache(budget=budget)
ds = open_dataset(sys.argv[1], cache=cache)
t0 = time.perf_counter(); res = ds.ibd(); cold = time.perf_counter() - t0
r = res.result
t0 = time.perf_counter(); r2 = ds.ibd().result; warm = time.perf_counter() - t0
assert (r.prompt == r2.prompt).all()
st = cache.stats()
print(json.dumps({"cold": cold, "warm": warm, "pairs": int(r.prompt.size),
                  "pairs_hash": hash(r.prompt.tobytes() + r.delayed.tobytes()
                                     + r.veto_bits.tobytes()
                                     + repr(sorted(r.exposure.to_dict().items())).encode()),
                  "events": int(r.veto_bits.size), "read": st.bytes_read,
                  "held": st.bytes_cached, "peak_held": st.peak_bytes,
                  "streamed": res.backend_info.address == "streaming",
                  "files": len(ds.files),
                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""
_FILE_EVENTS = 200_000  # a streamed partition is one file plus its halo


def run_dir(base: Path, days: float) -> Path:
    out = base / f"scale_{days:g}d_f{_FILE_EVENTS // 1000}k"
    if not any(out.glob("run*.json")):
        from jaas.sim.run import simulate

        t0 = time.perf_counter()
        cfg = {"duration_s": days * 86400, "seed": 1, "write_truth": False,
               "max_events_per_file": _FILE_EVENTS}  # fmt: skip
        s = simulate(cfg, out)
        print(f"simulated {days:g} d ({s.n_events:,} events) in {time.perf_counter() - t0:.1f} s")
    return out


def query(path: Path, budget: int) -> dict[str, float]:
    env = {**os.environ, "PYTHONHASHSEED": "0", "JAAS_PROGRESS": "0"}
    cmd = [sys.executable, "-c", _CHILD, str(path), str(budget)]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--days", type=float, nargs="+", default=[1.0, 30.0])
    ap.add_argument("--dir", default="/tmp/jaas_bench_scale")
    ap.add_argument("--small-cache", type=int, default=None, help="bytes (default data/10)")
    a = ap.parse_args()
    os.environ.setdefault("JAAS_PROGRESS", "0")
    base = Path(a.dir)
    print(f"load average {os.getloadavg()}")
    head = f"{'days':>5} {'cache MB':>9} {'events':>12} {'pairs':>6} {'cold s':>8} {'warm s':>8}"
    print(
        head + f" {'cold ns/ev':>10} {'warm ns/ev':>10} {'peak RSS MB':>11} "
        f"{'cache peak MB':>13} streamed same"
    )
    for days in a.days:
        path = run_dir(base, days)
        big = query(path, 64 * 1024**3)
        # data/10, but room for the files of one partition (a file and its neighbours)
        per_file = int(big["held"]) // max(int(big["files"]), 1)
        small_budget = a.small_cache or max(int(big["held"]) // 10, 3 * per_file)
        small = query(path, small_budget)
        same = big["pairs_hash"] == small["pairs_hash"]
        for budget, r in ((64 * 1024**3, big), (small_budget, small)):
            n = r["events"]
            print(
                f"{days:>5g} {budget / 1e6:>9.0f} {n:>12,.0f} {r['pairs']:>6.0f} {r['cold']:>8.2f}"
                f" {r['warm']:>8.3f} {r['cold'] / n * 1e9:>10.1f} {r['warm'] / n * 1e9:>10.1f}"
                f" {r['rss_mb']:>11.0f} {r['peak_held'] / 1e6:>13.0f} {bool(r['streamed'])!s:>8}"
                f" {same}"
            )
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"(this process, which simulated, peak RSS {rss:.0f} MB)")


if __name__ == "__main__":
    main()
