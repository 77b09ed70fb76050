"""RTRAW files (ROOT): the RAW hits per event, and the RAW -> RTRAW conversion step.

Layout of an RTRAW file (written with uproot, readable by ROOT itself):

- TTree ``rtraw``, one entry per trigger, in RAW order:
  ``event_id`` (uint64), ``t`` (int64, ns since the Unix epoch), ``trigger`` (uint16,
  TriggerBit mask), ``nhit`` (int32, counter of the jagged branches), ``pmt`` (uint32[]),
  ``charge`` (float32[], PE), ``time`` (float32[], ns after the trigger time).
- TObjString ``jaas_meta``: JSON object with ``format`` ("rtraw"), ``run``, ``file_seq``,
  ``start_time``, ``source`` (RAW file name), ``source_adler32``, ``software_version``,
  ``compression``, ``n_events``.

Baskets hold at most ``basket_hits`` hits (and ``basket_events`` events), so reading one
event decompresses a small basket: this is what makes the index -> full event redirect
cheap. uproot stamps a file with its name, a UUID and the time of writing; jaas makes these
deterministic (the final file name, a UUID derived from the source checksum, and the data's
start time as creation time, see ``root_writer``), so the same input and software version
give byte-identical files. A step skips its work when the output exists and its metadata
matches (source checksum + software version + compression); an output with other content
is not replaced unless asked (``jaas.formats.outputs``).
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import json
import os
import shutil
import tempfile
import threading
import time
import types
import uuid
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import awkward as ak
import numpy as np
import numpy.typing as npt
import uproot

from jaas._io import adler32_file, atomic_path
from jaas._version import __version__
from jaas.errors import ConfigError, FormatError
from jaas.formats import _baskets
from jaas.formats._baskets import Column, read_rows
from jaas.formats.events import HitEvents
from jaas.formats.outputs import StepCheck, commit_step, kept_output
from jaas.progress import progress

__all__ = [
    "BASKET_EVENTS",
    "BASKET_HITS",
    "META_KEY",
    "TREE",
    "StepResult",
    "convert_raw",
    "default_rtraw_path",
    "iter_rtraw",
    "output_meta",
    "parse_compression",
    "read_meta",
    "read_rtraw",
    "take_hits",
    "write_rtraw",
]

_SOURCE = ("source", "source_adler32")  # the input's name and checksum in the output's metadata

TREE = "rtraw"
META_KEY = "jaas_meta"
BASKET_HITS = 1 << 15  # hits per basket: 128 kB per hit branch, ~20 low-energy events
BASKET_EVENTS = 8192  # events per basket at most (scalar branches: 64 kB of int64)

_HIT_TYPE = "var * {pmt: uint32, charge: float32, time: float32}"
_SCALARS = {"event_id": np.uint64, "t": np.int64, "trigger": np.uint16}
_HITS = ("pmt", "charge", "time")
# codec -> (uproot class, default level, highest level); ROOT's own default is zstd level 5
_CODECS: dict[str, tuple[Any, int, int]] = {
    "zstd": (uproot.ZSTD, 5, 22),
    "lz4": (uproot.LZ4, 4, 12),
    "zlib": (uproot.ZLIB, 6, 9),
}
# entry reads decode baskets themselves (False: through uproot's TBasket model, as before)
_DIRECT = True
# local entry reads use the kept basket layout and memory map (False: the open uproot tree)
_LAYOUTS = True
_UUID_NS = uuid.UUID("5f1b9a1e-6b7e-4c7a-9a55-6a6161730001")  # jaas namespace for file UUIDs


@dataclass
class StepResult:
    """Outcome of one processing step on one file (convert, reco, index).

    Attributes:
        input: the input file.
        output: the file written (or found up to date).
        n_events: events in the output.
        skipped: True when the output existed with matching content and was kept.
        t_min, t_max: first and last trigger time in ns (None if no events).
        seconds: wall time of the step.
        meta: the output's file-level metadata (run, file_seq, checksums, versions, ...).
    """

    input: Path
    output: Path
    n_events: int
    skipped: bool = False
    t_min: int | None = None
    t_max: int | None = None
    seconds: float = 0.0
    meta: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_meta(
        cls, src: Path, out: Path, meta: dict[str, Any], t0: float, *, skipped: bool = False
    ) -> StepResult:
        """The result of a step whose output carries ``meta`` (``t0``: perf_counter at the
        start of the step)."""

        def opt_int(key: str) -> int | None:
            value = meta.get(key)
            return int(value) if value not in (None, "") else None

        return cls(
            input=src,
            output=out,
            n_events=opt_int("n_events") or 0,
            skipped=skipped,
            t_min=opt_int("t_min"),
            t_max=opt_int("t_max"),
            seconds=time.perf_counter() - t0,
            meta=meta,
        )


def parse_compression(spec: str, level: int | None = None) -> tuple[str, int | None]:
    """Parse ``"zstd"``, ``"zstd:5"``, ``"lz4:4"``, ``"zlib:6"`` or ``"none"`` to (codec, level).

    Raises:
        ConfigError: unknown codec or level out of range (the valid ones are named).
    """
    name, _, lvl = spec.strip().lower().partition(":")
    if name in ("none", "", "off"):
        return "none", None
    if name not in _CODECS:
        raise ConfigError(f"unknown compression {spec!r}; use one of zstd, lz4, zlib, none")
    _, default, highest = _CODECS[name]
    if lvl:
        try:
            level = int(lvl)
        except ValueError:
            raise ConfigError(f"compression level in {spec!r} is not an integer") from None
    level = default if level is None else level
    if not 1 <= level <= highest:
        raise ConfigError(f"{name} compression level must be in 1..{highest}, got {level}")
    return name, level


def _codec(name: str, level: int | None) -> Any:
    return None if name == "none" else _CODECS[name][0](level)


_FROZEN_NOW: contextvars.ContextVar[dt.datetime | None] = contextvars.ContextVar(
    "jaas_uproot_now", default=None
)
_TDATIME_RANGE = (dt.datetime(1995, 1, 1), dt.datetime(2058, 12, 31))  # what TDatime can hold


class _Clock:
    """Stands in for ``datetime.datetime`` in uproot's writer: ``now()`` is frozen inside
    ``root_writer`` (a context variable, so other threads and other writers are unaffected)."""

    @staticmethod
    def now(tz: dt.tzinfo | None = None) -> dt.datetime:
        frozen = _FROZEN_NOW.get()
        return dt.datetime.now(tz) if frozen is None else frozen


def _install_clock() -> None:
    import uproot.writing._cascade as cascade
    import uproot.writing._cascadentuple as cascadentuple
    import uproot.writing._cascadetree as cascadetree
    import uproot.writing.writable as writable

    for module in (cascade, cascadetree, cascadentuple, writable):
        if getattr(module, "datetime", None) is dt:  # uproot uses only datetime.datetime.now
            module.datetime = types.SimpleNamespace(datetime=_Clock)


@contextlib.contextmanager
def root_writer(
    path: str | os.PathLike[str], *, compression: Any, created_ns: int | None, uuid_seed: str
) -> Iterator[Any]:
    """Open an uproot file for writing at ``path``: atomically and byte-deterministically.

    The file is written as ``<tmpdir>/<final name>`` (ROOT stores the name), with the UUID
    ``uuid5(seed)`` and all TDatime stamps set to ``created_ns`` (clamped to TDatime's range;
    None = 1995-01-01), then renamed onto ``path`` via ``jaas._io.atomic_path``.
    """
    _install_clock()
    final = Path(path)
    when = dt.datetime(1995, 1, 1)
    if created_ns is not None:
        when = dt.datetime.fromtimestamp(created_ns // 10**9, dt.UTC).replace(tzinfo=None)
    when = min(max(when, _TDATIME_RANGE[0]), _TDATIME_RANGE[1])
    fixed_uuid = uuid.uuid5(_UUID_NS, uuid_seed)
    with atomic_path(final) as tmp:
        workdir = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
        token = _FROZEN_NOW.set(when)
        try:
            inner = workdir / final.name
            with uproot.recreate(
                inner, compression=compression, uuid_function=lambda: fixed_uuid
            ) as f:
                yield f
            os.replace(inner, tmp)
        finally:
            _FROZEN_NOW.reset(token)
            shutil.rmtree(workdir, ignore_errors=True)


def write_meta(file: Any, meta: dict[str, Any]) -> None:
    """Store ``meta`` as JSON in the TObjString ``jaas_meta`` of an open uproot file."""
    file[META_KEY] = json.dumps(meta, sort_keys=True)


def read_meta(path: str | os.PathLike[str], file: Any = None) -> dict[str, Any]:
    """The JSON metadata of a jaas ROOT file (RTRAW or ESD).

    Raises:
        FormatError: not a readable ROOT file, or no ``jaas_meta`` in it.
    """
    try:
        f = file if file is not None else uproot.open(path)
        try:
            return dict(json.loads(str(f[META_KEY])))
        finally:
            if file is None:
                f.close()
    except (OSError, ValueError, KeyError) as exc:
        raise FormatError(f"no readable '{META_KEY}' metadata: {exc}", path=path) from exc


def _open_tree(path: str | os.PathLike[str], tree: str) -> tuple[Any, Any]:
    # local files: memory-mapped (no reader threads to hand each basket read to)
    local = "://" not in os.fspath(path)
    opts: dict[str, Any] = {"array_cache": None}  # no hidden 100 MB cache per open file
    if local:
        opts["handler"] = uproot.source.file.MemmapSource
    try:
        f = uproot.open(path, **opts)
    except (OSError, ValueError) as exc:
        raise FormatError(f"not a readable ROOT file: {exc}", path=path) from exc
    if tree not in f:
        f.close()
        raise FormatError(f"no TTree '{tree}' in the file (keys: {f.keys()})", path=path)
    return f, f[tree]


_OPEN_MAX = 16  # open trees kept for entry reads (redirect): files, not their data
_open_lock = threading.Lock()
_open: OrderedDict[tuple[Any, ...], tuple[Any, Any, threading.Lock]] = OrderedDict()


@contextlib.contextmanager
def open_tree(path: str | os.PathLike[str], tree: str, *, keep: bool = False) -> Iterator[Any]:
    """The TTree ``tree`` of ``path``. With ``keep`` a local file stays open (up to 16,
    least recently used closed first) so that repeated entry reads skip re-reading the
    file's header and tree metadata; a file changed on disk (inode, size or mtime) is
    opened anew. Reads of one kept file are serialised."""
    try:
        key = _baskets.file_key(path, tree) if keep and "://" not in os.fspath(path) else None
    except OSError:
        key = None  # opened below, which names the problem
    if key is None:
        f, t = _open_tree(path, tree)
        with f:
            yield t
        return
    with _open_lock:
        hit = _open.get(key)
        if hit is not None:
            _open.move_to_end(key)
    if hit is None:
        f, t = _open_tree(path, tree)
        hit = (f, t, threading.Lock())
        with _open_lock:
            _open[key] = hit
            while len(_open) > _OPEN_MAX:
                _open.popitem(last=False)[1][0].close()
    with hit[2]:
        yield hit[1]


def _check_entries(path: Any, entries: npt.NDArray[np.int64], n: int) -> None:
    bad = entries[(entries < 0) | (entries >= n)]
    if len(bad):
        raise FormatError(f"entry {int(bad[0])} out of range: the file has {n} entries", path=path)


def _distinct(
    entries: npt.ArrayLike, n: int, path: Any
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    want = np.asarray(entries, dtype=np.int64).reshape(-1)
    _check_entries(path, want, n)
    uniq, inverse = np.unique(want, return_inverse=True)
    return uniq, inverse.reshape(-1)


def read_columns(
    path: str | os.PathLike[str], tree: str, branches: Sequence[str], entries: npt.ArrayLike
) -> tuple[dict[str, Column], npt.NDArray[np.int64]] | None:
    """``branches`` of ``entries`` (any order, repeats allowed) of ``tree`` in ``path``,
    decoded straight from the baskets holding them (``jaas.formats._baskets``): {branch:
    Column} of the distinct sorted entries and, for each requested entry, its row there.

    A local file's basket layout is kept (keyed by inode, size and mtime), so a repeated
    read does not open the file with uproot. None when a branch or basket needs uproot's
    own reader (``read_entries`` then), or the file cannot be stat'ed (then opening it
    names the problem).

    Raises:
        FormatError: not a ROOT file with ``tree``, an entry out of range, or a damaged
            basket (file, byte offset, branch and what was expected).
    """
    if not _DIRECT:
        return None
    names = list(branches)
    if "://" in os.fspath(path) or not _LAYOUTS:
        with open_tree(path, tree, keep=True) as t:
            uniq, inverse = _distinct(entries, int(t.num_entries), path)
            cols = read_rows(t, names, uniq, path)
        return None if cols is None else (cols, inverse)
    try:
        lay = _baskets.layout(path, tree, names, lambda: open_tree(path, tree))
    except OSError:
        return None
    uniq, inverse = _distinct(entries, lay.n_entries, path)
    cols = _baskets.read_local(lay, path, names, uniq)
    return None if cols is None else (cols, inverse)


def read_entries(
    tree: Any, branches: Sequence[str], entries: npt.ArrayLike | None, path: Any = None
) -> tuple[ak.Array, npt.NDArray[np.int64]]:
    """Read ``branches`` of ``entries`` (any order, repeats allowed) basket by basket.

    Entries are grouped by the tree's common basket boundaries and each group is read with
    one ``entry_start/entry_stop`` range, so only the baskets holding the requested entries
    are decompressed. Returns the array of the distinct sorted entries read and, for each
    requested entry, its row in that array.
    """
    n = int(tree.num_entries)
    if entries is None:
        idx = np.arange(n, dtype=np.int64)
        return tree.arrays(list(branches), library="ak"), idx
    uniq, inverse = _distinct(entries, n, path)
    if len(uniq) == 0:
        return tree.arrays(list(branches), entry_start=0, entry_stop=0, library="ak"), inverse
    fast = _basket_read(tree, branches, uniq)
    if fast is not None:
        return fast, inverse
    bounds = np.asarray(tree.common_entry_offsets(filter_name=list(branches)), dtype=np.int64)
    cluster = np.searchsorted(bounds, uniq, side="right") - 1
    cuts = np.flatnonzero(np.diff(cluster)) + 1
    parts = []
    for group in np.split(uniq, cuts):
        lo, hi = int(group[0]), int(group[-1]) + 1
        arr = tree.arrays(list(branches), entry_start=lo, entry_stop=hi, library="ak")
        parts.append(arr[group - lo] if hi - lo != len(group) else arr)
    return (parts[0] if len(parts) == 1 else ak.concatenate(parts)), inverse


def _plain(interp: Any) -> np.dtype[Any] | None:
    """The on-disk dtype of a flat numeric interpretation, else None."""
    if isinstance(interp, uproot.interpretation.numerical.AsDtype) and not interp.inner_shape:
        return np.dtype(interp.from_dtype)
    return None


def _branch_rows(branch: Any, uniq: npt.NDArray[np.int64]) -> ak.contents.Content | None:
    """Entries ``uniq`` (sorted, distinct) of one branch, decoding only the baskets that
    hold them straight from their bytes: one basket read per basket, not per entry.
    None when the branch's layout is not a plain number or a counted list of numbers."""
    interp = branch.interpretation
    jagged = isinstance(interp, uproot.interpretation.jagged.AsJagged)
    dtype = _plain(interp.content if jagged else interp)
    if dtype is None or (jagged and interp.header_bytes != 0):
        return None
    starts = np.asarray(branch.entry_offsets, dtype=np.int64)
    which = np.searchsorted(starts, uniq, side="right") - 1
    cuts = np.flatnonzero(np.diff(which)) + 1
    values: list[np.ndarray] = []
    counts: list[np.ndarray] = []
    for group in np.split(uniq, cuts):
        k = int(which[np.searchsorted(uniq, group[0])])
        basket = branch.basket(k)
        local = group - starts[k]
        data = np.frombuffer(basket.data, dtype=dtype)
        if not jagged:
            if len(data) != starts[k + 1] - starts[k]:
                return None
            values.append(data[local])
            continue
        offs = np.asarray(basket.byte_offsets, dtype=np.int64) // dtype.itemsize
        lo, hi = offs[local], offs[local + 1]
        n = hi - lo
        flat = np.repeat(lo - np.concatenate([[0], np.cumsum(n)[:-1]]), n)
        values.append(data[flat + np.arange(int(n.sum()), dtype=np.int64)])
        counts.append(n)
    native = dtype.newbyteorder("=")
    content = np.concatenate(values).astype(native) if values else np.zeros(0, native)
    leaf = ak.contents.NumpyArray(content)
    if not jagged:
        return leaf
    offsets = np.zeros(len(uniq) + 1, dtype=np.int64)
    np.cumsum(np.concatenate(counts), out=offsets[1:])
    return ak.contents.ListOffsetArray(ak.index.Index64(offsets), leaf)


def _basket_read(
    tree: Any, branches: Sequence[str], uniq: npt.NDArray[np.int64]
) -> ak.Array | None:
    """``branches`` of entries ``uniq`` read basket by basket (None: use uproot's path)."""
    fields = []
    for name in branches:
        layout = _branch_rows(tree[name], uniq)
        if layout is None:
            return None
        fields.append(layout)
    return ak.Array(ak.contents.RecordArray(fields, list(branches), length=len(uniq)))


def _flat(array: ak.Array, dtype: Any) -> npt.NDArray[Any]:
    return np.asarray(ak.to_numpy(ak.flatten(array, axis=1)), dtype=dtype)


def _to_hits(arr: ak.Array) -> HitEvents:
    counts = np.asarray(ak.to_numpy(ak.num(arr["pmt"], axis=1)), dtype=np.int64)
    offsets = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    return HitEvents(
        event_id=np.asarray(ak.to_numpy(arr["event_id"]), dtype=np.uint64),
        t=np.asarray(ak.to_numpy(arr["t"]), dtype=np.int64),
        trigger=np.asarray(ak.to_numpy(arr["trigger"]), dtype=np.uint16),
        offsets=offsets,
        pmt=_flat(arr["pmt"], np.uint32),
        charge=_flat(arr["charge"], np.float32),
        time=_flat(arr["time"], np.float32),
    )


def _columns_hits(cols: dict[str, Column]) -> HitEvents:
    counts = cols["pmt"].counts
    if counts is None:
        raise FormatError("hit branch 'pmt' is not a counted list")
    for name in _HITS:
        other = cols[name].counts
        if other is None or not np.array_equal(other, counts):
            raise FormatError(f"hit branch '{name}' has other counts than 'pmt'")
    offsets = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    return HitEvents(
        event_id=cols["event_id"].values.astype(np.uint64, copy=False),
        t=cols["t"].values.astype(np.int64, copy=False),
        trigger=cols["trigger"].values.astype(np.uint16, copy=False),
        offsets=offsets,
        pmt=cols["pmt"].values.astype(np.uint32, copy=False),
        charge=cols["charge"].values.astype(np.float32, copy=False),
        time=cols["time"].values.astype(np.float32, copy=False),
    )


def take_hits(hits: HitEvents, index: npt.ArrayLike) -> HitEvents:
    """Events ``index`` of ``hits`` (any order, repeats allowed) as a new HitEvents."""
    idx = np.asarray(index, dtype=np.int64)
    starts, stops = hits.offsets[idx], hits.offsets[idx + 1]
    counts = stops - starts
    offsets = np.zeros(len(idx) + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    flat = np.repeat(starts - offsets[:-1], counts) + np.arange(offsets[-1], dtype=np.int64)
    return HitEvents(
        event_id=hits.event_id[idx],
        t=hits.t[idx],
        trigger=hits.trigger[idx],
        offsets=offsets,
        pmt=hits.pmt[flat],
        charge=hits.charge[flat],
        time=hits.time[flat],
    )


def read_rtraw(path: str | os.PathLike[str], entries: npt.ArrayLike | None = None) -> HitEvents:
    """Read the events of an RTRAW file, all or only ``entries`` (in the order given).

    Args:
        path: the ``.rtraw.root`` file.
        entries: entry numbers to read (any order, repeats allowed); None reads all.

    Raises:
        FormatError: not an RTRAW file, or an entry out of range (file and entry named).

    Example:
        >>> hits = read_rtraw("run000001_0000.rtraw.root", entries=[5, 17])  # doctest: +SKIP
    """
    branches = [*_SCALARS, *_HITS]
    direct = None if entries is None else read_columns(path, TREE, branches, entries)
    if direct is not None:
        cols, inverse = direct
        hits = _columns_hits(cols)
    else:
        with open_tree(path, TREE, keep=entries is not None) as tree:
            arr, inverse = read_entries(tree, branches, entries, path)
        hits = _to_hits(arr)
    if entries is None or np.array_equal(inverse, np.arange(len(hits))):
        return hits
    return take_hits(hits, inverse)


def iter_rtraw(path: str | os.PathLike[str], step_size: int = 10_000) -> Iterator[HitEvents]:
    """Stream an RTRAW file as HitEvents batches of ``step_size`` events (bounded memory)."""
    f, tree = _open_tree(path, TREE)
    with f:
        for arr in tree.iterate([*_SCALARS, *_HITS], step_size=step_size, library="ak"):
            yield _to_hits(arr)


def _chunks(h: HitEvents, basket_hits: int, basket_events: int) -> Iterator[HitEvents]:
    start, n = 0, len(h)
    while start < n:
        stop = int(np.searchsorted(h.offsets, h.offsets[start] + basket_hits, side="right")) - 1
        stop = min(max(stop, start + 1), start + basket_events, n)
        yield h.slice(start, stop)
        start = stop


def _hits_array(h: HitEvents) -> ak.Array:
    record = ak.contents.RecordArray(
        [ak.contents.NumpyArray(np.ascontiguousarray(getattr(h, name))) for name in _HITS],
        list(_HITS),
    )
    return ak.Array(ak.contents.ListOffsetArray(ak.index.Index64(h.offsets), record))


def write_rtraw(
    batches: Iterable[HitEvents],
    path: str | os.PathLike[str],
    *,
    meta: dict[str, Any],
    compression: str = "zstd",
    level: int | None = None,
    basket_hits: int = BASKET_HITS,
    basket_events: int = BASKET_EVENTS,
    on_batch: Any = None,
) -> dict[str, Any]:
    """Stream HitEvents batches into an RTRAW file at ``path``, atomically.

    Memory stays bounded by one batch. ``meta`` is stored (with ``n_events``, ``t_min``,
    ``t_max`` and ``compression`` added) and returned. An exception from ``batches`` (e.g.
    a corrupt RAW record) propagates and leaves no file behind.

    Args:
        batches: the events, in the order they are to be stored.
        path: output file.
        meta: file-level metadata (run, file_seq, source, ...), JSON-serialisable.
        compression: ``zstd``, ``lz4``, ``zlib`` or ``none``, optionally ``codec:level``.
        level: compression level (overrides a level in ``compression``).
        basket_hits, basket_events: upper bounds of one basket.
        on_batch: optional callable(HitEvents) called after each batch is written.
    """
    codec, lvl = parse_compression(compression, level)
    meta = dict(meta)
    meta["format"] = "rtraw"
    meta["compression"] = codec if lvl is None else f"{codec}:{lvl}"
    seed = f"rtraw:{meta.get('source_adler32')}:{meta.get('software_version')}"
    n, t_min, t_max = 0, None, None
    with root_writer(
        path, compression=_codec(codec, lvl), created_ns=meta.get("start_time"), uuid_seed=seed
    ) as f:
        branch_types: dict[str, Any] = {k: np.dtype(v) for k, v in _SCALARS.items()}
        branch_types["hits"] = _HIT_TYPE
        tree = f.mktree(
            TREE, branch_types, counter_name=lambda _: "nhit", field_name=lambda _, inner: inner
        )
        for batch in batches:
            for chunk in _chunks(batch, basket_hits, basket_events):
                tree.extend(
                    {
                        "event_id": chunk.event_id.astype(np.uint64, copy=False),
                        "t": chunk.t.astype(np.int64, copy=False),
                        "trigger": chunk.trigger.astype(np.uint16, copy=False),
                        "hits": _hits_array(chunk),
                    }
                )
            if len(batch):
                lo, hi = int(batch.t.min()), int(batch.t.max())
                t_min = lo if t_min is None else min(t_min, lo)
                t_max = hi if t_max is None else max(t_max, hi)
                n += len(batch)
            if on_batch is not None:
                on_batch(batch)
        meta.update(n_events=n, t_min=t_min, t_max=t_max)
        write_meta(f, meta)
    return meta


def default_rtraw_path(
    raw_path: str | os.PathLike[str], outdir: str | os.PathLike[str] | None = None
) -> Path:
    """``run000001_0000.raw`` -> ``run000001_0000.rtraw.root`` (beside it, or in ``outdir``)."""
    raw = Path(raw_path)
    stem = raw.name[: -len(".raw")] if raw.name.endswith(".raw") else raw.stem
    return (Path(outdir) if outdir is not None else raw.parent) / f"{stem}.rtraw.root"


def output_meta(out: Path, tree: str) -> dict[str, Any] | None:
    """The metadata of an existing output, None if missing, unreadable or incomplete."""
    if not out.exists():
        return None
    try:
        f, t = _open_tree(out, tree)
        with f:
            meta = read_meta(out, f)
            entries = int(t.num_entries)
    except FormatError:
        return None
    return meta if meta.get("n_events") == entries else None


def convert_raw(
    raw_path: str | os.PathLike[str],
    out_path: str | os.PathLike[str] | None = None,
    *,
    compression: str = "zstd",
    level: int | None = None,
    force: bool = False,
    overwrite: bool = False,
    check: StepCheck | None = None,
    progress: bool = True,
    basket_hits: int = BASKET_HITS,
    batch_events: int = 10_000,
) -> StepResult:
    """Convert a RAW file to RTRAW (ROOT), streaming, atomically and idempotently.

    Args:
        raw_path: the ``.raw`` file.
        out_path: output path; default ``default_rtraw_path(raw_path)``.
        compression: ``zstd``, ``lz4``, ``zlib`` or ``none``, optionally ``codec:level``.
        level: compression level (overrides one given in ``compression``).
        force: rewrite even if an up-to-date output exists.
        overwrite: replace an existing output made from another input (refused
            otherwise, see ``jaas.formats.outputs``).
        check: called with the result and the staged file before it replaces the
            output (e.g. catalog registration); raising keeps the old output.
        progress: show a progress bar (events).
        basket_hits: hits per basket at most (small baskets = cheap single-event reads).
        batch_events: events per RAW read batch (memory bound).

    Raises:
        CorruptRecordError, TruncatedFileError: from the RAW reader (file, offset, event);
            no output file is left behind.
        ConfigError: the output exists with other content (and not ``overwrite``).

    Example:
        >>> res = convert_raw("raw/run000001_0000.raw", compression="lz4")  # doctest: +SKIP
        >>> res.output.name, res.n_events                                   # doctest: +SKIP
        ('run000001_0000.rtraw.root', 12345)
    """
    t0 = time.perf_counter()
    raw = Path(raw_path)
    out = Path(out_path) if out_path is not None else default_rtraw_path(raw)
    codec, lvl = parse_compression(compression, level)
    comp = codec if lvl is None else f"{codec}:{lvl}"
    checksum = adler32_file(raw)
    expect = {
        "format": "rtraw",
        "source": raw.name,
        "source_adler32": checksum,
        "software_version": __version__,
        "compression": comp,
    }
    found = output_meta(out, TREE)
    if kept := kept_output(raw, out, expect, found, _SOURCE, t0, force, overwrite, check):
        return kept
    return commit_step(
        lambda: _convert(raw, out, expect, codec, lvl, t0, progress, basket_hits, batch_events),
        check,
    )


def _convert(
    raw: Path,
    out: Path,
    expect: dict[str, Any],
    codec: str,
    lvl: int | None,
    t0: float,
    progress: bool,
    basket_hits: int,
    batch_events: int,
) -> StepResult:
    from jaas.formats.raw import RawReader

    with RawReader(raw, batch_events=batch_events) as reader:
        header = reader.header
        meta = {
            "run": int(header.run),
            "file_seq": int(header.file_seq),
            "start_time": int(header.start_time),
            "raw_version": int(header.version),
            **expect,
        }
        if header.metadata:  # e.g. the detector configuration of a simulated run
            try:
                meta["raw_metadata"] = json.loads(header.metadata)
            except json.JSONDecodeError:
                meta["raw_metadata"] = header.metadata
        with _bar(progress, raw.name) as bar:
            meta = write_rtraw(
                reader,
                out,
                meta=meta,
                compression=codec,
                level=lvl,
                basket_hits=basket_hits,
                on_batch=lambda b: bar.update(len(b)),
            )
    return StepResult.from_meta(raw, out, meta, t0)


def _bar(enabled: bool, name: str) -> Any:
    extra = {} if enabled else {"disable": True}
    return progress(desc=f"convert {name}", unit="ev", **extra)
