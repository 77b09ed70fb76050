"""Worker side: a per-worker column cache (a Dask WorkerPlugin) and the query tasks.

Each worker keeps the columns (and evaluated selection masks) of the files it reads in a
memory-bounded ``ColumnCache``, filled lazily on first use. Two tasks run there:
``load_piece`` returns the rows of one owned file inside a time range (the halo a
neighbouring partition borrows), ``run_part`` assembles core and halo rows of one time
partition and runs the engine's ``run_partition`` on them.
"""

from __future__ import annotations

import itertools
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

try:
    from distributed.diagnostics.plugin import WorkerPlugin
except ImportError:  # the Spark extra has no Dask: only the dask-free pieces are used
    WorkerPlugin = object  # type: ignore[misc,assignment]

from jaas.engine.core.correlate import Spec
from jaas.engine.core.partition import (
    PartialResult,
    Partition,
    VetoPhase,
    halo_bounds,
    rows_between,
    run_partition,
    run_vetoes,
    samples_between,
)
from jaas.engine.lang.expr import Expr
from jaas.engine.session.cache import CacheStats, ColumnCache
from jaas.engine.session.stream import file_stream as _file_stream
from jaas.errors import FormatError
from jaas.settings import settings

__all__ = [
    "PLUGIN_NAME",
    "FileRef",
    "JaasWorkerPlugin",
    "PartOutput",
    "PartTask",
    "Piece",
    "Query",
    "fetch_kept",
    "load_files",
    "load_piece",
    "pack_bits",
    "pack_intervals",
    "run_part",
    "run_parts",
    "run_pieces",
    "unpack_bits",
    "unpack_intervals",
    "worker_stats",
]

PLUGIN_NAME = "jaas-cache"


def _default_budget(memory_limit: int | None) -> int:
    env = settings().cache_bytes
    if env:
        return env
    # half the worker's memory limit: Dask's own spill threshold starts at 60 %
    return int(memory_limit * 0.5) if memory_limit else 4 * 1024**3


class JaasWorkerPlugin(WorkerPlugin):
    """Per-worker column cache, and the files this worker owns (claimed at start).

    Args:
        budget: cache bytes (default ``JAAS_CACHE_BYTES`` or half the memory limit).
        files: (path, t_min, t_max) of files this worker owns, registered with the
            scheduler's registry at setup (``jaas worker --files``).
        local: the files are on node-local storage (unreachable when this worker dies).
    """

    name = PLUGIN_NAME

    def __init__(
        self,
        budget: int | None = None,
        files: Sequence[tuple[str, int, int]] = (),
        local: bool = False,
    ) -> None:
        self.budget = budget
        self.files = [tuple(f) for f in files]
        self.local = local
        self.cache = ColumnCache(budget or _default_budget(None))
        self.address = ""
        self.phases: dict[tuple[Any, ...], VetoPhase] = {}  # veto work per partition
        self.kept = KeptVetoes()  # per-event veto arrays of recent queries (fetch_kept)

    def _init(self, worker: Any) -> None:
        self.address = str(getattr(worker, "address", "") or "")
        _quick_stream(worker)
        _install_handlers(worker)
        budget = self.budget or _default_budget(getattr(worker, "memory_limit", None))
        if budget != self.cache.budget:
            self.cache = ColumnCache(budget)

    async def setup(self, worker: Any) -> None:
        self._init(worker)
        if self.files:
            await worker.scheduler.jaas_claim(
                worker=worker.address, files=self.files, local=self.local
            )


STREAM_INTERVAL = 0.001  # s; the worker batches its messages to the scheduler for 2 ms


def _install_handlers(worker: Any) -> None:
    """The direct path's RPC handlers (``jaas.cluster.direct``) on this worker."""
    from jaas.cluster.direct import install

    if hasattr(worker, "handlers"):
        install(worker)


def _quick_stream(worker: Any) -> None:
    stream: Any = getattr(worker, "batched_stream", None)
    if getattr(stream, "interval", 0) > STREAM_INTERVAL:
        stream.interval = STREAM_INTERVAL


def _state(worker: Any = None) -> JaasWorkerPlugin:
    """The current worker's plugin; installed with defaults on first use if missing."""
    from distributed import get_worker

    worker = worker if worker is not None else get_worker()
    plugin = worker.plugins.get(PLUGIN_NAME)
    if not isinstance(plugin, JaasWorkerPlugin):
        plugin = JaasWorkerPlugin()
        plugin._init(worker)
        worker.plugins[PLUGIN_NAME] = plugin
    if not plugin.address:
        plugin.address = str(worker.address)
        _quick_stream(worker)
        _install_handlers(worker)
    return plugin


def dask_setup(worker: Any) -> None:
    """``dask worker --preload jaas.cluster.worker``: a cache sized from the memory limit."""
    plugin = JaasWorkerPlugin()
    budget = _default_budget(getattr(worker, "memory_limit", None))
    plugin.cache = ColumnCache(budget)
    plugin.budget = budget
    worker.plugins[PLUGIN_NAME] = plugin
    _install_handlers(worker)


def worker_stats(dask_worker: Any = None) -> CacheStats:
    """This worker's cache statistics (run with ``Client.run``)."""
    return _state(dask_worker).cache.stats()


# --- query data shipped to workers ---------------------------------------------------
@dataclass(frozen=True)
class FileRef:
    """An index file, its first row's global stream index and its row count."""

    path: str
    offset: int
    n_events: int


@dataclass(frozen=True)
class Query:
    """What every task of one query needs: columns, masks, spec, segments, halo."""

    names: tuple[str, ...]  # index columns to load (always with "t")
    exprs: Mapping[str, Expr]  # mask name -> condition
    spec: Spec
    segments: np.ndarray
    before: int
    after: int
    gather: tuple[str, ...] = ()  # columns whose core rows return (Spark backend)
    keep: str = ""  # a query token: veto bits and intervals stay on the worker under it


@dataclass(frozen=True)
class PartTask:
    """One time partition: core ``[t_lo, t_hi)``, rows needed in ``[lo, hi]``.

    ``sources`` lists the needed files in time order: a ``FileRef`` read here, or an int,
    the position of a ``Piece`` computed by the file's owner among the task's arguments.
    """

    index: int
    t_lo: int
    t_hi: int
    lo: int
    hi: int
    sources: tuple[FileRef | int, ...]


@dataclass
class Piece:
    """Rows of one file in a time range; ``start`` is the first row's global index."""

    path: str
    start: int
    columns: dict[str, np.ndarray]

    @property
    def stop(self) -> int:
        return self.start + len(self.columns["t"])


Packed = tuple[np.ndarray, np.ndarray] | np.ndarray  # veto bits, see pack_bits
Kept = tuple[Packed, tuple[int, np.ndarray] | None, np.ndarray]  # bits, intervals, raw


@dataclass
class PartOutput:
    """A partition's partial result without its per-event arrays: the veto bits are
    ``packed`` (nonzero positions and values, or dense when most are set) and of the
    gathered columns only the ``rows`` that pairs reference travel (global indices,
    sorted, with their ``values``). With ``Query.keep`` the veto bits and intervals do
    not travel at all (``packed`` and ``intervals`` None): ``fetch_kept`` returns them."""

    partial: PartialResult
    packed: Packed | None
    intervals: tuple[int, np.ndarray] | None  # veto intervals as uint32 steps, if they fit
    rows: np.ndarray
    values: dict[str, np.ndarray]
    worker: str


def pack_bits(bits: np.ndarray) -> tuple[np.ndarray, np.ndarray] | np.ndarray:
    """Veto bits as (positions, values) of the nonzero ones, or dense when that is smaller."""
    at = np.flatnonzero(bits)
    if 2 * at.size >= bits.size:
        return bits
    return at.astype(np.int32), bits[at]


def pack_intervals(iv: np.ndarray) -> tuple[int, np.ndarray] | None:
    """Sorted (k, 2) intervals as (first bound, uint32 steps between bounds), or None
    when a step does not fit (then they travel as they are)."""
    flat = iv.reshape(-1)
    if not flat.size:
        return None
    steps = np.diff(flat)
    if steps.size and (steps.min() < 0 or steps.max() >= 1 << 32):
        return None
    return int(flat[0]), steps.astype(np.uint32)


def unpack_intervals(packed: tuple[int, np.ndarray]) -> np.ndarray:
    """The inverse of ``pack_intervals``."""
    first, steps = packed
    flat = np.empty(steps.size + 1, np.int64)
    flat[0] = first
    np.cumsum(steps, dtype=np.int64, out=flat[1:])
    flat[1:] += first
    return flat.reshape(-1, 2)


KEEP_BYTES = 256 * 1024**2  # per worker: veto arrays of recent queries kept for fetch_kept


class KeptVetoes:
    """Veto bits and intervals of recent queries' partitions, least recently stored
    dropped first beyond ``budget`` bytes (a client then recomputes what is missing)."""

    def __init__(self, budget: int = KEEP_BYTES) -> None:
        self.budget = budget
        self.nbytes = 0
        self._items: OrderedDict[tuple[str, int], tuple[Kept, int]] = OrderedDict()

    @staticmethod
    def _size(item: Kept) -> int:
        packed, iv, raw = item
        arrays = [*(packed if isinstance(packed, tuple) else (packed,)), raw]
        return sum(a.nbytes for a in arrays) + (iv[1].nbytes if iv is not None else 0)

    def put(self, token: str, index: int, item: Kept) -> None:
        old = self._items.pop((token, index), None)
        if old is not None:
            self.nbytes -= old[1]
        size = self._size(item)
        self._items[(token, index)] = (item, size)
        self.nbytes += size
        while self.nbytes > self.budget and len(self._items) > 1:
            _, (_, n) = self._items.popitem(last=False)
            self.nbytes -= n

    def get(self, token: str, index: int) -> Kept | None:
        got = self._items.get((token, index))
        return None if got is None else got[0]


def fetch_kept(token: str, indices: Sequence[int]) -> list[Kept | None]:
    """The kept veto arrays of query ``token``'s partitions ``indices`` (None: gone)."""
    kept = _state().kept
    return [kept.get(token, i) for i in indices]


def unpack_bits(packed: Packed, n: int) -> np.ndarray:
    """The inverse of ``pack_bits`` for ``n`` events."""
    if isinstance(packed, np.ndarray):
        return packed
    bits = np.zeros(n, np.uint32)
    bits[packed[0]] = packed[1]
    return bits


def file_stream(cache: ColumnCache, ref: FileRef, query: Query) -> dict[str, np.ndarray]:
    """Columns and masks of a whole file, through ``cache`` (masks cached by their text)."""
    return _file_stream(cache, ref.path, ref.n_events, query.names, query.exprs)


def _slice(path: str, offset: int, cols: dict[str, np.ndarray], lo: int, hi: int) -> Piece:
    i0, rows = rows_between(cols, lo, hi)
    return Piece(path, offset + i0, rows)


def load_piece(ref: FileRef, query: Query, lo: int, hi: int) -> Piece:
    """Rows of ``ref`` with ``lo <= t <= hi`` (run on the file's owner)."""
    return _slice(ref.path, ref.offset, file_stream(_state().cache, ref, query), lo, hi)


def _concat(pieces: list[Piece], names: Sequence[str]) -> tuple[int, dict[str, np.ndarray]]:
    for a, b in itertools.pairwise(pieces):
        if b.start != a.stop:
            raise FormatError(
                f"rows {a.start}..{a.stop} of {a.path} and from {b.start} of {b.path} are "
                "not contiguous in time order; do the files overlap in time?",
                path=b.path,
            )
    if len(pieces) == 1:
        return pieces[0].start, pieces[0].columns
    return pieces[0].start, {n: np.concatenate([p.columns[n] for p in pieces]) for n in names}


MAX_PHASES = 4096  # remembered veto phases per worker (bits of its halo events each)


def _phase_key(task: PartTask, query: Query) -> tuple[Any, ...] | None:
    """What a partition's veto phase depends on: its rows (files read here, by their
    size and mtime) and the vetoes; None when rows come from other workers."""
    refs = [s for s in task.sources if isinstance(s, FileRef)]
    if len(refs) != len(task.sources):
        return None
    spec = query.spec
    files = tuple((s.offset, s.n_events, ColumnCache.file_key(s.path)) for s in refs)
    ex = query.exprs
    triggers = tuple(str(ex[v.trigger]) if v.trigger in ex else v.trigger for v in spec.vetoes)
    return (
        task.t_lo, task.t_hi, task.lo, task.hi, files, spec.vetoes, triggers, spec.gap_veto,
        spec.fiducial_radius, spec.mc_samples, spec.mc_seed,
        np.ascontiguousarray(query.segments).tobytes(),
    )  # fmt: skip


def _assemble(
    task: PartTask, query: Query, pieces: list[Piece], cache: ColumnCache
) -> tuple[int, dict[str, np.ndarray], int, int, dict[str, np.ndarray], Partition, Any]:
    """The partition's rows (``pieces`` in time order) cut to its core and halo: the first
    global row, the columns, the core bounds, the stream, the partition, its MC samples."""
    names = list(dict.fromkeys(["t", *query.names, *query.exprs]))
    if not pieces:
        g0, cols = 0, {n: np.zeros(0, np.int64 if n == "t" else np.float64) for n in names}
    else:
        g0, cols = _concat(pieces, names)
    t = cols["t"].astype(np.int64, copy=False)
    h0, a, b, h1 = halo_bounds(t, task.t_lo, task.t_hi, query.before, query.after)
    part = Partition(task.index, g0 + h0, g0 + a, g0 + b, g0 + h1, task.t_lo, task.t_hi)
    stream = {n: v[h0:h1] for n, v in cols.items()}
    stream["t"] = t[h0:h1]
    samples = None
    if any(v.kind != "detector" for v in query.spec.vetoes):
        samples = cache.veto_memo.samples(query.segments, query.spec)
    return g0, cols, a, b, stream, part, samples_between(samples, task.t_lo, task.t_hi)


def run_pieces(
    task: PartTask, query: Query, pieces: list[Piece], cache: ColumnCache
) -> tuple[PartialResult, dict[str, np.ndarray]]:
    """The engine's partition step on the partition's rows (``pieces`` in time order):
    its partial result and the core rows of the gathered columns (the Spark executor)."""
    _, cols, a, b, stream, part, sub = _assemble(task, query, pieces, cache)
    partial = run_partition(stream, part, query.spec, query.segments, sub)
    core = {n: np.ascontiguousarray(cols[n][a:b]) for n in query.gather}
    return partial, core


def _run_one(
    state: JaasWorkerPlugin, task: PartTask, query: Query, remote: Sequence[Piece]
) -> PartOutput:
    pieces = [
        _slice(remote[s].path, remote[s].start, remote[s].columns, task.lo, task.hi)
        if isinstance(s, int)
        else _slice(s.path, s.offset, file_stream(state.cache, s, query), task.lo, task.hi)
        for s in task.sources
    ]
    g0, cols, _, _, stream, part, sub = _assemble(task, query, pieces, state.cache)
    spec = query.spec
    key = _phase_key(task, query)
    vp = state.phases.get(key) if key is not None else None
    if vp is None:
        vp = run_vetoes(stream, part, spec, query.segments, sub)
        if key is not None:
            if len(state.phases) >= MAX_PHASES:
                state.phases.clear()
            state.phases[key] = vp
    partial = run_partition(stream, part, spec, query.segments, sub, vp)
    packed: Packed | None = pack_bits(partial.veto_bits)
    partial.veto_bits = partial.veto_bits[:0]
    intervals = pack_intervals(partial.veto_intervals)
    if intervals is not None:
        partial.veto_intervals = partial.veto_intervals[:0]
    if query.keep and packed is not None:  # stays here until fetched (lazy on the client)
        if isinstance(packed, np.ndarray):
            packed = packed.copy()  # not a view pinning the halo's bits
        state.kept.put(query.keep, task.index, (packed, intervals, partial.veto_intervals))
        packed, intervals = None, None
        partial.veto_intervals = partial.veto_intervals[:0]
    p = partial
    rows = np.unique(np.concatenate([p.prompt, p.delayed, p.off_prompt, p.off_delayed]))
    local = rows - g0
    values = {n: cols[n][local] for n in dict.fromkeys(["t", *query.names])}
    return PartOutput(partial, packed, intervals, rows, values, state.address)


def run_part(task: PartTask, query: Query, *remote: Piece) -> PartOutput:
    """Assemble the partition's rows (own files here, others' pieces) and run it."""
    return _run_one(_state(), task, query, remote)


def run_parts(tasks: Sequence[PartTask], query: Query, *remote: Piece) -> list[PartOutput]:
    """Several partitions of this worker in one task (``sources`` ints index ``remote``,
    pieces of other workers' files covering what any of the tasks needs)."""
    state = _state()
    return [_run_one(state, task, query, remote) for task in tasks]


def load_files(refs: Sequence[FileRef], query: Query) -> dict[str, np.ndarray]:
    """Every row of the columns and masks of ``refs`` (owned here), concatenated."""
    cache = _state().cache
    streams = [file_stream(cache, ref, query) for ref in refs]
    names = list(dict.fromkeys(["t", *query.names, *query.exprs]))
    return {n: np.concatenate([s[n] for s in streams]) for n in names}
