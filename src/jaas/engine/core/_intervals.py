"""Numba kernels on time intervals: unions, intersections, veto exposure.

Split from :mod:`jaas.engine.core.kernels` (which re-exports them).
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def union_intervals(starts, ends):
    """Union of half-open intervals given sorted by start, as disjoint sorted intervals."""
    n = starts.size
    lo = np.empty(n, np.int64)
    hi = np.empty(n, np.int64)
    m = 0
    for i in range(n):
        a = starts[i]
        b = ends[i]
        if b <= a:
            continue
        if m > 0 and a <= hi[m - 1]:
            if b > hi[m - 1]:
                hi[m - 1] = b
        else:
            lo[m] = a
            hi[m] = b
            m += 1
    return lo[:m], hi[:m]


@njit(cache=True, nogil=True)
def intersect_intervals(alo, ahi, blo, bhi):
    """Intersection of two sorted lists of disjoint half-open intervals.

    Cost O(len(b) * log(len(a)) + output): ``b`` is the short list (segments).
    """
    lo = np.empty(alo.size + blo.size, np.int64)
    hi = np.empty(alo.size + blo.size, np.int64)
    m = 0
    for k in range(blo.size):
        c0 = blo[k]
        c1 = bhi[k]
        i0 = np.searchsorted(ahi, c0, side="right")
        i1 = np.searchsorted(alo, c1, side="left")
        for i in range(i0, i1):
            lo[m] = max(alo[i], c0)
            hi[m] = min(ahi[i], c1)
            m += 1
    return lo[:m], hi[:m]


@njit(cache=True, nogil=True)
def first_unsorted(t):
    """Index of the first element smaller than its predecessor, -1 if ``t`` is sorted."""
    n = t.size
    block = 4096
    for a in range(1, n, block):
        b = min(a + block, n)
        bad = False
        for i in range(a, b):  # branch-free inner loop: vectorised
            bad |= t[i] < t[i - 1]
        if bad:
            for i in range(a, b):
                if t[i] < t[i - 1]:
                    return i
    return -1


@njit(cache=True, nogil=True)
def _append(out, m, a, b):
    """Add ``[a, b)``, starting at or after the last of the ``m`` disjoint intervals of
    ``out``, merging it into that one when they touch; returns the new count."""
    if m > 0 and a <= out[m - 1, 1]:
        if b > out[m - 1, 1]:
            out[m - 1, 1] = b
        return m
    out[m, 0] = a
    out[m, 1] = b
    return m + 1


@njit(cache=True, nogil=True)
def window_union(t, idx, window):
    """Union of ``[t[j], t[j] + window)`` for ascending ``idx``, as an (m, 2) array."""
    out = np.empty((idx.size, 2), np.int64)
    m = 0
    if window <= 0:
        return out[:0]
    for j in idx:
        m = _append(out, m, t[j], t[j] + window)
    return out[:m]


@njit(cache=True, nogil=True)
def union2(a, b):
    """Union of two sorted (m, 2) lists of disjoint intervals, and its total length."""
    na = a.shape[0]
    nb = b.shape[0]
    out = np.empty((na + nb, 2), np.int64)
    m = 0
    i = 0
    j = 0
    while i < na or j < nb:
        if j >= nb or (i < na and a[i, 0] <= b[j, 0]):
            m = _append(out, m, a[i, 0], a[i, 1])
            i += 1
        else:
            m = _append(out, m, b[j, 0], b[j, 1])
            j += 1
    total = 0
    for k in range(m):
        total += out[k, 1] - out[k, 0]
    return out[:m], total


@njit(cache=True, nogil=True)
def _clip_emit(u0, u1, clip, k, out, m, emit):
    """Clip [u0, u1) to ``clip`` from pointer ``k``; returns (k, m, length kept)."""
    nc = clip.shape[0]
    while k < nc and clip[k, 1] <= u0:
        k += 1
    kk = k
    total = 0
    while kk < nc and clip[kk, 0] < u1:
        lo = max(u0, clip[kk, 0])
        hi = min(u1, clip[kk, 1])
        if lo < hi:
            total += hi - lo
            if emit:
                out[m, 0] = lo
                out[m, 1] = hi
                m += 1
        kk += 1
    return k, m, total


@njit(cache=True, nogil=True)
def veto_exposure(t, idx, window, extra, gaps, clip):
    """One pass over the veto intervals: ``[t[idx], t[idx] + window)`` and ``extra``
    (sorted, disjoint) are the vetoes, ``gaps`` (sorted, disjoint) the gap veto.

    Returns (union of all three clipped to ``clip`` as (r, 2), its length, length of the
    union without ``gaps`` clipped to ``clip``).
    """
    ni = idx.size if window > 0 else 0
    ne = extra.shape[0]
    ng = gaps.shape[0]
    out = np.empty((ni + ne + ng + clip.shape[0], 2), np.int64)
    m = 0
    all_ns = 0
    mu_ns = 0
    ka = 0
    km = 0
    a0 = a1 = m0 = m1 = 0
    has_a = has_m = False
    i = j = g = 0
    while i < ni or j < ne or g < ng:
        src = -1
        best = 0
        if i < ni:
            src = 0
            best = t[idx[i]]
        if j < ne and (src < 0 or extra[j, 0] < best):
            src = 1
            best = extra[j, 0]
        if g < ng and (src < 0 or gaps[g, 0] < best):
            src = 2
            best = gaps[g, 0]
        if src == 0:
            x0 = best
            x1 = best + window
            i += 1
        elif src == 1:
            x0 = extra[j, 0]
            x1 = extra[j, 1]
            j += 1
        else:
            x0 = gaps[g, 0]
            x1 = gaps[g, 1]
            g += 1
        if x1 <= x0:
            continue
        if has_a and x0 <= a1:
            a1 = max(a1, x1)
        else:
            if has_a:
                ka, m, tot = _clip_emit(a0, a1, clip, ka, out, m, True)
                all_ns += tot
            a0, a1, has_a = x0, x1, True
        if src != 2:
            if has_m and x0 <= m1:
                m1 = max(m1, x1)
            else:
                if has_m:
                    km, _, tot = _clip_emit(m0, m1, clip, km, out, 0, False)
                    mu_ns += tot
                m0, m1, has_m = x0, x1, True
    if has_a:
        ka, m, tot = _clip_emit(a0, a1, clip, ka, out, m, True)
        all_ns += tot
    if has_m:
        km, _, tot = _clip_emit(m0, m1, clip, km, out, 0, False)
        mu_ns += tot
    return out[:m], all_ns, mu_ns
