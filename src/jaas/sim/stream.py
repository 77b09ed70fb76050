"""Chunked truth generation: time blocks with their own seeds, followers carried over.

Each source draws, per seed block, from ``SeedSequence(seed, spawn_key=(crc32(source),
block))``, so adding a source leaves the others' streams unchanged and the output does not
depend on the chunk size (chunks only bound memory). Followers of a chunk's primaries that
fall after the chunk end wait in a pending buffer for the chunk that covers them.
"""

from __future__ import annotations

import queue
import threading
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

from jaas.sim.params import SimConfig
from jaas.sim.sources import GENERATORS, Block
from jaas.sim.truth import Events

__all__ = ["Chunk", "generate_batches", "generate_truth", "prefetch", "rng_for"]

_T = TypeVar("_T")


def rng_for(seed: int, stream: str, index: int) -> np.random.Generator:
    """The random generator of ``stream`` (a source name, or ``response``) for ``index``."""
    key = zlib.crc32(stream.encode())
    return np.random.Generator(
        np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(key, index)))
    )


@dataclass
class Chunk:
    """Time-sorted truth events with ``t`` in [t0, t1) (raw times; ties moved apart)."""

    events: Events
    t0: int
    t1: int


def _separate(t: np.ndarray, last: int, gap: int) -> np.ndarray:
    """Make ``t`` strictly increasing by at least ``gap`` ns, after ``last`` (min shift)."""
    if len(t) == 0:
        return t
    idx = np.arange(len(t), dtype=np.int64) * gap
    v = t - idx
    v[0] = max(v[0], last + gap)
    return np.maximum.accumulate(v) + idx


def _merged(config: SimConfig) -> Iterator[tuple[Events, npt.NDArray[np.intp], int, int]]:
    """Per chunk: (its rows and the followers pending from before, the order of the rows
    with ``t`` in [t0, t1), t0, t1). Ties in ``t`` are not yet moved apart."""
    start, end = config.start_ns, config.end_ns
    block_ns = round(config.block_s * 1e9)
    per_chunk = round(config.chunk_s / config.block_s)
    n_blocks = -(-(end - start) // block_ns)
    pending = Events.empty()
    p = config.physics
    for first in range(0, n_blocks, per_chunk):
        parts = [pending]
        for k in range(first, min(first + per_chunk, n_blocks)):
            t0 = start + k * block_ns
            block = Block(index=k, t0=t0, length=min(block_ns, end - t0))
            muons = Events.empty()
            for name, generate in GENERATORS.items():
                scale = config.factor(name)
                if scale == 0:
                    continue
                ev = generate(block, rng_for(config.seed, name, k), p, scale, muons)
                if name == "muon":
                    muons = ev
                parts.append(ev)
        t1 = min(start + (first + per_chunk) * block_ns, end)
        merged = Events.concat(parts)
        # one sort serves both: the rows before t1 are a prefix of the (t, uid) order,
        # and the order of the pending rows does not matter (they are sorted again later)
        order = merged.order()
        t_sorted = merged["t"][order]
        n_now, n_run = np.searchsorted(t_sorted, (t1, end), side="left")
        pending = merged.take(order[n_now:n_run])
        yield merged, order[:n_now], start + first * block_ns, t1


_FIRST_LAST = np.iinfo(np.int64).min // 2  # "time of the previous event" before the first


def generate_truth(config: SimConfig) -> Iterator[Chunk]:
    """Yield the run's truth events chunk by chunk, time-sorted, all ``t`` distinct.

    Example:
        >>> cfg = SimConfig(duration_s=60, block_s=60, chunk_s=60)
        >>> sum(len(c.events) for c in generate_truth(cfg)) > 0
        True
    """
    last = _FIRST_LAST
    for merged, order, t0, t1 in _merged(config):
        out = merged.take(order)
        out.cols["t"] = _separate(out["t"], last, config.min_trigger_gap_ns)
        if len(out):
            last = int(out["t"][-1])
        yield Chunk(out, t0, t1)


def generate_batches(config: SimConfig, size: int) -> Iterator[Events]:
    """The events of :func:`generate_truth` in batches of ``size`` (the last one shorter).

    Each batch is gathered from the sorted chunks straight into its own columns, so the
    rows of a batch that straddles two chunks are not copied twice.

    Example:
        >>> cfg = SimConfig(duration_s=60, block_s=60, chunk_s=60)
        >>> sizes = [len(b) for b in generate_batches(cfg, 100)]
        >>> sizes[0], sizes[-1] <= 100
        (100, True)
    """
    last = _FIRST_LAST
    gap = config.min_trigger_gap_ns
    pieces: list[tuple[Events, npt.NDArray[np.intp]]] = []
    have = 0

    def gather() -> Events:
        nonlocal last
        cols: dict[str, npt.NDArray[Any]] = {}
        for name, arr in pieces[0][0].cols.items():
            out = np.empty(have, arr.dtype)
            a = 0
            for ev, idx in pieces:
                np.take(ev.cols[name], idx, out=out[a : a + len(idx)], mode="clip")  # unbuffered
                a += len(idx)
            cols[name] = out
        cols["t"] = _separate(cols["t"], last, gap)
        last = int(cols["t"][-1])
        return Events(cols)

    for merged, order, _t0, _t1 in _merged(config):
        pos = 0
        while pos < len(order):
            take = min(size - have, len(order) - pos)
            pieces.append((merged, order[pos : pos + take]))
            have += take
            pos += take
            if have == size:
                yield gather()
                pieces, have = [], 0
    if have:
        yield gather()


_DONE = object()


def prefetch(items: Iterator[_T], depth: int = 1) -> Iterator[_T]:
    """Yield ``items`` in order, computing up to ``depth`` of them ahead on a thread.

    Numpy and Arrow release the GIL in their large operations, so generating the next
    chunk overlaps with processing this one. An exception of the producer is re-raised
    here; leaving the loop early stops the producer.

    Example:
        >>> list(prefetch(iter(range(3))))
        [0, 1, 2]
    """
    q: queue.Queue[object] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def run() -> None:
        try:
            for item in items:
                if not put(item):
                    return
            put(_DONE)
        except BaseException as exc:  # re-raised in the consumer
            put(exc)

    worker = threading.Thread(target=run, name="jaas-sim-prefetch", daemon=True)
    worker.start()
    try:
        while True:
            item = q.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        worker.join()
