"""Planning exact time partitions: cores, halos and the slices a partition reads.

Split inclusive, count exclusive: a partition owns the events of its core time range
``[t_lo, t_hi)`` (boundaries never split equal times) and reads a halo of
``Spec.halo()`` ns on each side. Pure index arithmetic on sorted times, shared by the
local backend and distributed workers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = ["Partition", "halo_bounds", "plan_partitions", "rows_between", "samples_between"]

_FAR = 1 << 62  # "no bound" for the first and last partitions' core edges
I64 = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Partition:
    """Index ranges (into the stream) of one partition and its core time range."""

    index: int
    halo_start: int
    core_start: int
    core_stop: int
    halo_stop: int
    t_lo: int  # core time range [t_lo, t_hi) in ns
    t_hi: int


def plan_partitions(
    t: npt.NDArray[np.int64],
    *,
    halo_before_ns: int,
    halo_after_ns: int,
    target_events: int | None = None,
    target_ns: int | None = None,
    boundaries: Sequence[int] | None = None,
) -> list[Partition]:
    """Cut the time-sorted ``t`` into partitions with their halos.

    Args:
        t: event times, sorted.
        halo_before_ns, halo_after_ns: stream each partition must see around its core.
        target_events: about this many events per partition.
        target_ns: or about this duration per partition.
        boundaries: or explicit cut indices (moved back to the start of a run of equal
            times; duplicates, 0 and len(t) dropped).

    Example:
        >>> t = np.arange(10, dtype=np.int64) * 100
        >>> [(p.halo_start, p.core_start, p.core_stop, p.halo_stop) for p in
        ...  plan_partitions(t, halo_before_ns=250, halo_after_ns=0, target_events=5)]
        [(0, 0, 5, 5), (3, 5, 10, 10)]
    """
    n = int(t.size)
    if boundaries is not None:
        cuts = np.asarray(boundaries, np.int64)
    elif target_events is not None and n:
        cuts = np.arange(max(int(target_events), 1), n, max(int(target_events), 1))
    elif target_ns is not None and n:
        edges = np.arange(int(t[0]) + int(target_ns), int(t[-1]) + 1, max(int(target_ns), 1))
        cuts = np.searchsorted(t, edges, side="left")
    else:
        cuts = np.empty(0, np.int64)
    cuts = cuts[(cuts > 0) & (cuts < n)]
    cuts = np.searchsorted(t, t[cuts], side="left")  # never split equal times
    cuts = np.unique(cuts[cuts > 0])
    starts = [0, *cuts.tolist()]
    stops = [*cuts.tolist(), n]
    parts = []
    for k, (a, b) in enumerate(zip(starts, stops, strict=True)):
        t_lo = -_FAR if k == 0 else int(t[a])
        t_hi = _FAR if k == len(starts) - 1 else int(t[b])
        h0, _, _, h1 = halo_bounds(t, t_lo, t_hi, halo_before_ns, halo_after_ns)
        parts.append(Partition(k, h0, a, b, h1, t_lo, t_hi))
    return parts


def samples_between(
    samples: tuple[np.ndarray, ...] | None, t_lo: int, t_hi: int
) -> tuple[np.ndarray, ...] | None:
    """The Monte Carlo samples inside a partition's core ``[t_lo, t_hi)``."""
    if samples is None:
        return None
    a, b = np.searchsorted(samples[0], [t_lo, t_hi], side="left")
    return tuple(s[a:b] for s in samples)


def rows_between(
    cols: Mapping[str, np.ndarray], lo: int, hi: int
) -> tuple[int, dict[str, np.ndarray]]:
    """The rows of the time-sorted ``cols`` with ``lo <= t <= hi``: (first row, views)."""
    t = cols["t"]
    i0 = int(np.searchsorted(t, lo, side="left"))
    i1 = int(np.searchsorted(t, hi, side="right"))
    return i0, {k: v[i0:i1] for k, v in cols.items()}


def halo_bounds(t: I64, t_lo: int, t_hi: int, before: int, after: int) -> tuple[int, int, int, int]:
    """Row indices ``(halo_start, core_start, core_stop, halo_stop)`` into the sorted
    ``t`` of the core time range ``[t_lo, t_hi)`` and its halo of ``before``/``after``
    ns (the halo ends ``after`` ns after the core's last event)."""
    a = int(np.searchsorted(t, t_lo, side="left"))
    b = int(np.searchsorted(t, t_hi, side="left"))
    h0 = 0 if t_lo <= -_FAR else int(np.searchsorted(t, t_lo - before, side="left"))
    h1 = int(np.searchsorted(t, t[b - 1] + after, side="right")) if b > a else b
    return h0, a, b, max(h1, b)
