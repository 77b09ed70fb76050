"""First query of a fresh process (issue 13: <= 1.5 s over 1e7 events; cold/warm >= 20x).

Runs N rounds; in each round, fresh Python subprocesses, interleaved:

* ``bound``: ``import numpy, pyarrow.parquet`` and reading the columns the query uses
  from every index file of ``--new-data`` with plain ``pyarrow.parquet.ParquetFile.read``
  (no copy, one thread);
* ``old``: ``jaas.open(--data).ibd()`` with the source tree given by ``--old`` (e.g. a
  ``git worktree`` of main);
* ``new``: the same with this tree on ``--new-data`` (default ``--data``; pass a copy
  written with this tree's index settings, see ``--convert``).

Each child reports its wall and CPU time (user+sys), the time of importing the query
layer, of the first query, and then, in the same process, of a cold query on an empty
column cache (numba warm) and of a warm query (one cut changed). The medians, the ratios
new/old and new/bound (same rounds) and the aim verdicts are printed.

    python bench/bench_coldstart.py --convert /tmp/cold-sim /tmp/cold-sim-new
    python bench/bench_coldstart.py --data /tmp/cold-sim --new-data /tmp/cold-sim-new \\
        --old /work/main/src --rounds 3
    python bench/bench_coldstart.py --settings /tmp/cold-sim   # the index-settings table

The data: ``jaas sim /tmp/cold-sim --duration 7d --mode index --seed 1``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
AIM_FRESH_S = 1.5
AIM_COLD_WARM = 20.0

QUERY = """
import json, sys, time
w0 = time.perf_counter()
c0 = time.process_time()
import jaas
import jaas.engine.session.analysis
w1 = time.perf_counter()
ds = jaas.open(sys.argv[1])
r = ds.ibd()
w2 = time.perf_counter()
c2 = time.process_time()
from jaas.engine.session.cache import ColumnCache
heavy = sorted(m for m in ("pandas", "scipy.linalg", "awkward", "pyarrow.dataset")
               if m in sys.modules)
ds = jaas.open(sys.argv[1], cache=ColumnCache())
w3 = time.perf_counter()
ds.ibd()
w4 = time.perf_counter()
ds.ibd(dr_max="1.2 m")
w5 = time.perf_counter()
try:  # the threads a query given none runs on (jaas >= wave 6), else one
    from jaas.engine.session.backend import local_threads
    threads = local_threads(None, ds.n_events)
except ImportError:
    threads = 1
print(json.dumps({"import": w1 - w0, "query": w2 - w1, "first": w2 - w0, "first_cpu": c2 - c0,
                  "cold": w4 - w3, "warm": w5 - w4, "pairs": r.n_pairs, "heavy": heavy,
                  "threads": threads}))
"""

BOUND = """
import json, sys, time, glob
w0 = time.perf_counter()
c0 = time.process_time()
import numpy, pyarrow.parquet as pq
w1 = time.perf_counter()
cols = sys.argv[2].split(",")
n = sum(pq.ParquetFile(p).read(columns=cols, use_threads=False).num_rows
        for p in sorted(glob.glob(sys.argv[1] + "/index/*.parquet")))
w2 = time.perf_counter()
print(json.dumps({"import": w1 - w0, "query": w2 - w1, "first": w2 - w0,
                  "first_cpu": time.process_time() - c0, "pairs": n}))
"""

# the columns the standard IBD query reads (printed by the engine's column cache)
COLUMNS = "t,E,cls,entry,file_id,muon,mx0,mx1,my0,my1,mz0,mz1,r,run,showering,tracked,x,y,z"


def _child(code: str, args: list[str], src: str | None) -> dict[str, Any]:
    env = dict(os.environ)
    if src is not None:
        env["PYTHONPATH"] = src
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    w0 = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, check=True
    ).stdout
    wall = time.perf_counter() - w0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    doc = json.loads(out.strip().splitlines()[-1])
    return {"wall": wall, "cpu": cpu, **doc}


def _help(src: str) -> dict[str, float]:
    code = "import sys\nfrom jaas.cli.main import main\nmain(['--help'])"
    env = dict(os.environ, PYTHONPATH=src)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    w0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, check=False)
    wall = time.perf_counter() - w0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {
        "wall": wall,
        "cpu": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
    }


def convert(src: Path, dst: Path) -> None:
    """Copy a simulated run, rewriting its index files with this tree's settings."""
    import pyarrow.parquet as pq

    from jaas.formats.index import write_index

    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("truth"))
    for path in sorted((dst / "index").glob("*.parquet")):
        table = pq.read_table(src / "index" / path.name)
        meta = {k.decode(): v.decode() for k, v in (table.schema.metadata or {}).items()}
        meta = {k: v for k, v in meta.items() if not k.startswith("ARROW:")}
        path.unlink()
        write_index(table, path, metadata=meta)
    print(f"rewrote {dst}/index with jaas.formats.index.INDEX_PARQUET_OPTIONS")


def settings_table(data: Path, rounds: int) -> None:
    """Read CPU (one thread, decode + copy to numpy) and file size per Parquet setting."""
    import pyarrow.parquet as pq

    from jaas.formats.index import INDEX_PARQUET_OPTIONS, column_to_numpy

    cols = COLUMNS.split(",")
    src = sorted((data / "index").glob("*.parquet"))[0]
    table = pq.read_table(src)
    few = ["run", "file_id", "cls", "quality"]
    delta = {"t": "DELTA_BINARY_PACKED", "entry": "DELTA_BINARY_PACKED"}
    chosen = dict(INDEX_PARQUET_OPTIONS)
    chosen["use_dictionary"] = list(chosen["use_dictionary"])
    options: dict[str, dict[str, Any]] = {
        "zstd (wave 4)": {"compression": "zstd", "use_dictionary": few},
        "zstd, delta t/entry": {
            "compression": "zstd",
            "use_dictionary": few,
            "column_encoding": delta,
        },
        "zstd, dictionary everywhere": {"compression": "zstd"},
        "lz4": {"compression": "lz4", "use_dictionary": few},
        "snappy, delta t/entry": {
            "compression": "snappy",
            "use_dictionary": few,
            "column_encoding": delta,
        },
        "none": {"compression": "none", "use_dictionary": few},
        "none, delta t/entry": {
            "compression": "none",
            "use_dictionary": few,
            "column_encoding": delta,
        },
        "lz4, delta t/entry, 8 MiB pages": {**chosen, "data_page_size": 8 << 20},
        "lz4, delta t/entry, 256k-row groups": {**chosen, "row_group_size": 1 << 18},
        "lz4, delta t/entry (chosen)": chosen,
    }
    tmp = Path(os.environ.get("TMPDIR", "/tmp")) / f"jaas-settings-{os.getpid()}"
    tmp.mkdir(parents=True, exist_ok=True)
    paths, write_cpu = {}, {}
    try:
        for i, (name, kw) in enumerate(options.items()):
            kw = {"row_group_size": 1 << 20, "write_statistics": True, **kw}
            paths[name] = tmp / f"s{i}.parquet"
            c0 = time.process_time()
            pq.write_table(table, paths[name], **kw)
            write_cpu[name] = time.process_time() - c0
        read: dict[str, list[float]] = {k: [] for k in options}
        for _ in range(rounds):  # interleaved
            for name, path in paths.items():
                c0 = time.process_time()
                t = pq.ParquetFile(path).read(columns=cols, use_threads=False)
                for c in cols:
                    column_to_numpy(t.column(c))
                read[name].append(time.process_time() - c0)
        scale = 1e7 / table.num_rows
        base = statistics.median(read["zstd (wave 4)"])
        print(
            f"load average {os.getloadavg()[0]:.1f}; {table.num_rows} rows of {src.name}, "
            f"{len(cols)} columns, median of {rounds} interleaved reads, scaled to 1e7 events"
        )
        print("| setting | read CPU s / 1e7 ev | vs zstd | MB / 1e7 ev | write CPU s / 1e7 ev |")
        print("|---|---:|---:|---:|---:|")
        for name, path in paths.items():
            m = statistics.median(read[name])
            print(
                f"| {name} | {m * scale:.2f} | {m / base:.2f} | "
                f"{path.stat().st_size * scale / 1e6:.0f} | {write_cpu[name] * scale:.1f} |"
            )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _verdict(ok: bool) -> str:
    return "MET" if ok else "NOT MET"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default="/tmp/cold-sim")
    ap.add_argument("--new-data", default=None, help="the data read by the new code")
    ap.add_argument("--old", help="src directory of the old code")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--convert", nargs=2, metavar=("SRC", "DST"), type=Path)
    ap.add_argument("--settings", type=Path, metavar="DIR", help="print the settings table")
    args = ap.parse_args()
    if args.convert:
        return convert(*args.convert)
    if args.settings:
        return settings_table(args.settings, args.rounds)
    if not args.old:
        ap.error("--old is required")
    new_data = args.new_data or args.data
    new = str(HERE.parent / "src")
    runs: dict[str, list[dict[str, Any]]] = {"bound": [], "old": [], "new": []}
    helps: dict[str, list[dict[str, float]]] = {"old": [], "new": []}
    loads = []
    for _ in range(args.rounds):
        loads.append(os.getloadavg()[0])
        runs["bound"].append(_child(BOUND, [new_data, COLUMNS], None))
        runs["old"].append(_child(QUERY, [args.data], args.old))
        runs["new"].append(_child(QUERY, [new_data], new))
        helps["old"].append(_help(args.old))
        helps["new"].append(_help(new))
    loads.append(os.getloadavg()[0])
    print(
        f"load average {min(loads):.1f}-{max(loads):.1f}, {args.rounds} rounds; "
        f"old on {args.data}, new and bound on {new_data}"
    )
    keys = ("wall", "cpu", "import", "query", "first", "first_cpu", "cold", "warm")
    med = {
        k: {m: statistics.median(r[m] for r in v) for m in keys if m in v[0]}
        for k, v in runs.items()
    }
    print(
        f"{'':8s} {'wall s':>7s} {'cpu s':>7s} {'import s':>9s} {'query s':>8s} "
        f"{'cold s':>7s} {'warm s':>7s}"
    )
    for key, m in med.items():
        print(
            f"{key:8s} {m['wall']:7.2f} {m['cpu']:7.2f} {m['import']:9.2f} {m['query']:8.2f} "
            f"{m.get('cold', float('nan')):7.2f} {m.get('warm', float('nan')):7.2f}"
        )
    pairs = {r["pairs"] for r in runs["old"] + runs["new"]}
    assert len(pairs) == 1, f"old and new differ: {pairs}"
    print(
        f"pairs: {pairs.pop()} (old and new identical); modules loaded by the query: "
        f"old {runs['old'][0]['heavy']}, new {runs['new'][0]['heavy']}; threads of a query "
        f"given none: old {runs['old'][0]['threads']}, new {runs['new'][0]['threads']}"
    )
    for what in ("wall", "cpu"):
        print(
            f"{what}: new/old {med['new'][what] / med['old'][what]:.2f}, "
            f"new/bound {med['new'][what] / med['bound'][what]:.2f}"
        )
    for key, v in helps.items():
        w = statistics.median(r["wall"] for r in v)
        c = statistics.median(r["cpu"] for r in v)
        print(f"jaas --help {key}: wall {w:.2f} s, cpu {c:.2f} s")
    fresh, bound = med["new"]["first"], med["bound"]["first"]
    ratio = med["new"]["cold"] / med["new"]["warm"]
    print(
        f"AIM fresh-process first query (imports + query) <= {AIM_FRESH_S} s: new {fresh:.2f} s "
        f"(old {med['old']['first']:.2f} s, bound: imports + plain pyarrow read "
        f"{bound:.2f} s) -> {_verdict(fresh <= AIM_FRESH_S)}"
    )
    print(
        f"AIM cold/warm in one process >= {AIM_COLD_WARM:.0f}x: new {ratio:.1f}x "
        f"(cold {med['new']['cold']:.2f} s, warm {med['new']['warm']:.3f} s; old "
        f"{med['old']['cold'] / med['old']['warm']:.1f}x) -> {_verdict(ratio >= AIM_COLD_WARM)}"
    )
    if max(loads) > 1.5:
        print("(a loaded machine: the wall-time verdicts mean nothing here; rerun on a quiet one)")


if __name__ == "__main__":
    main()
