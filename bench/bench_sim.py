"""Simulation throughput: index mode (events/s) and hit mode (events/s, MB/s of RAW).

Peers measured in the same run: a per-event Python generator of the same event mix (the
obvious way to write a simulation) and, as hardware bounds, numpy's raw random-number rate
(the draws an event needs) and an uncompressed write of the same index bytes to disk.

Usage: .venv/bin/python bench/bench_sim.py [--quick] [--days D] [--hit-seconds S]
"""

from __future__ import annotations

import argparse
import functools
import math
import os
import random
import tempfile
import time
from pathlib import Path

import numpy as np

import jaas.formats.index as index_mod
from jaas.sim.params import SimConfig
from jaas.sim.run import simulate
from jaas.sim.stream import generate_truth

os.environ.setdefault("JAAS_PROGRESS", "0")
INDEX_BYTES_PER_EVENT = 4 * 3 + 8 * 2 + 4 * 12 + 4 + 1  # INDEX_SCHEMA column widths
DRAWS_PER_EVENT = 20  # random numbers drawn per event (time, E, vertex, smearing, ...)


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


def timed(fn, *args):  # type: ignore[no-untyped-def]
    t0 = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="small sizes (CI smoke run)")
    ap.add_argument("--days", type=float, default=None, help="index-mode run length in days")
    ap.add_argument("--hit-seconds", type=float, default=None, help="hit-mode run length")
    ap.add_argument("--dir", default=None, help="scratch directory (default: a temp dir)")
    args = ap.parse_args()
    days = args.days if args.days is not None else (0.5 if args.quick else 7.0)
    hit_s = args.hit_seconds if args.hit_seconds is not None else (10.0 if args.quick else 60.0)
    rows: list[tuple[str, float, str]] = []
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        simulate({"duration_s": 600, "block_s": 600, "chunk_s": 600}, Path(tmp) / "warm")
        base = {"duration_s": days * 86400, "seed": 1, "block_s": 3600, "chunk_s": 3600 * 6}
        _, dt = timed(lambda: sum(len(c.events) for c in generate_truth(SimConfig(**base))))
        n_truth = sum(len(c.events) for c in generate_truth(SimConfig(**base)))
        rows.append(("truth generation only", n_truth / dt, "events/s"))
        s, dt = timed(simulate, {**base, "write_truth": False}, Path(tmp) / "idx")
        n = s.n_events
        ours = n / dt
        rows.append((f"index mode, {days:g} d, index files only", ours, "events/s"))
        _, dt2 = timed(simulate, base, Path(tmp) / "idx_truth")
        rows.append(("index mode, index + truth files", n / dt2, "events/s"))
        # the shared write_index dictionary-encodes every column; floats do not benefit
        orig = index_mod.pq.write_table
        index_mod.pq.write_table = functools.partial(orig, use_dictionary=False)  # type: ignore[attr-defined]
        try:
            _, dt3 = timed(simulate, {**base, "write_truth": False}, Path(tmp) / "idx_nodict")
        finally:
            index_mod.pq.write_table = orig  # type: ignore[attr-defined]
        rows.append(("index mode, write_index(use_dictionary=False)", n / dt3, "events/s"))
        mb = sum(r.bytes for r in s.files) / 1e6
        rows.append(("  index bytes on disk per event", mb * 1e6 / n, "B"))

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
        print(f"{name:<48} {value:>14,.1f} {unit}")
    print()
    print(f"ratio ours/Python peer (index files only)   {ours / peer:8.1f}x")
    print(f"ratio ours/numpy RNG bound                  {ours / rng_bound:8.3f}")
    print(f"ratio ours/disk-write bound                 {ours / disk_bound:8.3f}")
    print(f"ratio hit-mode RAW MB/s / disk MB/s         {raw_mb / dth / (disk / 1e6):8.3f}")
    print(f"index mode simulates {days * 86400 / dt:,.0f} s of detector time per second")


if __name__ == "__main__":
    main()
