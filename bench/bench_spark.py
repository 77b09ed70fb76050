"""Standard IBD on Spark (``local[2]``) vs a 2-worker Dask cluster vs the local engine.

Data and query as in ``bench_cluster.py`` (a seeded ``jaas.sim`` index-mode run, the full
standard IBD selection); every backend must return the identical pairs and exposure.
Measured: cold (empty caches; Spark: fresh executor Python workers) and warm (columns
cached in the executor processes) times, and the per-query overhead on a tiny dataset
(median of 5 warm queries, minus the local engine's).

Usage: .venv/bin/python bench/bench_spark.py [--days D] [--no-dask]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("JAAS_PROGRESS", "0")

import numpy as np

import jaas
from bench_cluster import cluster_run, make_data, timed
from jaas.engine.session.cache import ColumnCache
from jaas.spark import SparkBackend


def spark_run(master: str, big: Path, tiny: Path, ref: object) -> dict[str, float]:
    with SparkBackend(master) as spark:
        small = jaas.open(tiny, cache=ColumnCache())
        spark_tiny_first, _ = timed(lambda: small.ibd(backend=spark))  # JVM + kernels warm-up
        ds = jaas.open(big, cache=ColumnCache())
        cold, res = timed(lambda: ds.ibd(backend=spark))
        assert np.array_equal(res.result.delayed, ref.result.delayed), "pairs differ"  # type: ignore[attr-defined]
        assert res.exposure == ref.exposure, "exposure differs"  # type: ignore[attr-defined]
        warm, _ = timed(lambda: ds.ibd(backend=spark))
        read_warm = spark.last_bytes_read
        over = statistics.median(timed(lambda: small.ibd(backend=spark))[0] for _ in range(5))
        return {
            "cold": cold, "warm": warm, "tiny": over, "first": spark_tiny_first,
            "parts": float(len(res.backend_info.partitions)), "read_warm": float(read_warm),
        }  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--days", type=float, default=0.05)
    ap.add_argument("--no-dask", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        big, tiny = make_data(root, args.days)
        ds = jaas.open(big, cache=ColumnCache())
        print(f"data: {ds.n_events:,} events, {len(ds.files)} files, {args.days} day")
        small = jaas.open(tiny, cache=ColumnCache())
        jaas.ibd(small)  # JIT warm-up
        l_cold, ref = timed(lambda: jaas.ibd(ds))
        l_warm, _ = timed(lambda: jaas.ibd(ds))
        l_tiny = statistics.median(timed(lambda: jaas.ibd(small))[0] for _ in range(5))
        rows = {"spark local[2]": spark_run("local[2]", big, tiny, ref)}
        if not args.no_dask:
            rows["dask 2 workers"] = cluster_run(2, big, tiny, root, ref)
    print(f"\nstandard IBD, {ref.n_pairs} pairs (identical on every backend)\n")
    print(f"{'backend':<20}{'cold s':>9}{'warm s':>9}{'parts':>7}{'overhead s':>12}")
    print(f"{'local engine':<20}{l_cold:>9.3f}{l_warm:>9.3f}{1:>7}{0:>12.3f}")
    for name, r in rows.items():
        print(f"{name:<20}{r['cold']:>9.3f}{r['warm']:>9.3f}{int(r['parts']):>7}"
              f"{r['tiny'] - l_tiny:>12.3f}")  # fmt: skip
    first = rows["spark local[2]"]
    print(
        f"\nspark: first tiny query (JVM, executors, kernels) {first['first']:.1f} s; "
        f"bytes read by the warm query: {int(first['read_warm'])}"
    )


if __name__ == "__main__":
    main()
