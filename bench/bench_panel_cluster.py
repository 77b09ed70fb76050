"""Selection panel latency on a 2-worker Dask cluster vs the in-process engine.

The ``jaas.notebook`` panel on a dataset whose queries go to a real 2-worker cluster of
this machine (``jaas cluster``'s ``jaas.cluster.local``: a scheduler and two worker
processes), bound the way a hub kernel is (``JAAS_SCHEDULER`` = the scheduler address:
every query without ``backend=`` runs there). The same panel steps as
``bench/bench_panel.py`` (whose helpers are used), interleaved per round with a local
panel on the same data: drag (estimate only), release (the panel's exact run: query,
pairs, histograms, SVG), the bare query. Aim (issue 11): release < 1 s on Dask with
10^7 cached events (the workers' caches are warm after the panel's first run).

Usage: .venv/bin/python bench/bench_panel_cluster.py [--days D] [--quick] [--sim-dir DIR]
       [--rounds R]
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
os.environ.setdefault("JAAS_PROGRESS", "0")

import jaas
from bench_panel import _stat, setup
from jaas.cluster import local as local_cluster
from jaas.engine.session.cache import ColumnCache
from jaas.notebook.panel import SelectionPanel
from jaas.notebook.selection import Cuts

HIS = (900.0, 600.0, 800.0, 400.0, 1000.0, 700.0, 500.0)  # dt windows, as bench_panel


def _on(address: str | None, fn: Callable[[], Any]) -> Any:
    """``fn()`` with queries going to ``address`` (None: the local engine)."""
    old = os.environ.pop("JAAS_SCHEDULER", None)
    if address:
        os.environ["JAAS_SCHEDULER"] = address
    try:
        return fn()
    finally:
        os.environ.pop("JAAS_SCHEDULER", None)
        if old is not None:
            os.environ["JAAS_SCHEDULER"] = old


def main() -> None:
    args, tmp, sim_dir = setup(__doc__, "jaas-bench-panel-cluster-")
    state = Path(tmp.name) / "cluster"
    lc = local_cluster.start(2, state_dir=state, dashboard=False)
    try:
        print(f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())} "
              f"on {os.cpu_count()} cores; cluster {lc.address}, 2 workers")  # fmt: skip
        where = {"local": None, "dask": lc.address}
        data = {k: jaas.open(sim_dir, cache=ColumnCache()) for k in where}
        panels: dict[str, SelectionPanel] = {}
        for k, addr in where.items():
            t = time.perf_counter()
            store = Path(tmp.name) / f"{k}.json"
            panels[k] = _on(addr, lambda k=k, store=store: SelectionPanel(
                data[k], store=store, sync=True))  # fmt: skip
            print(f"{k}: {data[k].n_events:,} events; panel ready (cold) in "
                  f"{time.perf_counter() - t:.2f} s")  # fmt: skip
            panels[k].sync, panels[k].debounce = False, 3600.0  # dragging: estimate only
        times: dict[str, dict[str, list[float]]] = {
            k: {"drag": [], "release": [], "bare": []} for k in where
        }
        for i in range(args.rounds):
            for k, addr in where.items():  # interleaved: load changes hit both alike
                panel, got = panels[k], times[k]
                t = time.perf_counter()
                panel.controls["dt_us"].value = (0.0, HIS[i % len(HIS)])
                got["drag"].append(time.perf_counter() - t)
                if panel._timer is not None:
                    panel._timer.cancel()
                t = time.perf_counter()
                _on(addr, lambda panel=panel: panel._run_exact(panel._gen))
                got["release"].append(time.perf_counter() - t)
                query = Cuts(dt_us=(0.0, HIS[(i + 3) % len(HIS)])).query()
                t = time.perf_counter()
                _on(addr, lambda k=k, q=query: data[k].coincidence(**q, label="selection"))
                got["bare"].append(time.perf_counter() - t)
        backend = panels["dask"].result.backend_info if panels["dask"].result else None
        assert backend is not None and backend.name == "dask", "the panel did not use Dask"
        n = {k: p.result.n_pairs if p.result else -1 for k, p in panels.items()}
        assert n["local"] == n["dask"], f"pairs differ: {n}"
    finally:
        local_cluster.stop(state)
    for k in where:
        print(f"\n{k}:")
        _stat("estimate while dragging", times[k]["drag"], "(aim < 30 ms)")
        aim = "(aim < 1 s on Dask)" if k == "dask" else "(aim < 150 ms)"
        _stat("release -> exact + histograms", times[k]["release"], aim)
        _stat("  bound: the bare query", times[k]["bare"])
    med = {k: sorted(v["release"])[len(v["release"]) // 2] for k, v in times.items()}
    print(f"\nrelease, Dask 2 workers / local: {med['dask'] / med['local']:.2f} x; "
          f"last result {n['dask']} pairs on both; partitions on Dask: "
          f"{len(backend.partitions)}; load average {os.getloadavg()[0]:.1f}")  # fmt: skip


if __name__ == "__main__":
    main()
