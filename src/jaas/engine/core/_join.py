"""Serial-merge helpers: join per-partition veto intervals at the boundaries, concatenate
per-partition arrays on threads.

The merge after the partitions runs on one thread, so its cost limits what more threads
can gain (Amdahl). Joining the whole-detector veto intervals with a union pass over all of
them (millions over months of data) and copying every per-event array on one thread made
two threads slower than one; both are now O(partitions) or shared among threads.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import numpy.typing as npt

__all__ = ["concat", "join_intervals"]

I64 = npt.NDArray[np.int64]
_MIN_PARALLEL_BYTES = 1 << 22  # below this, one memcpy is cheaper than a thread hand-off


def join_intervals(pieces: Sequence[I64], union: Callable[[I64], I64]) -> I64:
    """Union of per-partition interval lists, in partition (time) order.

    Each piece is sorted, disjoint and non-touching (as the veto pass emits it, clipped to
    its partition's core time range), so only a piece's first interval can meet the
    previous piece's last, by touching at the partition boundary. Anything else (an
    overlap) falls back to ``union`` of the concatenation, the general answer.
    """
    parts = [p for p in pieces if len(p)]
    if not parts:
        return pieces[0] if pieces else np.empty((0, 2), np.int64)
    out: list[I64] = [parts[0]]
    last = parts[0][-1]
    for p in parts[1:]:
        if p[0, 0] < last[1]:
            return union(np.concatenate(parts))
        if p[0, 0] == last[1]:  # touching at the boundary: one interval
            joined = np.array([[last[0], p[0, 1]]], np.int64)
            out[-1] = out[-1][:-1]
            out.append(joined)
            p = p[1:]
            last = joined[0]
            if not len(p):
                continue
        out.append(p)
        last = p[-1]
    return concat(out)


def concat(arrays: Sequence[np.ndarray], threads: int = 1) -> np.ndarray:
    """``np.concatenate(arrays)``, the copies shared among ``threads`` threads."""
    if len(arrays) == 1:
        return arrays[0]
    total = sum(a.nbytes for a in arrays)
    if threads <= 1 or len(arrays) < 2 or total < _MIN_PARALLEL_BYTES:
        return np.concatenate(arrays)
    first = arrays[0]
    out = np.empty((sum(len(a) for a in arrays), *first.shape[1:]), first.dtype)
    starts = np.cumsum([0, *(len(a) for a in arrays)])

    def copy(i: int) -> None:
        out[starts[i] : starts[i + 1]] = arrays[i]

    with ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(copy, range(len(arrays))))
    return out
