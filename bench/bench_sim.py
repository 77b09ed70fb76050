"""Simulation throughput: index mode (events/s) and hit mode (events/s, MB/s of RAW).

Index mode, the aim of issue 13 item 6: >= 3 M events/s with the index and truth files
written (``simulate`` in this process, threads=2). Printed with it, measured in the same
run: the CPU per 1e6 events of each phase (generation, response, writing), and the bound
"writing the same arrays alone": the index and truth tables of one output file, already
in memory, written with the same settings on two threads. ``--old SRC`` adds an A/B
against another source tree (e.g. /work/main/src): fresh ``jaas sim`` processes, old and
new alternated ``--rounds`` times, wall time and the child's CPU seconds.

The generation and response kernels are numba (``cache=True``): the measured runs follow a
warm-up simulation in the same process, so they run warm. The first-call cost is printed
too: a fresh process's first small simulation with the on-disk cache (warm) and with an
empty cache directory (``NUMBA_CACHE_DIR``, a cold compile).

Peers measured in the same run: a per-event Python generator of the same event mix (the
obvious way to write a simulation) and, as hardware bounds, numpy's raw random-number rate
(the draws an event needs) and an uncompressed write of the same index bytes to disk.

Usage: .venv/bin/python bench/bench_sim.py [--quick] [--days D] [--hit-seconds S]
           [--old SRC --rounds N]
"""

from __future__ import annotations

import argparse
import math
import os
import random
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from jaas.formats.index import ROW_GROUP_SIZE
from jaas.sim.indexlevel import index_columns
from jaas.sim.output import INDEX_PARQUET, TRUTH_PARQUET
from jaas.sim.params import SimConfig
from jaas.sim.run import BATCH_INDEX, simulate
from jaas.sim.stream import generate_truth, rng_for

os.environ.setdefault("JAAS_PROGRESS", "0")
INDEX_BYTES_PER_EVENT = 4 * 3 + 8 * 2 + 4 * 12 + 4 + 1  # INDEX_SCHEMA column widths
AIM = 3e6  # events/s, index mode with files written (issue 13, item 6)
DRAWS_PER_EVENT = 20  # random numbers drawn per event (time, E, vertex, smearing, ...)


REPS = 3  # runs of the headline measurement


def python_peer(seconds: float, seed: int = 1) -> int:
    """Per-event Python loop: singles + muons + IBD-like pairs at the default rates."""
    rnd = random.Random(seed)
    rows = []
    t = 0.0
    rate = 10.0 + 3.9 + 2.0 + 1.7 + 0.25
    while t < seconds:
        t += rnd.expovariate(rate)
        r = 17.7 * rnd.random() ** (1 / 3)
        cos_t, phi = 2 * rnd.random() - 1, 2 * math.pi * rnd.random()
        s = math.sqrt(1 - cos_t * cos_t)
        e = rnd.uniform(0.5, 3.0)
        sig = e * math.sqrt(0.0261**2 / e + 0.0082**2 + (0.0123 / e) ** 2)
        row = (t, rnd.gauss(e, sig), r * s * math.cos(phi), r * s * math.sin(phi), r * cos_t)
        rows.append(row)
    return len(rows)


def timed(fn, *args, **kw):  # type: ignore[no-untyped-def]
    t0 = time.perf_counter()
    out = fn(*args, **kw)
    return out, time.perf_counter() - t0


def phase_cpu(base: dict[str, float]) -> tuple[int, float, float]:
    """(events, generation CPU s per 1e6, response CPU s per 1e6), one thread, no files."""
    cfg = SimConfig(**base)
    n, gen, resp, k = 0, 0.0, 0.0, 0
    chunks = generate_truth(cfg)
    while True:
        c0 = time.process_time()
        chunk = next(chunks, None)
        gen += time.process_time() - c0
        if chunk is None:
            break
        ev = chunk.events
        n += len(ev)
        c0 = time.process_time()
        for a in range(0, len(ev), BATCH_INDEX):
            index_columns(
                ev.take(slice(a, a + BATCH_INDEX)), rng_for(1, "response", k), cfg.physics
            )
            k += 1
        resp += time.process_time() - c0
    return n, gen / n * 1e6, resp / n * 1e6


def write_bound(out: Path, scratch: Path, reps: int = 3) -> tuple[float, float]:
    """Writing the same arrays alone: one output file's index and truth tables, in memory,
    written with the simulation's settings on two threads. (events/s, CPU s per 1e6)."""
    idx = pq.read_table(sorted((out / "index").glob("*.parquet"))[0])
    tru = pq.read_table(sorted((out / "truth").glob("*.parquet"))[0])
    n = idx.num_rows

    def write(table: pa.Table, opts: dict[str, object], path: Path) -> None:
        pq.write_table(table, path, row_group_size=ROW_GROUP_SIZE, **opts)  # type: ignore[arg-type]

    walls, cpus = [], []
    with ThreadPoolExecutor(max_workers=2) as pool:
        for _ in range(reps):
            c0, t0 = time.process_time(), time.perf_counter()
            jobs = [pool.submit(write, idx, INDEX_PARQUET, scratch / "i.parquet"),
                    pool.submit(write, tru, TRUTH_PARQUET, scratch / "t.parquet")]  # fmt: skip
            for job in jobs:
                job.result()
            walls.append(time.perf_counter() - t0)
            cpus.append(time.process_time() - c0)
    return n / min(walls), statistics.median(cpus) / n * 1e6


_CHILD = (
    "import sys; from jaas.cli.main import main; "
    "sys.argv = ['jaas', 'sim', sys.argv[1], '--duration', sys.argv[2], '--mode', 'index', "
    "'--seed', '1']; main()"
)


def ab_rounds(old: str, days: float, rounds: int, scratch: Path) -> None:
    """Fresh ``jaas sim`` processes, old and new source trees alternated; prints medians."""
    new = str(Path(__file__).resolve().parent.parent / "src")
    res: dict[str, list[tuple[float, float, float, int]]] = {"old": [], "new": []}
    for r in range(rounds):
        for name, src in (
            (("old", old), ("new", new)) if r % 2 == 0 else (("new", new), ("old", old))
        ):
            out = scratch / f"ab_{name}_{r}"
            env = {**os.environ, "PYTHONPATH": src, "JAAS_PROGRESS": "0"}
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            t0 = time.perf_counter()
            proc = subprocess.run([sys.executable, "-c", _CHILD, str(out), f"{days * 24:g}h"],
                                  env=env, capture_output=True, text=True, check=True)  # fmt: skip
            wall = time.perf_counter() - t0
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
            m = re.search(r"run \d+ .*?, (\d+) events", proc.stdout)
            sim_wall = re.search(r"wall time ([0-9.]+) s", proc.stdout)
            assert m and sim_wall, proc.stdout[-500:]
            res[name].append((wall, float(sim_wall.group(1)), cpu, int(m.group(1))))
            shutil.rmtree(out)
    print(f"A/B, {rounds} rounds of fresh 'jaas sim --duration {days * 24:g}h' processes, "
          f"old = {old}, alternated (load {_load()})")  # fmt: skip
    med = {k: [statistics.median(x[i] for x in v) for i in range(3)] for k, v in res.items()}
    speed, cpu = {}, {}
    for k in ("old", "new"):
        w, sw, c = med[k]
        n = res[k][0][3]
        speed[k], cpu[k] = n / sw, c / n * 1e6
        print(f"  {k}: process wall {w:6.2f} s, simulate wall {sw:6.2f} s "
              f"({speed[k] / 1e6:5.2f} M ev/s), process CPU {c:6.2f} s "
              f"({cpu[k]:5.2f} s per 1e6 events incl. import)")  # fmt: skip
    print(
        f"  ratio new/old: events/s {speed['new'] / speed['old']:5.2f}x, "
        f"CPU per event {cpu['new'] / cpu['old']:5.2f}x"
    )


_FIRST = (
    "import time, sys; t0 = time.perf_counter(); from jaas.sim.run import simulate; "
    "simulate({'duration_s': 600, 'block_s': 600, 'chunk_s': 600}, sys.argv[1]); "
    "print(time.perf_counter() - t0)"
)


def first_call(scratch: Path, cold: bool) -> float:
    """Wall seconds of a fresh process's import + first 600 s simulation (numba cache
    as it is, or an empty cache directory: every kernel compiled)."""
    env = {**os.environ, "JAAS_PROGRESS": "0"}
    if cold:
        env["NUMBA_CACHE_DIR"] = str(scratch / "numba-cold")
    out = scratch / ("first_cold" if cold else "first_warm")
    proc = subprocess.run([sys.executable, "-c", _FIRST, str(out)], env=env,
                          capture_output=True, text=True, check=True)  # fmt: skip
    shutil.rmtree(out)
    return float(proc.stdout.split()[-1])


def _load() -> str:
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="small sizes (CI smoke run)")
    ap.add_argument("--days", type=float, default=None, help="index-mode run length in days")
    ap.add_argument("--hit-seconds", type=float, default=None, help="hit-mode run length")
    ap.add_argument("--dir", default=None, help="scratch directory (default: a temp dir)")
    ap.add_argument("--old", default=None, help="source tree for an old/new A/B (jaas sim)")
    ap.add_argument("--rounds", type=int, default=3, help="A/B rounds (with --old)")
    args = ap.parse_args()
    days = args.days if args.days is not None else (0.5 if args.quick else 7.0)
    hit_s = args.hit_seconds if args.hit_seconds is not None else (10.0 if args.quick else 60.0)
    rows: list[tuple[str, float, str]] = []
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        scratch = Path(tmp)
        simulate({"duration_s": 600, "block_s": 600, "chunk_s": 600}, scratch / "warm")
        base = {"duration_s": days * 86400, "seed": 1}
        load0 = _load()
        # the headline: the median of REPS runs (a single run swings by ~10 %: the first
        # large run of a process also grows the allocator's pools)
        walls, cpus = [], []
        for rep in range(REPS):
            if rep:
                shutil.rmtree(scratch / "idx_truth")
            c0 = time.process_time()
            s, dt = timed(simulate, base, scratch / "idx_truth")
            walls.append(dt)
            cpus.append((time.process_time() - c0) / s.n_events * 1e6)
        n = s.n_events
        ours = n / statistics.median(walls)
        rows.append((f"index mode, {days:g} d, index + truth files (median of {REPS})", ours,
                     "events/s"))  # fmt: skip
        rows.append((f"  slowest of the {REPS} runs", n / max(walls), "events/s"))
        rows.append((f"  fastest of the {REPS} runs", n / min(walls), "events/s"))
        rows.append(("  its CPU per 1e6 events (all threads, median)", statistics.median(cpus),
                     "s"))  # fmt: skip
        bound, cpu_write = write_bound(scratch / "idx_truth", scratch)
        rows.append(("bound: writing the same arrays alone, 2 threads", bound, "events/s"))
        _, dt1 = timed(simulate, {**base, "write_truth": False}, scratch / "idx")
        rows.append(("index mode, index files only", n / dt1, "events/s"))
        _, dt2 = timed(simulate, base, scratch / "one_thread", threads=1)
        rows.append(("index mode, index + truth, threads=1", n / dt2, "events/s"))
        _, cpu_gen, cpu_resp = phase_cpu(base)
        rows.append(("CPU per 1e6 events: generation", cpu_gen, "s"))
        rows.append(("CPU per 1e6 events: response", cpu_resp, "s"))
        rows.append(("CPU per 1e6 events: writing index + truth", cpu_write, "s"))
        cpu_sum = cpu_gen + cpu_resp + cpu_write
        rows.append(("  2 cores, perfect overlap of the three", 2e6 / cpu_sum, "events/s"))
        mb = sum(r.bytes for r in s.files if r.kind == "index") / 1e6
        rows.append(("  index bytes on disk per event", mb * 1e6 / n, "B"))
        mb_t = sum(r.bytes for r in s.files if r.kind == "truth") / 1e6
        rows.append(("  truth bytes on disk per event", mb_t * 1e6 / n, "B"))
        for sub in ("idx_truth", "idx", "one_thread"):
            shutil.rmtree(scratch / sub)
        rows.append(("first call (fresh process, 600 s): numba cache", first_call(scratch, False),
                     "s"))  # fmt: skip
        rows.append(("  same, empty numba cache (compile)", first_call(scratch, True), "s"))

        peer_s = min(3600.0, days * 86400)
        n_peer, dt_peer = timed(python_peer, peer_s)
        peer = n_peer / dt_peer
        rows.append(("peer: per-event Python loop", peer, "events/s"))

        rng = np.random.default_rng(0)
        m = 4_000_000
        buf = np.empty(1 << 20)
        t0 = time.perf_counter()
        for _ in range(m * DRAWS_PER_EVENT >> 20):
            rng.random(out=buf)
        rng_bound = m / (time.perf_counter() - t0)
        rows.append((f"bound: numpy RNG, {DRAWS_PER_EVENT} draws/event", rng_bound, "events/s"))
        blob = np.random.default_rng(1).integers(0, 255, 200 << 20, dtype=np.uint8)
        path = Path(tmp) / "blob.bin"
        t0 = time.perf_counter()
        with open(path, "wb") as f:
            blob.tofile(f)
            f.flush()
            os.fsync(f.fileno())
        disk = blob.nbytes / (time.perf_counter() - t0)
        disk_bound = disk / INDEX_BYTES_PER_EVENT
        rows.append(("bound: disk write (uncompressed index rows)", disk_bound, "events/s"))

        hit_cfg = {"duration_s": hit_s, "seed": 1, "mode": "hit", "block_s": hit_s,
                   "chunk_s": hit_s, "write_truth": False}  # fmt: skip
        h, dth = timed(simulate, hit_cfg, Path(tmp) / "hit")
        raw_mb = sum(r.bytes for r in h.files if r.kind == "raw") / 1e6
        rows.append((f"hit mode, {hit_s:g} s, full detector", h.n_events / dth, "events/s"))
        rows.append(("hit mode RAW output", raw_mb / dth, "MB/s"))
        rows.append(("  simulated/real time, hit mode", hit_s / dth, "x"))
        rows.append(("bound: disk write", disk / 1e6, "MB/s"))

    print(f"{'measurement':<48} {'value':>14} unit")
    for name, value, unit in rows:
        print(f"{name:<48} {value:>14,.{3 if abs(value) < 10 else 1}f} {unit}")
    print()
    print(f"index mode with index + truth files: {ours / 1e6:.2f} M events/s (load {load0})")
    verdict = "MET" if ours >= AIM else "NOT MET"
    print(f"ratio ours/aim (3 M events/s)               {ours / AIM:8.3f}  -> aim {verdict}")
    print(f"ratio ours/bound (writing the arrays alone) {ours / bound:8.3f}")
    print(f"ratio bound/aim                             {bound / AIM:8.3f}")
    print(f"ratio ours/Python peer                      {ours / peer:8.1f}x")
    print(f"ratio ours/numpy RNG bound                  {ours / rng_bound:8.3f}")
    print(f"ratio ours/disk-write bound                 {ours / disk_bound:8.3f}")
    print(f"ratio hit-mode RAW MB/s / disk MB/s         {raw_mb / dth / (disk / 1e6):8.3f}")
    print(f"index mode simulates {days * 86400 / dt:,.0f} s of detector time per second")
    print(f"load average at the end: {_load()}")
    if args.old:
        with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
            ab_rounds(args.old, days, args.rounds, Path(tmp))


if __name__ == "__main__":
    main()
