"""Selection panel latency: slider release -> exact query + histograms, and the instant
estimate while dragging, on the cached columns of a ``jaas.sim`` index-mode run.

Aims (issue 11): release to updated histogram < 150 ms locally on 10^7 cached events
(7 days of the default simulation ~ 1.1 10^7 events), estimate while dragging < 30 ms.
The release time is the panel's exact run: the coincidence query (four cuts, two
vetoes, 100 off-time windows, time since muon), the histograms and their SVG.

Measured interleaved, R rounds of: drag (estimate only), release (the panel's exact
run), the bare query (``ds.coincidence`` alone: the bound a panel cannot beat without
a faster engine), the histograms' SVG alone. Medians and min/max are printed.

Usage: .venv/bin/python bench/bench_panel.py [--days D] [--quick] [--sim-dir DIR] [--rounds R]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import jaas
from jaas.engine.session.cache import ColumnCache
from jaas.notebook.panel import SelectionPanel
from jaas.notebook.selection import Cuts
from jaas.sim import SimConfig, simulate


def _stat(name: str, xs: list[float], aim: str = "") -> None:
    ms = [x * 1e3 for x in xs]
    print(f"{name:<34} median {statistics.median(ms):8.1f} ms  "
          f"(min {min(ms):.1f}, max {max(ms):.1f}, n={len(ms)}) {aim}")  # fmt: skip


def setup(
    doc: str, prefix: str
) -> tuple[argparse.Namespace, tempfile.TemporaryDirectory[str], Path]:
    """Arguments, a scratch directory and the simulated run (seed 7, made when absent)."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--days", type=float, default=7.0)
    ap.add_argument("--quick", action="store_true", help="0.1 day instead")
    ap.add_argument("--sim-dir", type=Path, default=None, help="reuse a simulated run")
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    days = 0.1 if args.quick else args.days
    tmp = tempfile.TemporaryDirectory(prefix=prefix)
    sim_dir = args.sim_dir or Path(tmp.name) / "sim"
    if not any(sim_dir.glob("**/*.parquet")):
        t = time.perf_counter()
        simulate(SimConfig(run=1, duration_s=days * 86400, seed=7, mode="index"), sim_dir)
        print(f"simulated {days} days in {time.perf_counter() - t:.1f} s")
    return args, tmp, sim_dir


def main() -> None:
    args, tmp, sim_dir = setup(__doc__, "jaas-bench-panel-")
    print(f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} cores")
    ds = jaas.open(sim_dir, cache=ColumnCache())
    t = time.perf_counter()
    panel = SelectionPanel(ds, store=Path(tmp.name) / "sel.json", sync=True)
    print(f"{ds.n_events:,} events; panel ready (cold: reads, loose sample, exact) "
          f"in {time.perf_counter() - t:.2f} s")  # fmt: skip
    panel.sync, panel.debounce = False, 3600.0  # dragging: the estimate only
    release, drag, bare, svg = [], [], [], []
    his = (900.0, 600.0, 800.0, 400.0, 1000.0, 700.0, 500.0)
    for i in range(args.rounds):
        hi = his[i % len(his)]
        t = time.perf_counter()
        panel.controls["dt_us"].value = (0.0, hi)
        drag.append(time.perf_counter() - t)
        if panel._timer is not None:
            panel._timer.cancel()
        t = time.perf_counter()  # release: the exact run as the panel does it
        panel._run_exact(panel._gen)
        release.append(time.perf_counter() - t)
        query = Cuts(dt_us=(0.0, his[(i + 3) % len(his)])).query()
        t = time.perf_counter()
        ds.coincidence(**query, label="selection")
        bare.append(time.perf_counter() - t)
        t = time.perf_counter()
        panel.plots_html()
        svg.append(time.perf_counter() - t)
    _stat("estimate while dragging", drag, "(aim < 30 ms)")
    _stat("release -> exact + histograms", release, "(aim < 150 ms)")
    _stat("  bound: the bare query", bare)
    _stat("  of which: histograms as SVG", svg)
    print(f"last result: {panel.result.n_pairs if panel.result else 0} pairs")


if __name__ == "__main__":
    main()
