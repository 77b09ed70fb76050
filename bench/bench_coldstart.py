"""First query of a fresh process (issue 13: <= 1.5 s over 1e7 events).

Runs N rounds; in each round, fresh Python subprocesses, interleaved:

* ``bound``: ``import numpy, pyarrow.parquet`` and reading the columns the query uses
  from every index file with plain ``pyarrow.parquet.read_table`` (no copy);
* ``old``: ``jaas.open(DIR).ibd()`` with the source tree given by ``--old`` (e.g. a
  ``git worktree`` of main);
* ``new``: the same with this tree.

Each child reports its wall time, CPU time (user+sys of the child) and the time of
importing the query layer; the medians and the ratios new/old and new/bound (measured in
the same rounds) are printed. Also ``jaas --help`` start-up, old and new.

    python bench/bench_coldstart.py --data /tmp/cold-sim --old /work/main/src --rounds 3

The data: ``jaas sim /tmp/cold-sim --duration 7d --mode index --seed 1``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

QUERY = """
import json, sys, time
w0 = time.perf_counter()
import jaas
import jaas.engine.session.analysis
w1 = time.perf_counter()
r = jaas.open(sys.argv[1]).ibd()
w2 = time.perf_counter()
print(json.dumps({"import": w1 - w0, "query": w2 - w1, "pairs": len(r.pairs)}))
"""

BOUND = """
import json, sys, time, glob
w0 = time.perf_counter()
import numpy, pyarrow.parquet as pq
w1 = time.perf_counter()
cols = sys.argv[2].split(",")
n = sum(pq.read_table(p, columns=cols).num_rows
        for p in sorted(glob.glob(sys.argv[1] + "/index/*.parquet")))
w2 = time.perf_counter()
print(json.dumps({"import": w1 - w0, "query": w2 - w1, "pairs": n}))
"""

# the columns the standard IBD query reads (printed by the engine's column cache)
COLUMNS = "t,E,cls,entry,file_id,muon,mx0,mx1,my0,my1,mz0,mz1,r,run,showering,tracked,x,y,z"


def _child(code: str, args: list[str], src: str | None) -> dict[str, float]:
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default="/tmp/cold-sim")
    ap.add_argument("--old", required=True, help="src directory of the old code")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    new = str(HERE.parent / "src")
    runs: dict[str, list[dict[str, float]]] = {"bound": [], "old": [], "new": []}
    helps: dict[str, list[dict[str, float]]] = {"old": [], "new": []}
    for _ in range(args.rounds):
        runs["bound"].append(_child(BOUND, [args.data, COLUMNS], None))
        runs["old"].append(_child(QUERY, [args.data], args.old))
        runs["new"].append(_child(QUERY, [args.data], new))
        helps["old"].append(_help(args.old))
        helps["new"].append(_help(new))
    print(f"load average {os.getloadavg()[0]:.1f}, {args.rounds} rounds, {args.data}")
    med = {k: {m: statistics.median(r[m] for r in v) for m in v[0]} for k, v in runs.items()}
    print(f"{'':8s} {'wall s':>8s} {'cpu s':>8s} {'import s':>9s} {'query s':>8s}")
    for key, m in med.items():
        print(f"{key:8s} {m['wall']:8.2f} {m['cpu']:8.2f} {m['import']:9.2f} {m['query']:8.2f}")
    assert len({r["pairs"] for r in runs["old"] + runs["new"]}) == 1, "old and new differ"
    for what in ("wall", "cpu"):
        print(
            f"{what}: new/old {med['new'][what] / med['old'][what]:.2f}, "
            f"new/bound {med['new'][what] / med['bound'][what]:.2f}"
        )
    for key, v in helps.items():
        w = statistics.median(r["wall"] for r in v)
        c = statistics.median(r["cpu"] for r in v)
        print(f"jaas --help {key}: wall {w:.2f} s, cpu {c:.2f} s")


if __name__ == "__main__":
    main()
