"""Months of data on one machine: standard IBD over D simulated days, cache below the data.

For each length in --days (default 1, 30): simulate an index-mode run (reused when the
directory holds one), then in a fresh process per cache budget run the full standard
IBD selection cold (empty cache) and warm (same query again) and report events, pairs,
seconds, ns per event, peak RSS, the Arrow memory pool's peak and the cache's high-water
mark (``CacheStats.peak_bytes``). Below the data size the local query streams
file-aligned partitions (``jaas.engine.session.stream``), so peak RSS follows the
budget, not the data. Budgets: a large cache (in memory) and ``--small-cache`` bytes
(default: 1/10 of the index columns read, at least three files' columns). Where the
in-memory run would not fit this machine (~190 B/event, over 70% of its memory, or
--no-big), a second streamed run with 4x the small budget takes its place. Pairs, veto
bits and exposure must be identical for both budgets ("same").

Prints the curve (ns/event and peak RSS against days); --plot PATH writes it as a PNG.

Usage: .venv/bin/python bench/bench_scale.py [--days 1 30 90] [--dir DIR] [--threads N|auto]
       [--plot curve.png]
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
import gc, hashlib, json, resource, sys, time
import pyarrow as pa
from jaas.engine.session.cache import ColumnCache
from jaas.engine.session.dataset import open_dataset
budget = int(sys.argv[2])
threads = None if sys.argv[3] == "auto" else int(sys.argv[3])  # auto: the library's default
cache = ColumnCache(budget=budget)
ds = open_dataset(sys.argv[1], cache=cache)
import jaas.engine.session.analysis, jaas.engine.core.kernels  # noqa: imports first
imports = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
def digest(r):
    h = hashlib.sha256()
    for a in (r.prompt, r.delayed, r.veto_bits, r.veto_intervals, r.off_prompt,
              r.off_delayed, r.off_window):
        h.update(a.tobytes())
    h.update(repr(sorted(r.exposure.to_dict().items())).encode())
    return h.hexdigest()
t0 = time.perf_counter(); res = ds.ibd(threads=threads); cold = time.perf_counter() - t0
r = res.result
out = {"cold": cold, "pairs": int(r.prompt.size), "pairs_hash": digest(r),
       "events": int(r.veto_bits.size), "result_mb": (r.veto_bits.nbytes
       + r.veto_intervals.nbytes) / 1e6,
       "streamed": res.backend_info.address == "streaming", "files": len(ds.files),
       "imports_mb": imports}
del res, r; gc.collect()  # the bench holds one result at a time
t0 = time.perf_counter(); r2 = ds.ibd(threads=threads).result
out["warm"] = time.perf_counter() - t0
assert digest(r2) == out["pairs_hash"]
st = cache.stats()
out.update(read=st.bytes_read, held=st.bytes_cached, peak_held=st.peak_bytes,
           arrow_peak_mb=pa.default_memory_pool().max_memory() / 1e6,
           rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
print(json.dumps(out))
"""
_FILE_EVENTS = 200_000  # a streamed partition is one file plus its halo
_IN_MEMORY_B_PER_EVENT = 190  # measured peak RSS per event of the in-memory query
_BIG = 64 * 1024**3


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


def query(path: Path, budget: int, threads: str) -> dict[str, float]:
    env = {**os.environ, "PYTHONHASHSEED": "0", "JAAS_PROGRESS": "0"}
    cmd = [sys.executable, "-c", _CHILD, str(path), str(budget), str(threads)]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def _events(path: Path) -> int:
    from jaas.engine.session.dataset import open_dataset

    return open_dataset(path).n_events


def _mem_total() -> int:
    with open("/proc/meminfo") as f:
        return int(f.readline().split()[1]) * 1024


def _plot(curve: list[tuple[float, int, dict[str, float]]], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4))
    smallest = {d: min(b for dd, b, _ in curve if dd == d) for d, _, _ in curve}

    def kind(d: float, budget: int, r: dict[str, float]) -> str:
        if not r["streamed"]:
            return "in memory"
        return "streamed, small cache" if budget == smallest[d] else "streamed, larger cache"

    # one line per kind of run, so two budgets of the same length are two points, not a line
    kinds = list(dict.fromkeys(kind(d, b, r) for d, b, r in curve))
    for k, style in zip(kinds, ("o-", "s--", "^:"), strict=False):
        rows = [(d, r) for d, b, r in curve if kind(d, b, r) == k]
        for pick in ("cold", "warm"):
            pts = [(d, r[pick] / r["events"] * 1e9) for d, r in rows]
            a1.plot(*zip(*pts, strict=True), style, label=f"{pick}, {k}")
        a2.plot(*zip(*[(d, r["rss_mb"]) for d, r in rows], strict=True), style, label=k)
    a1.set(xlabel="days", ylabel="ns / event", title="standard IBD query")
    a2.set(xlabel="days", ylabel="peak RSS (MB)", title="memory")
    a1.legend()
    a2.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    print(f"plot: {path}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--days", type=float, nargs="+", default=[1.0, 30.0])
    ap.add_argument("--dir", default="/tmp/jaas_scale")
    ap.add_argument("--small-cache", type=int, default=None, help="bytes (default data/10)")
    ap.add_argument(
        "--threads", default="auto", help="query threads, or auto (the default: one per core)"
    )
    ap.add_argument("--no-big", action="store_true", help="never run the in-memory query")
    ap.add_argument("--plot", default=None, help="write the curve to this PNG")
    a = ap.parse_args()
    if a.threads != "auto" and not (a.threads.isdigit() and int(a.threads) > 0):
        ap.error(f"--threads {a.threads!r}: give a positive number or auto")
    os.environ.setdefault("JAAS_PROGRESS", "0")
    base = Path(a.dir)
    print(f"load average {os.getloadavg()}, threads {a.threads}")
    head = f"{'days':>5} {'cache MB':>9} {'events':>12} {'pairs':>6} {'cold s':>8} {'warm s':>8}"
    print(
        head + f" {'cold ns/ev':>10} {'warm ns/ev':>10} {'peak RSS MB':>11} {'imports':>7}"
        f" {'arrow pk':>8} {'result':>6} {'cache peak MB':>13} streamed same"
    )
    curve: list[tuple[float, int, dict[str, float]]] = []
    for days in a.days:
        path = run_dir(base, days)
        n = _events(path)
        fits = n * _IN_MEMORY_B_PER_EVENT < 0.7 * _mem_total() and not a.no_big
        runs: list[tuple[int, dict[str, float]]] = []
        if fits:
            big = query(path, _BIG, a.threads)
            per_file = int(big["held"]) // max(int(big["files"]), 1)
            small_budget = a.small_cache or max(int(big["held"]) // 10, 3 * per_file)
            runs.append((_BIG, big))
            runs.append((small_budget, query(path, small_budget, a.threads)))
        else:  # in memory does not fit: two streamed budgets
            from jaas.engine.session.analysis import IBDSelection, build_query, prepare
            from jaas.engine.session.dataset import open_dataset
            from jaas.engine.session.stream import query_bytes

            ds = open_dataset(path)
            sel = IBDSelection()
            spec, exprs, _ = build_query(
                prompt=sel.prompt_condition, delayed=sel.delayed_condition,
                dt=(sel.dt_min, sel.dt_max), dr=sel.dr_max, vetoes=sel.vetoes,
                offtime=sel.offtime,
            )  # fmt: skip
            data = query_bytes(ds, prepare(spec, exprs))
            small_budget = a.small_cache or max(data // 10, 3 * data // len(ds.files))
            runs.append((small_budget, query(path, small_budget, a.threads)))
            runs.append((4 * small_budget, query(path, 4 * small_budget, a.threads)))
        same = runs[0][1]["pairs_hash"] == runs[1][1]["pairs_hash"]
        for budget, r in runs:
            n = int(r["events"])
            print(
                f"{days:>5g} {budget / 1e6:>9.0f} {n:>12,.0f} {r['pairs']:>6.0f} {r['cold']:>8.2f}"
                f" {r['warm']:>8.3f} {r['cold'] / n * 1e9:>10.1f} {r['warm'] / n * 1e9:>10.1f}"
                f" {r['rss_mb']:>11.0f} {r['imports_mb']:>7.0f} {r['arrow_peak_mb']:>8.0f}"
                f" {r['result_mb']:>6.0f} {r['peak_held'] / 1e6:>13.0f}"
                f" {bool(r['streamed'])!s:>8} {same}",
                flush=True,
            )
            curve.append((days, budget, r))
    print("curve (streamed, smallest budget): days, cold ns/event, warm ns/event, peak RSS MB")
    for days in a.days:
        pts = [(b, r) for d, b, r in curve if d == days and r["streamed"]]
        if pts:
            _, r = min(pts, key=lambda x: x[0])
            n = r["events"]
            print(f"  {days:>5g} {r['cold'] / n * 1e9:8.1f} {r['warm'] / n * 1e9:8.1f} "
                  f"{r['rss_mb']:8.0f}")  # fmt: skip
    if a.plot:
        _plot(curve, a.plot)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"(this process, which simulated, peak RSS {rss:.0f} MB)")


if __name__ == "__main__":
    main()
