"""Datasets: a time-ordered view over index files, with runs, good time and livetime.

``jaas.open`` accepts a directory of index files (a simulated run directory works too),
a list of files, or a catalog dataset. Opening reads only Parquet footers (row counts and
the min/max statistics of ``t``), so ``info()`` is cheap on months of data; columns are
read on first use and kept in the column cache.
"""

from __future__ import annotations

import glob
import itertools
import json
import os
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow.parquet as pq

from jaas.engine.session.cache import ColumnCache, default_cache
from jaas.errors import ConfigError, FormatError
from jaas.formats.index import (
    column_to_numpy,
    index_column_names,
    index_metadata,
    is_hdf5,
    read_index,
    read_parquet_index,
)
from jaas.formats.schema import INDEX_SCHEMA

if TYPE_CHECKING:
    from jaas.engine.core.partition import VetoMemo
    from jaas.engine.session.analysis import IBDSelection
    from jaas.engine.session.results import CoincidenceResult, SelectionResult

__all__ = ["Dataset", "IndexFile", "LostData", "open_dataset"]


@dataclass(frozen=True)
class IndexFile:
    """One index file of a dataset, described from its footer."""

    path: str
    run: int
    file_id: int
    n_events: int
    t_min: int
    t_max: int
    seq: int  # file sequence number in its run (schema metadata 'file_seq'), else -1


@dataclass(frozen=True)
class LostData:
    """Data a result cannot include: a missing or bad file, with its time span."""

    what: str
    reason: str
    start: int  # ns
    end: int  # ns

    @property
    def seconds(self) -> float:
        return (self.end - self.start) / 1e9


def _fmt_time(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")


def _seq_from(kv: dict[str, str], default: int = -1) -> int:
    """File sequence number from index metadata (``file_seq``; the simulation writes
    ``jaas.file_seq``), else ``default`` (unknown: never a catalog id, whose order says
    nothing about time)."""
    for key in ("file_seq", "jaas.file_seq"):
        value = kv.get(key, "")
        if value.lstrip("-").isdigit():
            return int(value)
    return default


def _run_from(kv: dict[str, str], default: int) -> int:
    """Run number of a file without rows (no statistics): from metadata when written."""
    if default >= 0:
        return default
    for key in ("run", "jaas.run"):
        value = kv.get(key, "")
        if value.isdigit():
            return int(value)
    return default


def _describe(path: str) -> IndexFile:
    if is_hdf5(path):  # HDF5 index: no footer statistics, read the small columns once
        cols = read_index(path, ["t", "run", "file_id"])
        t = cols.column("t").to_numpy()
        run = int(cols.column("run")[0].as_py()) if len(t) else -1
        file_id = int(cols.column("file_id")[0].as_py()) if len(t) else -1
        kv = index_metadata(path)
        seq = _seq_from(kv)
        run = _run_from(kv, run)
        lo, hi = (int(t.min()), int(t.max())) if len(t) else (0, 0)
        return IndexFile(path, run, file_id, len(t), lo, hi, seq)
    try:
        meta = pq.ParquetFile(path).metadata
    except (OSError, ValueError) as exc:
        raise FormatError(f"not a readable index file: {exc}", path=path) from exc
    names = meta.schema.names
    if "t" not in names:
        raise FormatError("index file has no column 't'", path=path)
    col = {name: i for i, name in enumerate(names)}
    t_min: int | None = None
    t_max: int | None = None
    run = file_id = -1
    for g in range(meta.num_row_groups):
        rg = meta.row_group(g)
        st = rg.column(col["t"]).statistics
        if st is None or not st.has_min_max:
            t_min = t_max = None
            break
        t_min = st.min if t_min is None else min(t_min, st.min)
        t_max = st.max if t_max is None else max(t_max, st.max)
        for name in ("run", "file_id"):
            s = rg.column(col[name]).statistics if name in col else None
            if s is not None and s.has_min_max:
                if name == "run":
                    run = int(s.min)
                else:
                    file_id = int(s.min)
    kv = {k.decode(): v.decode() for k, v in (meta.metadata or {}).items()}
    seq = _seq_from(kv)
    run = _run_from(kv, run)
    if t_min is None or t_max is None:  # no statistics: read the column once
        t = read_index(path, ["t"]).column("t").to_numpy()
        t_min, t_max = (int(t.min()), int(t.max())) if len(t) else (0, 0)
    return IndexFile(path, run, file_id, meta.num_rows, int(t_min), int(t_max), seq)


@dataclass
class Dataset:
    """A time-ordered set of index files.

    Attributes:
        files: the index files, in time order.
        segments: (k, 2) int64 array of good-time intervals [start, end) in ns.
        lost: missing or bad data inside the dataset's span.
        run_meta: run metadata (e.g. from a simulation) keyed by run number.
        truth_paths: simulation truth tables when the dataset is simulated.
        name: a label used in provenance.
        cache: the column cache (it also owns the ``VetoMemo`` of warm queries).
        problems: why the files cannot be analysed as one stream (duplicate
            (run, sequence), files or runs overlapping in time); the analysis refuses
            such a dataset (``check()``), ``info()`` lists them.
    """

    files: list[IndexFile]
    segments: np.ndarray
    lost: list[LostData] = field(default_factory=list)
    run_meta: dict[int, dict[str, Any]] = field(default_factory=dict)
    truth_paths: list[str] = field(default_factory=list)
    name: str = ""
    cache: ColumnCache = field(default_factory=default_cache, repr=False)
    problems: list[str] = field(default_factory=list)

    def check(self) -> None:
        """Refuse an inconsistent dataset before analysing it.

        Raises:
            ConfigError: two files claim the same (run, sequence), files or runs overlap
                in time (their events would interleave into false pairs).
        """
        if self.problems:
            more = f" (and {len(self.problems) - 1} more)" if len(self.problems) > 1 else ""
            raise ConfigError(f"dataset {self.name!r}: {self.problems[0]}{more}")

    # --- cheap summary -------------------------------------------------------------
    @property
    def runs(self) -> list[int]:
        return sorted({f.run for f in self.files})

    @property
    def n_events(self) -> int:
        return sum(f.n_events for f in self.files)

    @property
    def t_start(self) -> int:
        return int(self.segments[0, 0]) if len(self.segments) else 0

    @property
    def t_end(self) -> int:
        return int(self.segments[-1, 1]) if len(self.segments) else 0

    @property
    def good_time(self) -> float:
        """Seconds of good data (before any veto)."""
        return float((self.segments[:, 1] - self.segments[:, 0]).sum()) / 1e9

    @cached_property
    def columns(self) -> list[str]:
        """Column names (of the first file; all files of a dataset share the schema)."""
        if not self.files:
            return list(INDEX_SCHEMA.names)
        return index_column_names(self.files[0].path)

    def info(self) -> str:
        """A short text summary (runs, span, events, good time, lost data)."""
        lines = [
            f"dataset {self.name or '(unnamed)'}",
            f"  files       {len(self.files)}",
            f"  runs        {', '.join(map(str, self.runs)) or '-'}",
            f"  events      {self.n_events:,}",
        ]
        if self.files:
            span = (self.t_end - self.t_start) / 1e9
            lines += [
                f"  span        {_fmt_time(self.t_start)} .. {_fmt_time(self.t_end)} UTC "
                f"({span / 86400:.3f} days)",
                f"  good time   {self.good_time:,.1f} s ({self.good_time / 86400:.3f} days) "
                f"in {len(self.segments)} segment(s)",
            ]
        for item in self.lost:
            lines.append(f"  lost        {item.what}: {item.reason} ({item.seconds:.1f} s)")
        for problem in self.problems:
            lines.append(f"  PROBLEM     {problem}")
        if self.truth_paths:
            lines.append(f"  truth       {len(self.truth_paths)} file(s) (simulated data)")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.info()

    def __repr__(self) -> str:
        return f"<jaas.Dataset {self.name!r}: {len(self.files)} files, {self.n_events:,} events>"

    def _repr_html_(self) -> str:
        from jaas.notebook.render import dataset_html

        return dataset_html(self)

    # --- analysis (implemented in jaas.engine.session.analysis; where it runs: the
    # backend= / client= arguments, see jaas.engine.session.backend) -----------------
    def select(self, condition: str, **kwargs: Any) -> SelectionResult:
        """Events passing ``condition``; see :func:`jaas.engine.session.analysis.select`."""
        from jaas.engine.session.analysis import select

        return select(self, condition, **kwargs)

    def coincidence(self, **kwargs: Any) -> CoincidenceResult:
        """Delayed-first coincidence search; see ``jaas.engine.session.analysis.coincidence``."""
        from jaas.engine.session.analysis import coincidence

        return coincidence(self, **kwargs)

    def ibd(self, selection: IBDSelection | None = None, **kwargs: Any) -> CoincidenceResult:
        """The standard IBD selection; see :func:`jaas.engine.session.analysis.ibd`."""
        from jaas.engine.session.analysis import ibd

        return ibd(self, selection, **kwargs)

    # --- data ----------------------------------------------------------------------
    def load(self, columns: Sequence[str]) -> dict[str, np.ndarray]:
        """Columns of every event in time order (through the column cache).

        Raises:
            ConfigError: an unknown column (with the closest valid names).
        """
        names = list(dict.fromkeys(["t", *columns]))
        available = set(self.columns)
        for name in names:
            if name not in available:
                import difflib

                close = difflib.get_close_matches(name, sorted(available), n=3)
                hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
                raise ConfigError(f"no column {name!r} in dataset {self.name!r}{hint}")
        return self.cache.get_keyed(self._fingerprint(), names, self._load_concatenated)

    @property
    def veto_memo(self) -> VetoMemo:
        """What warm queries on this dataset reuse (owned by its column cache)."""
        return self.cache.veto_memo

    def _fingerprint(self) -> tuple[str, int, int]:
        """Cache key of the whole dataset: changes when any of its files changes."""
        import hashlib

        keys = [ColumnCache.file_key(f.path) for f in self.files]
        digest = hashlib.sha1(repr(keys).encode()).hexdigest()
        return (f"dataset:{digest}", len(keys), 0)

    def _load_concatenated(self, names: list[str]) -> dict[str, np.ndarray]:
        # the dataset-level arrays are what the cache keeps: a warm query copies nothing
        if not self.files:
            return {n: np.zeros(0, INDEX_SCHEMA.field(n).type.to_pandas_dtype()) for n in names}
        warm_numba()  # the kernels' first call then finds numba ready (see warm_numba)
        cols = list(dict.fromkeys(["t", *names]))
        out = _read_files(self.files, cols)
        t = out["t"]
        if len(t) > 1 and np.any(t[1:] < t[:-1]):  # overlapping files: restore time order
            order = np.argsort(t, kind="stable")
            out = {n: a[order] for n, a in out.items()}
        return {n: out[n] for n in names}


def _read_files(files: Sequence[IndexFile], columns: list[str]) -> dict[str, np.ndarray]:
    """``columns`` of ``files``, concatenated in order, copied once.

    Every file's Arrow chunks are copied straight into its slice of one preallocated
    array per column (no per-file array, no concatenation); the files are read
    concurrently (the Parquet decoding and the copies release the GIL).
    """
    dtypes = _column_dtypes(files, columns)
    offsets = np.concatenate([[0], np.cumsum([f.n_events for f in files])]).astype(np.int64)
    out = {n: np.empty(int(offsets[-1]), dtype=dtypes[n]) for n in columns}
    workers = max(1, min(len(files), os.cpu_count() or 1))

    def one(i: int) -> None:
        f = files[i]
        if is_hdf5(f.path):
            table = read_index(f.path, columns)
        else:
            table = read_parquet_index(f.path, columns, use_threads=workers == 1)
        if table.num_rows != f.n_events:
            raise FormatError(
                f"index file changed while reading: {table.num_rows} rows, its footer said "
                f"{f.n_events}; reopen the dataset",
                path=f.path,
            )
        start, stop = int(offsets[i]), int(offsets[i + 1])
        for name in columns:
            column_to_numpy(table.column(name), out[name][start:stop])

    if workers == 1:
        for i in range(len(files)):
            one(i)
    else:
        with ThreadPoolExecutor(workers, thread_name_prefix="jaas-read") as pool:
            for future in [pool.submit(one, i) for i in range(len(files))]:
                future.result()
    return out


def _load_columns(path: str, columns: list[str]) -> dict[str, np.ndarray]:
    table = read_index(path, columns)
    return {name: column_to_numpy(table.column(name)) for name in columns}


def _column_dtypes(files: Sequence[IndexFile], names: Sequence[str]) -> dict[str, np.dtype[Any]]:
    """The numpy type holding each column of ``names`` for every file (as
    ``np.concatenate`` would promote it); each file's schema is read once."""
    types: dict[str, list[np.dtype[Any]]] = {name: [] for name in names}
    for f in files:
        schema = INDEX_SCHEMA if is_hdf5(f.path) else pq.read_schema(f.path)
        for name in names:
            if name not in schema.names:
                raise FormatError(f"index file has no column {name!r}", path=f.path)
            types[name].append(np.dtype(schema.field(name).type.to_pandas_dtype()))
    return {name: np.result_type(*found) for name, found in types.items()}


_WARM_LOCK = threading.Lock()
_warm_thread: threading.Thread | None = None


def warm_numba() -> None:
    """Get numba's compiler ready in a background thread, once per process.

    The first call of any kernel (even one loaded from numba's cache) initialises
    numba's extension entry points and its target registries (which import e.g.
    SciPy's BLAS for numba.np.linalg): about a second of Python work on a cold
    process. Started when a query begins reading columns, it runs while the Parquet
    decoding (which releases the GIL) keeps the other core busy. It holds numba's
    compiler lock, so a kernel called meanwhile simply waits for it.
    """
    global _warm_thread
    with _WARM_LOCK:
        if _warm_thread is not None:
            return
        _warm_thread = threading.Thread(target=_init_numba, name="jaas-numba-warm")
        _warm_thread.start()


def _init_numba() -> None:
    try:
        from numba.core import entrypoints
        from numba.core.compiler_lock import global_compiler_lock
        from numba.core.registry import cpu_target

        with global_compiler_lock:
            entrypoints.init_all()
            cpu_target.target_context.refresh()
            cpu_target.typing_context.refresh()
    except Exception:  # an optimisation only: the first kernel call does it anyway
        pass


def _segments_from_files(
    files: list[IndexFile], run_meta: Mapping[int, dict[str, Any]]
) -> tuple[np.ndarray, list[LostData]]:
    """Good-time segments: per run, the run's span (from metadata when known, else from
    its files' times) cut where a file sequence number is missing. Order and contiguity
    come from times and sequence numbers only; zero-row files hold no time."""
    segments: list[tuple[int, int]] = []
    lost: list[LostData] = []
    for run, fs in sorted(_by_run(files).items()):
        present = {f.seq for f in fs}
        timed = [f for f in fs if f.n_events > 0]
        meta = run_meta.get(run, {})
        if not timed and not ("start_ns" in meta and "end_ns" in meta):
            continue
        # run metadata (e.g. a simulated run's JSON) knows the true run span in ns
        start = int(meta.get("start_ns", timed[0].t_min if timed else 0))
        end = int(meta.get("end_ns", timed[-1].t_max + 1 if timed else 0))
        cur = start
        for prev, nxt in itertools.pairwise(timed):
            if prev.seq < 0 or nxt.seq < 0:
                continue
            absent = [i for i in range(prev.seq + 1, nxt.seq) if i not in present]
            if absent:
                gap_start, gap_end = prev.t_max + 1, nxt.t_min
                missing = ", ".join(map(str, absent))
                lost.append(LostData(f"run {run} file(s) {missing}", "missing", gap_start, gap_end))
                segments.append((cur, gap_start))
                cur = gap_end
        segments.append((cur, end))
    arr = np.array(sorted(segments), dtype=np.int64).reshape(-1, 2)
    return arr, lost


def _by_run(files: list[IndexFile]) -> dict[int, list[IndexFile]]:
    by_run: dict[int, list[IndexFile]] = {}
    for f in files:
        by_run.setdefault(f.run, []).append(f)
    for fs in by_run.values():
        fs.sort(key=lambda f: (f.t_min, f.t_max, f.seq, f.path))
    return by_run


def _problems(files: list[IndexFile], run_meta: Mapping[int, dict[str, Any]]) -> list[str]:
    """What makes the dataset unanalysable as one stream: duplicate (run, sequence),
    files overlapping in time, runs overlapping in time."""
    out: list[str] = []
    claimed: dict[tuple[int, int], str] = {}
    for f in files:
        if f.seq < 0:
            continue
        other = claimed.setdefault((f.run, f.seq), f.path)
        if other != f.path:
            out.append(
                f"files {other} and {f.path} both claim run {f.run} sequence {f.seq}; "
                "keep one of them"
            )
    timed = sorted((f for f in files if f.n_events > 0), key=lambda f: (f.t_min, f.t_max))
    for a, b in itertools.pairwise(timed):
        if b.t_min < a.t_max and a.run == b.run:
            out.append(
                f"files {a.path} (up to t={a.t_max}) and {b.path} (from t={b.t_min}) of run "
                f"{a.run} overlap in time; remove the duplicate or open them separately"
            )
    spans = []
    for run, fs in sorted(_by_run(files).items()):
        ts = [f for f in fs if f.n_events > 0]
        meta = run_meta.get(run, {})
        if not ts and "start_ns" not in meta:
            continue
        lo = int(meta.get("start_ns", ts[0].t_min if ts else 0))
        hi = int(meta.get("end_ns", max(f.t_max for f in ts) + 1 if ts else lo))
        spans.append((lo, hi, run))
    spans.sort()
    for (_, a_hi, a_run), (b_lo, _, b_run) in itertools.pairwise(spans):
        if b_lo < a_hi:
            out.append(
                f"runs {a_run} and {b_run} overlap in time ({_fmt_time(b_lo)} .. "
                f"{_fmt_time(a_hi)} UTC): their events would interleave into false pairs; "
                "analyse each run separately (open its files alone)"
            )
    return out


def _run_metadata(directory: Path) -> dict[int, dict[str, Any]]:
    meta: dict[int, dict[str, Any]] = {}
    for p in sorted(directory.glob("run*.json")):
        try:
            doc = json.loads(p.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if isinstance(doc, dict) and "run" in doc:
            meta[int(doc["run"])] = doc
    return meta


def open_dataset(
    source: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    *,
    dataset: str | None = None,
    version: int | None = None,
    cache: ColumnCache | None = None,
) -> Dataset:
    """Open index files as one time-ordered dataset.

    Args:
        source: a directory (its ``index/`` sub-directory is used when present, and its
            ``run*.json`` metadata and ``truth/`` tables when it is a simulated run), a
            glob pattern, a list of index files, or a catalog URL (``sqlite:///...``,
            ``postgresql+psycopg://...``) together with ``dataset``.
        dataset: catalog dataset name (only with a catalog URL).
        version: catalog dataset version (default: latest).
        cache: column cache (default: the process-wide one).

    Example:
        >>> ds = jaas.open("runs/sim1")          # doctest: +SKIP
        >>> ds.info()                             # doctest: +SKIP
    """
    run_meta: dict[int, dict[str, Any]] = {}
    truth: list[str] = []
    name = ""
    if isinstance(source, str) and "://" in source:
        if dataset is None:
            raise ConfigError("opening a catalog needs dataset='NAME'")
        from jaas.store import Catalog  # catalog layer; imported only when used

        with Catalog(source, readonly=True) as catalog:  # opening never creates a catalog
            records = catalog.dataset_files(dataset, version)
        paths = [f.path for f in records if f.kind == "index"]
        name = dataset if version is None else f"{dataset} v{version}"
    elif isinstance(source, str | os.PathLike):
        p = Path(source)
        if p.is_dir():
            base = p / "index" if (p / "index").is_dir() else p
            paths = sorted(str(x) for x in base.glob("*.parquet"))
            paths += sorted(str(x) for x in base.glob("*.h5"))
            run_meta = _run_metadata(p)
            truth = sorted(str(x) for x in (p / "truth").glob("*.parquet"))
            name = p.name
        elif p.exists():
            paths = [str(p)]
            name = p.name
        else:
            paths = sorted(glob.glob(str(source)))
            if not paths:
                raise ConfigError(f"no index files at {os.fspath(source)!r}")
            name = str(source)
    else:
        paths = [os.fspath(x) for x in source]
        name = f"{len(paths)} files"
    if not paths:
        raise ConfigError(f"no index files found in {name or source!r}")
    files = sorted(
        (_describe(x) for x in paths),
        key=lambda f: (f.n_events > 0, f.t_min, f.t_max, f.run, f.seq, f.path),
    )
    segments, lost = _segments_from_files(files, run_meta)
    problems = _problems(files, run_meta)
    return Dataset(
        files=files,
        segments=segments,
        lost=lost,
        run_meta=run_meta,
        truth_paths=truth,
        name=name,
        cache=cache if cache is not None else default_cache(),
        problems=problems,
    )


# the analysis module gives Dataset.coincidence/ibd their real signatures (tab completion)
import jaas.engine.session.analysis  # noqa: E402, F401
