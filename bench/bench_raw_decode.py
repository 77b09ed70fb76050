"""RAW decode and write throughput against plain reads of the same file (page cache).

Usage: .venv/bin/python bench/bench_raw_decode.py [--quick] [--mb N] [--dir DIR]
"""

from __future__ import annotations

import argparse
import os
import struct
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from crc32c import crc32c

from jaas.formats.events import HitEvents
from jaas.formats.raw import RawReader, RawWriter

MUON_HITS = 17_612  # every large PMT fires (physics.md: 17,612 x 20-inch PMTs)
MUONS_PER_10 = 4  # muon : ordinary event ratio of the synthetic mix (task brief)
CHUNK = 32 << 20


def synth_batch(rng: np.random.Generator, n: int, t0: int, id0: int) -> HitEvents:
    """n events: ~1000-hit ordinary events and 17,612-hit muons at 4:10."""
    muon = rng.random(n) < MUONS_PER_10 / (10 + MUONS_PER_10)
    nh = np.where(muon, MUON_HITS, rng.integers(500, 2000, n))
    offsets = np.concatenate([[0], np.cumsum(nh)]).astype(np.int64)
    h = int(offsets[-1])
    return HitEvents(
        event_id=np.arange(id0, id0 + n, dtype=np.uint64),
        t=t0 + np.cumsum(rng.integers(1, 2_000_000, n)).astype(np.int64),
        trigger=np.where(muon, 3, 1).astype(np.uint16),
        offsets=offsets,
        pmt=rng.integers(0, MUON_HITS, h).astype(np.uint32),
        charge=rng.exponential(1.0, h).astype(np.float32),
        time=rng.normal(0.0, 50.0, h).astype(np.float32),
    )


def write_file(path: Path, target_mb: int, seed: int = 1) -> tuple[float, int]:
    """Write about target_mb of events; return (seconds spent in write_batch, bytes)."""
    rng = np.random.default_rng(seed)
    spent = 0.0
    t0, id0 = 1_700_000_000 * 10**9, 0
    with RawWriter(path, run=1, file_seq=0, start_time=t0) as w:
        while w.bytes_written < target_mb << 20:
            batch = synth_batch(rng, 500, t0, id0)
            t0, id0 = int(batch.t[-1]), id0 + len(batch)
            start = time.perf_counter()
            w.write_batch(batch)
            spent += time.perf_counter() - start
    return spent, path.stat().st_size


def plain_read(path: Path) -> int:
    buf = bytearray(CHUNK)
    n = 0
    with open(path, "rb", buffering=0) as f:
        while got := f.readinto(buf):
            n += got
    return n


def read_crc(path: Path) -> int:
    """Read in chunks and CRC every chunk: the hardware bound of a checked read."""
    buf = bytearray(CHUNK)
    mv = memoryview(buf)
    n = 0
    with open(path, "rb", buffering=0) as f:
        while got := f.readinto(buf):
            crc32c(mv[:got])
            n += got
    return n


def ours(path: Path) -> int:
    n = 0
    with RawReader(path) as r:
        for batch in r:
            n += len(batch)
    return n


def naive(path: Path) -> int:
    """A straightforward per-record Python decoder (struct + frombuffer + crc32c)."""
    head = struct.Struct("<4sIQqHHI")
    n = 0
    with open(path, "rb") as f:
        data = f.read(40)
        hlen = int.from_bytes(data[12:16], "little")
        f.seek(hlen)
        while True:
            rec = f.read(32)
            if rec[:4] != b"JEVT":
                break
            _, length, _eid, _t, _trig, _, nh = head.unpack(rec)
            rest = f.read(length - 32)
            if crc32c(rest[:-4], crc32c(rec)) != int.from_bytes(rest[-4:], "little"):
                raise RuntimeError("crc")
            hits = np.frombuffer(rest, np.dtype([("p", "<u4"), ("c", "<f4"), ("t", "<f4")]), nh)
            hits["p"].copy(), hits["c"].copy(), hits["t"].copy()
            n += 1
    return n


def best_interleaved(
    fns: dict[str, Callable[[Path], int]], path: Path, repeat: int
) -> dict[str, tuple[float, int]]:
    """Best time of each method over ``repeat`` rounds, the methods interleaved in every
    round so that load from other processes hits them alike."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    out: dict[str, int] = {}
    for _ in range(repeat):
        for name, fn in fns.items():
            start = time.perf_counter()
            out[name] = fn(path)
            times[name].append(time.perf_counter() - start)
    return {name: (min(ts), out[name]) for name, ts in times.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="~50 MB file instead of ~400 MB")
    ap.add_argument("--mb", type=int, default=None, help="file size in MB")
    ap.add_argument("--dir", default=None, help="where to write the file (default: tmp)")
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    mb = args.mb or (50 if args.quick else 400)
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        path = Path(tmp) / "bench.raw"
        wsec, size = write_file(path, mb)
        ours(path)  # warm page cache and JIT
        plain_read(path)
        gb = size / 1e9
        rows = []
        res = best_interleaved(
            {"read": plain_read, "crc": read_crc, "ours": ours, "naive": naive},
            path,
            args.repeat,
        )
        t_read, t_crc, t_naive = res["read"][0], res["crc"][0], res["naive"][0]
        t_ours, n_events = res["ours"]
        rows.append(("plain readinto (32 MB chunks)", t_read, 1.0))
        rows.append(("readinto + CRC-32C of chunks", t_crc, t_read / t_crc))
        rows.append(("RawReader (jaas)", t_ours, t_read / t_ours))
        rows.append(("naive per-record Python decoder", t_naive, t_read / t_naive))
        print(
            f"file: {size / 1e6:.0f} MB, {n_events} events, "
            f"write_batch {size / wsec / 1e6:.0f} MB/s"
        )
        print(f"{'method':34s} {'GB/s':>7s} {'events/s':>10s} {'vs read':>8s}")
        for name, sec, ratio in rows:
            print(f"{name:34s} {gb / sec:7.2f} {n_events / sec:10.0f} {ratio:8.2f}")
        print(f"RawReader vs naive decoder: {t_naive / t_ours:.1f}x")
        print(f"RawReader vs read+CRC bound: {t_crc / t_ours:.2f}")
        os.sync()


if __name__ == "__main__":
    main()
