"""Worker side: a per-worker column cache (a Dask WorkerPlugin) and the query tasks.

Each worker keeps the columns (and evaluated selection masks) of the files it reads in a
memory-bounded ``ColumnCache``, filled lazily on first use. Two tasks run there:
``load_piece`` returns the rows of one owned file inside a time range (the halo a
neighbouring partition borrows), ``run_part`` assembles core and halo rows of one time
partition and runs the engine's ``run_partition`` on them.

A partition usually spans all the files a worker owns (``plan.block_cuts``): its rows
are assembled once, kept in the same cache (read-only) and reused by warm queries, so
that the veto phase (``Phases``) and the candidate sub-streams remembered on it apply
as for the local engine's one stream. The per-event veto arrays stay here
(``KeptVetoes``) and are packed only when a client fetches them.
"""

from __future__ import annotations

import hashlib
import itertools
import threading
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
    "Phases",
    "Piece",
    "Query",
    "fetch_kept",
    "load_files",
    "load_piece",
    "owned_piece",
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
        self.phases = Phases()  # veto work per partition (see _phase_key)
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
    """Rows of one file in a time range; ``start`` is the first row's global index;
    ``fkey`` the file's identity on its owner (``ColumnCache.file_key``), if known: the
    receiving worker then remembers the rows it assembles with it (see ``_rows_key``)."""

    path: str
    start: int
    columns: dict[str, np.ndarray]
    fkey: tuple[str, int, int] | None = None

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
    dropped first beyond ``budget`` bytes (a client then recomputes what is missing).

    ``put`` stores them packed (``Kept``); ``put_raw`` stores the arrays as the
    partition left them (read-only views of a remembered veto phase: no copy) and
    ``get`` packs them when they are asked for (most results never are)."""

    def __init__(self, budget: int = KEEP_BYTES) -> None:
        self.budget = budget
        self.nbytes = 0
        self._items: OrderedDict[tuple[str, int], tuple[Kept | Raw, int]] = OrderedDict()

    @staticmethod
    def _size(item: Kept | Raw) -> int:
        if isinstance(item, Raw):
            return item.bits.nbytes + item.intervals.nbytes
        packed, iv, raw = item
        arrays = [*(packed if isinstance(packed, tuple) else (packed,)), raw]
        return sum(a.nbytes for a in arrays) + (iv[1].nbytes if iv is not None else 0)

    def put(self, token: str, index: int, item: Kept | Raw) -> None:
        old = self._items.pop((token, index), None)
        if old is not None:
            self.nbytes -= old[1]
        size = self._size(item)
        self._items[(token, index)] = (item, size)
        self.nbytes += size
        while self.nbytes > self.budget and len(self._items) > 1:
            _, (_, n) = self._items.popitem(last=False)
            self.nbytes -= n

    def put_raw(self, token: str, index: int, bits: np.ndarray, intervals: np.ndarray) -> None:
        """Store a partition's veto bits (core events) and intervals unpacked."""
        self.put(token, index, Raw(bits, intervals))

    def get(self, token: str, index: int) -> Kept | None:
        got = self._items.get((token, index))
        if got is None:
            return None
        item = got[0]
        if not isinstance(item, Raw):
            return item
        packed = pack_bits(item.bits)
        iv = pack_intervals(item.intervals)
        return packed, iv, item.intervals[:0] if iv is not None else item.intervals


@dataclass(frozen=True)
class Raw:
    """A partition's veto bits and intervals as computed (see ``KeptVetoes.put_raw``)."""

    bits: np.ndarray
    intervals: np.ndarray


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


def _slice(
    path: str,
    offset: int,
    cols: dict[str, np.ndarray],
    lo: int,
    hi: int,
    fkey: tuple[str, int, int] | None = None,
) -> Piece:
    i0, rows = rows_between(cols, lo, hi)
    return Piece(path, offset + i0, rows, fkey)


def owned_piece(cache: ColumnCache, ref: FileRef, query: Query, lo: int, hi: int) -> Piece:
    """Rows of ``ref`` with ``lo <= t <= hi``, with the file's identity (on its owner)."""
    fkey = cache.file_key(ref.path)
    return _slice(ref.path, ref.offset, file_stream(cache, ref, query), lo, hi, fkey)


def load_piece(ref: FileRef, query: Query, lo: int, hi: int) -> Piece:
    """Rows of ``ref`` with ``lo <= t <= hi`` (run on the file's owner)."""
    return owned_piece(_state().cache, ref, query, lo, hi)


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


MAX_PHASES = 4096  # remembered veto phases per worker
PHASE_BYTES = 512 * 1024**2  # and their estimated bytes (see Phases)


class Phases:
    """The veto phases a worker remembers, by ``_phase_key``: least recently used
    dropped first beyond ``max_items`` or ``budget`` bytes (estimated: the bits and
    intervals, and as much again three times for the candidate sub-streams a phase
    may hold). The last one stored is always kept."""

    def __init__(self, budget: int = PHASE_BYTES, max_items: int = MAX_PHASES) -> None:
        self.budget, self.max_items = budget, max_items
        self.nbytes = 0
        self._items: OrderedDict[tuple[Any, ...], tuple[VetoPhase, int]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: tuple[Any, ...]) -> VetoPhase | None:
        with self._lock:  # a worker with several threads runs partitions at once
            got = self._items.get(key)
            if got is None:
                return None
            self._items.move_to_end(key)
            return got[0]

    def put(self, key: tuple[Any, ...], vp: VetoPhase) -> None:
        size = 4 * vp.bits.nbytes + vp.union.nbytes
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self.nbytes -= old[1]
            self._items[key] = (vp, size)
            self.nbytes += size
            while len(self._items) > 1 and (
                self.nbytes > self.budget or len(self._items) > self.max_items
            ):
                _, (_, n) = self._items.popitem(last=False)
                self.nbytes -= n


MASK = "mask:"  # cache names of the masks of assembled rows: by their condition text
FIRST = "__first"  # cache name of the assembled rows' first global index (one int64)


def _rows_key(task: PartTask, remote: Mapping[int, Piece]) -> tuple[Any, ...] | None:
    """What a partition's rows are: ``[lo, hi]`` and, per source in time order, the file
    read here (global offset, rows, identity) or the rows of another worker's file
    (its identity, first and end row); None when such a piece has no identity."""
    sources: list[tuple[Any, ...]] = []
    for s in task.sources:
        if isinstance(s, FileRef):
            sources.append((s.offset, s.n_events, ColumnCache.file_key(s.path)))
            continue
        piece = remote[s]
        if piece.fkey is None:
            return None
        sources.append((piece.fkey, piece.start, piece.stop))
    return (task.lo, task.hi, tuple(sources))


def _rows(
    state: JaasWorkerPlugin, task: PartTask, query: Query, remote: Sequence[Piece]
) -> tuple[int, dict[str, np.ndarray], tuple[Any, ...] | None]:
    """The partition's rows ``[lo, hi]`` over its sources: the first global row, the
    columns and masks (by the query's mask names), and their key (``_rows_key``).

    With a key the rows are assembled once and kept in the worker's column cache
    (read-only, masks by their condition text): a partition over many files of this
    worker costs no copy in warm queries, and its arrays keep their identity, which the
    candidate sub-streams remembered on a veto phase need (``run_partition``)."""
    cut = {
        s: _slice(p.path, p.start, p.columns, task.lo, task.hi, p.fkey)
        for s in task.sources
        if isinstance(s, int)
        for p in (remote[s],)
    }

    def pieces() -> list[Piece]:
        return [
            cut[s]
            if isinstance(s, int)
            else _slice(s.path, s.offset, file_stream(state.cache, s, query), task.lo, task.hi)
            for s in task.sources
        ]

    names = list(dict.fromkeys(["t", *query.names]))
    key = _rows_key(task, cut)
    if key is None or not task.sources:
        g0, cols = _assembled(pieces(), [*names, *query.exprs])
        return g0, cols, None
    texts = {name: str(expr) for name, expr in query.exprs.items()}
    by_text = {MASK + text: name for name, text in texts.items()}

    def load(missing: list[str]) -> dict[str, np.ndarray]:
        src = {m: by_text.get(m, m) for m in missing if m != FIRST}
        g0, cols = _assembled(pieces(), list(dict.fromkeys(src.values())))
        out = {m: cols[n] for m, n in src.items()}
        out[FIRST] = np.array([g0], np.int64)
        return out

    digest = hashlib.sha1(repr(key).encode()).hexdigest()
    wanted = [FIRST, *names, *by_text]
    got = state.cache.get_keyed((f"rows:{digest}", 0, 0), wanted, load, derived=True)
    cols = {n: got[n] for n in names}
    cols.update({name: got[MASK + text] for name, text in texts.items()})
    return int(got[FIRST][0]), cols, key


def _assembled(pieces: list[Piece], names: Sequence[str]) -> tuple[int, dict[str, np.ndarray]]:
    """The first global row and the columns ``names`` of ``pieces`` (time order)."""
    if not pieces:
        return 0, {n: np.zeros(0, np.int64 if n == "t" else np.float64) for n in names}
    g0, cols = _concat(pieces, names)
    return g0, {n: cols[n] for n in names}


def _phase_key(
    task: PartTask, query: Query, rows: tuple[Any, ...] | None
) -> tuple[Any, ...] | None:
    """What a partition's veto phase depends on: its rows (``_rows_key``), the vetoes,
    their condition texts, the MC settings and the segments; None for rows without a key."""
    if rows is None:
        return None
    spec = query.spec
    ex = query.exprs
    triggers = tuple(str(ex[v.trigger]) if v.trigger in ex else v.trigger for v in spec.vetoes)
    return (
        task.t_lo, task.t_hi, rows, spec.vetoes, triggers, spec.gap_veto,
        spec.fiducial_radius, spec.mc_samples, spec.mc_seed,
        np.ascontiguousarray(query.segments).tobytes(),
    )  # fmt: skip


def _cut(
    task: PartTask, query: Query, g0: int, cols: dict[str, np.ndarray], cache: ColumnCache
) -> tuple[int, int, dict[str, np.ndarray], Partition, Any]:
    """The partition's rows cut to its core and halo: the core bounds (into ``cols``),
    the stream, the partition, its MC samples."""
    t = cols["t"].astype(np.int64, copy=False)
    h0, a, b, h1 = halo_bounds(t, task.t_lo, task.t_hi, query.before, query.after)
    part = Partition(task.index, g0 + h0, g0 + a, g0 + b, g0 + h1, task.t_lo, task.t_hi)
    stream = {n: v[h0:h1] for n, v in cols.items()}
    stream["t"] = t[h0:h1]
    samples = None
    if any(v.kind != "detector" for v in query.spec.vetoes):
        samples = cache.veto_memo.samples(query.segments, query.spec)
    return a, b, stream, part, samples_between(samples, task.t_lo, task.t_hi)


def run_pieces(
    task: PartTask, query: Query, pieces: list[Piece], cache: ColumnCache
) -> tuple[PartialResult, dict[str, np.ndarray]]:
    """The engine's partition step on the partition's rows (``pieces`` in time order):
    its partial result and the core rows of the gathered columns (the Spark executor)."""
    names = list(dict.fromkeys(["t", *query.names, *query.exprs]))
    g0, cols = _assembled(pieces, names)
    a, b, stream, part, sub = _cut(task, query, g0, cols, cache)
    partial = run_partition(stream, part, query.spec, query.segments, sub)
    core = {n: np.ascontiguousarray(cols[n][a:b]) for n in query.gather}
    return partial, core


def _run_one(
    state: JaasWorkerPlugin, task: PartTask, query: Query, remote: Sequence[Piece]
) -> PartOutput:
    g0, cols, rows_key = _rows(state, task, query, remote)
    _, _, stream, part, sub = _cut(task, query, g0, cols, state.cache)
    spec = query.spec
    key = _phase_key(task, query, rows_key)
    vp = state.phases.get(key) if key is not None else None
    if vp is None and key is not None:
        vp = run_vetoes(stream, part, spec, query.segments, sub)
        vp.bits.setflags(write=False)  # shared with the outputs and kept arrays: no copy
        vp.union.setflags(write=False)
        state.phases.put(key, vp)
    partial = run_partition(stream, part, spec, query.segments, sub, vp)
    packed: Packed | None = None
    intervals: tuple[int, np.ndarray] | None = None
    if query.keep:  # stays here until fetched (lazy on the client), packed then
        state.kept.put_raw(query.keep, task.index, partial.veto_bits, partial.veto_intervals)
    else:
        packed = pack_bits(partial.veto_bits)
        intervals = pack_intervals(partial.veto_intervals)
    partial.veto_bits = partial.veto_bits[:0]
    if query.keep or intervals is not None:
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
