"""Pure planning of a distributed query: time partitions over files, halos, lost files.

No Dask here (the Spark backend plans with it too): the client plans from the files'
footers (time ranges, row counts) alone, without reading any column. A partition owns
the events of its core time range ``[t_lo, t_hi)`` and needs the rows in
``[t_lo - before, t_hi - 1 + after]`` (the halo), taken from as many files, hence
workers, as that range spans.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from jaas.cluster.worker import FileRef
from jaas.engine.core.exposure import intervals_measure, normalize_intervals
from jaas.engine.session.dataset import Dataset, IndexFile, LostData
from jaas.errors import ConfigError

__all__ = [
    "BLOCK_EVENTS",
    "PlannedPartition",
    "block_cuts",
    "check_time_order",
    "count_lost_time",
    "file_refs",
    "plan",
    "without_files",
]

FAR = 1 << 62


@dataclass(frozen=True)
class PlannedPartition:
    """Core ``[t_lo, t_hi)``, needed rows ``[lo, hi]``, source files and the core's file."""

    index: int
    t_lo: int
    t_hi: int
    lo: int
    hi: int
    files: tuple[int, ...]  # indices into the dataset's files, time order
    home: int  # the file holding most of the core: its owner runs the partition


def check_time_order(files: list[IndexFile]) -> None:
    """Files must not overlap in time: their concatenation is then the time-ordered
    stream and a file's first row has a known global index."""
    for a, b in itertools.pairwise(files):
        if b.t_min < a.t_max:
            raise ConfigError(
                f"files {a.path} (up to t={a.t_max}) and {b.path} (from t={b.t_min}) "
                "overlap in time; the Dask backend needs time-disjoint files: merge them "
                "or use the local backend"
            )


BLOCK_EVENTS = 1 << 25  # at most ~3.4e7 events per partition of an ownership block


def block_cuts(
    files: list[IndexFile],
    owners: list[str | None],
    max_events: int = BLOCK_EVENTS,
    *,
    threads: Mapping[str, int] | None = None,
) -> list[int]:
    """Cut times of one partition per run of consecutive files with the same owner
    (``owners[i]`` owns ``files[i]``), so that a worker correlates its time range as one
    stream (its halo from its neighbours): few partitions, few results to merge. A run
    is cut at file boundaries into about equal parts when it holds more than
    ``max_events``, or into as many as its owner has ``threads`` (run side by side).

    Example:
        >>> f = [IndexFile(n, 1, i, 10, 100 * i, 100 * i + 99, i) for i, n in enumerate("abcd")]
        >>> block_cuts(f, ["w1", "w1", "w2", "w2"])
        [200]
    """
    cuts: list[int] = []
    runs: list[tuple[str | None, list[IndexFile]]] = []
    for i, f in enumerate(files):
        if not runs or owners[i] != runs[-1][0]:
            if runs:
                cuts.append(f.t_min)
            runs.append((owners[i], []))
        runs[-1][1].append(f)
    for owner, run in runs:
        n = sum(f.n_events for f in run)
        want = (threads or {}).get(owner, 1) if owner is not None else 1
        k = max(math.ceil(n / max(max_events, 1)), want, 1)
        done = 0
        for a, b in itertools.pairwise(run):
            part = done * k // max(n, 1)
            done += a.n_events
            if k > 1 and done * k // max(n, 1) > part:
                cuts.append(b.t_min)
    return sorted(cuts)


def _cuts(
    files: list[IndexFile], partition_ns: int | None, partition_events: int | None
) -> list[int]:
    if not files:
        return []
    if partition_ns is not None:
        if partition_ns <= 0:
            raise ConfigError(f"partition_ns must be > 0, got {partition_ns}")
        t0, t1 = files[0].t_min, files[-1].t_max
        return list(range(t0 + partition_ns, t1 + 1, partition_ns))
    target = max(int(partition_events or max(f.n_events for f in files)), 1)
    cuts: list[int] = []
    for i, f in enumerate(files):
        if i:
            cuts.append(f.t_min)
        k = math.ceil(f.n_events / target)
        span = f.t_max - f.t_min
        cuts += [f.t_min + span * j // k for j in range(1, k)]
    return cuts


def plan(
    files: list[IndexFile],
    before: int,
    after: int,
    *,
    partition_ns: int | None = None,
    partition_events: int | None = None,
    cuts: list[int] | None = None,
) -> list[PlannedPartition]:
    """Time partitions over ``files`` (time-disjoint, in order) with their halo sources.

    Args:
        files: the dataset's files.
        before, after: the spec's halo (``Spec.halo()``), any length: a halo may span
            many partitions, files and workers.
        partition_ns: core duration; or
        partition_events: about this many events per partition (files are cut at
            their boundaries and in equal time slices); default: one per file; or
        cuts: the cores' boundary times (e.g. ``block_cuts``).

    Example:
        >>> f = [IndexFile("a", 1, 0, 10, 0, 99, 0), IndexFile("b", 1, 1, 10, 100, 199, 1)]
        >>> [(p.files, p.home) for p in plan(f, 50, 0)]
        [((0,), 0), ((0, 1), 1)]
    """
    check_time_order(files)
    if cuts is None:
        cuts = _cuts(files, partition_ns, partition_events)
    cuts = sorted(set(cuts))
    edges = [-FAR, *cuts, FAR]
    t_min = np.array([f.t_min for f in files], np.int64)
    t_max = np.array([f.t_max for f in files], np.int64)
    parts = []
    for k in range(len(edges) - 1):
        t_lo, t_hi = edges[k], edges[k + 1]
        lo = -FAR if k == 0 else t_lo - before
        hi = FAR if k == len(edges) - 2 else t_hi - 1 + after
        idx = np.flatnonzero((t_max >= lo) & (t_min <= hi))
        if idx.size == 0:  # nothing in reach: the nearest file gives typed empty columns
            idx = np.array([min(int(np.searchsorted(t_min, t_lo)), len(files) - 1)])
        overlap = np.minimum(t_max[idx] + 1, t_hi) - np.maximum(t_min[idx], t_lo)
        home = int(idx[int(np.argmax(overlap))])
        parts.append(PlannedPartition(k, t_lo, t_hi, lo, hi, tuple(idx.tolist()), home))
    return parts


def _subtract(segments: np.ndarray, cut: list[tuple[int, int]]) -> np.ndarray:
    out = []
    for s0, s1 in segments.tolist():
        pieces = [(s0, s1)]
        for c0, c1 in cut:
            nxt = []
            for a, b in pieces:
                if c1 <= a or c0 >= b:
                    nxt.append((a, b))
                    continue
                if a < c0:
                    nxt.append((a, c0))
                if c1 < b:
                    nxt.append((c1, b))
            pieces = nxt
        out += pieces
    return np.array(out, np.int64).reshape(-1, 2)


def without_files(ds: Dataset, lost: dict[str, str], reason: str) -> Dataset:
    """``ds`` without the files in ``lost`` (path -> worker), their time cut from the
    good time and reported as ``LostData`` (one entry per run of consecutive files).

    The lost span of a run of consecutive lost files reaches from the last event of the
    previous kept file to the first event of the next one, as for missing files.
    """
    if not lost:
        return ds
    key = {os.path.abspath(p): w for p, w in lost.items()}
    gone = [os.path.abspath(f.path) in key for f in ds.files]
    t0 = int(ds.segments[0, 0]) if len(ds.segments) else 0
    t1 = int(ds.segments[-1, 1]) if len(ds.segments) else 0
    blocks: list[tuple[int, int]] = []  # [first, last] file index of each lost run
    for i, g in enumerate(gone):
        if g and (not blocks or blocks[-1][1] != i - 1):
            blocks.append((i, i))
        elif g:
            blocks[-1] = (blocks[-1][0], i)
    cut: list[tuple[int, int]] = []
    entries: list[LostData] = []
    for first, last in blocks:
        start = ds.files[first - 1].t_max + 1 if first > 0 else t0
        end = ds.files[last + 1].t_min if last + 1 < len(ds.files) else t1
        start, end = max(start, t0), min(end, t1)
        names = ", ".join(ds.files[i].path for i in range(first, last + 1))
        workers = sorted({key[os.path.abspath(ds.files[i].path)] for i in range(first, last + 1)})
        what = f"file(s) {names} (worker {', '.join(workers)})"
        entries.append(LostData(what, reason, start, end))
        cut.append((start, end))
    return dataclasses.replace(
        ds,
        files=[f for f, g in zip(ds.files, gone, strict=True) if not g],
        segments=_subtract(ds.segments, cut),
        lost=[*ds.lost, *entries],
    )


def file_refs(files: list[IndexFile]) -> list[FileRef]:
    """``FileRef`` of each file: absolute path, global index of its first row, rows."""
    offsets = np.concatenate([[0], np.cumsum([f.n_events for f in files])]).tolist()
    return [
        FileRef(os.path.abspath(f.path), int(offsets[i]), f.n_events) for i, f in enumerate(files)
    ]


def count_lost_time(exp: Any, ds: Dataset, sub: Dataset, bad: np.ndarray) -> None:
    """Keep the original span of ``ds`` in the exposure ``exp`` of a query run on ``sub``
    (``ds`` without its lost files): lost files at its edges count as bad time, not
    dropped."""
    if not len(ds.segments) or not len(sub.segments):
        return
    span = (int(ds.segments[0, 0]), int(ds.segments[-1, 1]))
    outside = _subtract(np.array([span], np.int64), [tuple(s) for s in sub.segments])
    bad_iv = normalize_intervals(bad, what="bad")
    inter = [
        (max(a, c), min(b, d))
        for a, b in outside.tolist()
        for c, d in bad_iv.tolist()
        if min(b, d) > max(a, c)
    ]
    exp.span_ns = span[1] - span[0]
    exp.gap_ns = exp.span_ns - exp.good_ns
    exp.bad_ns = intervals_measure(np.array(inter, np.int64).reshape(-1, 2))
