"""Numba kernels of the correlation engine: segments, vetoes, coincidences, intervals.

Every kernel is a pure function of numpy arrays compiled with ``nogil=True`` (partitions
run on a thread pool) and ``cache=True`` (the JIT cost is paid once per machine). The
semantics are documented in :mod:`jaas.engine.core.correlate`; these kernels implement them on
one time-sorted slice of the stream.
"""

from __future__ import annotations

import numpy as np
from numba import njit

# pair and interval kernels live in their own modules; this module is the one import point
from jaas.engine.core._intervals import (
    first_unsorted,
    intersect_intervals,
    union2,
    union_intervals,
    veto_exposure,
    window_union,
)
from jaas.engine.core._pairs import (
    MODE_ALL,
    MODE_EXACTLY_ONE,
    MODE_NEAREST,
    coincide,
    coincide_sweep,
)

__all__ = [
    "GAP_BIT",
    "MODE_ALL",
    "MODE_EXACTLY_ONE",
    "MODE_NEAREST",
    "coincide",
    "coincide_sweep",
    "first_unsorted",
    "in_segments",
    "intersect_intervals",
    "mark_detector_veto",
    "mark_gap_veto",
    "mark_volume_veto",
    "since_at",
    "since_last",
    "union2",
    "union_intervals",
    "veto_exposure",
    "volume_triggers",
    "volume_veto",
    "window_union",
]

GAP_BIT = 1 << 31  # veto bit of the conservative veto after each segment start


@njit(cache=True, nogil=True)
def _dist2(px, py, pz, ax, ay, az, bx, by, bz, line):
    """Squared distance of p to point a, or to the infinite line through a and b."""
    wx = px - ax
    wy = py - ay
    wz = pz - az
    if not line:
        return wx * wx + wy * wy + wz * wz
    ux = bx - ax
    uy = by - ay
    uz = bz - az
    uu = ux * ux + uy * uy + uz * uz
    if uu == 0.0:
        return wx * wx + wy * wy + wz * wz
    cx = wy * uz - wz * uy
    cy = wz * ux - wx * uz
    cz = wx * uy - wy * ux
    return (cx * cx + cy * cy + cz * cz) / uu


@njit(cache=True, nogil=True)
def mark_detector_veto(t, trig_idx, window, bit, seg_lo, seg_hi, bits):
    """OR ``bit`` into ``bits[i]`` for in-segment events with ``t_j <= t_i < t_j + window``.

    ``trig_idx``: ascending indices of the trigger events, all inside a segment. Equal
    times count whatever their order. Cost: O(triggers + vetoed events).
    """
    n = t.size
    ns = seg_lo.size
    done = 0
    s = 0
    for j in trig_idx:
        tj = t[j]
        a = j
        while a > 0 and t[a - 1] == tj:
            a -= 1
        if a < done:
            a = done
        e = tj + window
        b = a
        while b < n and t[b] < e:
            tb = t[b]
            while s < ns and seg_hi[s] <= tb:
                s += 1
            if s < ns and seg_lo[s] <= tb:
                bits[b] |= bit
            b += 1
        if b > done:
            done = b


@njit(cache=True, nogil=True)
def mark_gap_veto(t, seg_lo, seg_hi, gap_window, bits):
    """OR ``GAP_BIT`` into ``bits`` for events in the first ``gap_window`` ns of a segment."""
    n = t.size
    for s in range(seg_lo.size):
        b = np.searchsorted(t, seg_lo[s], side="left")
        e = min(seg_lo[s] + gap_window, seg_hi[s])
        while b < n and t[b] < e:
            bits[b] |= GAP_BIT
            b += 1


@njit(cache=True, nogil=True)
def in_segments(t, seg_lo, seg_hi):
    """Ascending indices of the events inside a segment."""
    out = np.empty(t.size, np.int64)
    m = 0
    for s in range(seg_lo.size):
        a = np.searchsorted(t, seg_lo[s], side="left")
        b = np.searchsorted(t, seg_hi[s], side="left")
        for i in range(a, b):
            out[m] = i
            m += 1
    return out[:m]


@njit(cache=True, nogil=True)
def volume_veto(qt, qx, qy, qz, qidx, tt, tidx, ax, ay, az, bx, by, bz, window, r2, line):
    """Flag queries (time-sorted) within ``sqrt(r2)`` of a trigger in ``[t_j, t_j + window)``.

    Triggers (time-sorted, global index ``tidx``) are points ``a`` (``line`` false) or
    infinite lines through ``a`` and ``b``; a query never vetoes itself (``qidx == tidx``).
    """
    nq = qt.size
    nt = tt.size
    out = np.zeros(nq, np.bool_)
    lo = 0
    for q in range(nq):
        tq = qt[q]
        while lo < nt and tt[lo] + window <= tq:
            lo += 1
        j = lo
        while j < nt and tt[j] <= tq:
            if tidx[j] != qidx[q]:
                d2 = _dist2(qx[q], qy[q], qz[q], ax[j], ay[j], az[j], bx[j], by[j], bz[j], line)
                if d2 < r2:
                    out[q] = True
                    break
            j += 1
    return out


@njit(cache=True, nogil=True)
def volume_triggers(idx, ax, ay, az, bx, by, bz, line):
    """Triggers ``idx`` usable by a volume veto and their float64 geometry.

    For lines (``line`` true) only tracked triggers (all six coordinates finite) are kept.
    Returns (kept idx, ax, ay, az, bx, by, bz, uu) with ``uu = |b - a|^2`` (0 for points).
    """
    m = idx.size
    keep = np.empty(m, np.int64)
    g = np.empty((6, m), np.float64)
    uu = np.zeros(m, np.float64)
    k = 0
    for i in range(m):
        j = idx[i]
        v0 = np.float64(ax[j])
        v1 = np.float64(ay[j])
        v2 = np.float64(az[j])
        v3 = np.float64(bx[j])
        v4 = np.float64(by[j])
        v5 = np.float64(bz[j])
        if line:
            if not (
                np.isfinite(v0)
                and np.isfinite(v1)
                and np.isfinite(v2)
                and np.isfinite(v3)
                and np.isfinite(v4)
                and np.isfinite(v5)
            ):
                continue
            uu[k] = (v3 - v0) * (v3 - v0) + (v4 - v1) * (v4 - v1) + (v5 - v2) * (v5 - v2)
        keep[k] = j
        g[0, k] = v0
        g[1, k] = v1
        g[2, k] = v2
        g[3, k] = v3
        g[4, k] = v4
        g[5, k] = v5
        k += 1
    return keep[:k], g[0, :k], g[1, :k], g[2, :k], g[3, :k], g[4, :k], g[5, :k], uu[:k]


@njit(cache=True, nogil=True)
def _vol_run(x, y, z, i0, i1, ax, ay, az, bx, by, bz, uu, r2, bit, bits):
    """OR ``bit`` into ``bits[i0:i1]`` within ``sqrt(r2)`` of one trigger; branch-free
    inner loops (vectorised), the same arithmetic as ``_dist2``."""
    xs = x[i0:i1]  # slices: indices from 0, so the loops vectorise
    ys = y[i0:i1]
    zs = z[i0:i1]
    bs = bits[i0:i1]
    zero = np.uint32(0)
    if uu > 0.0:
        ux = bx - ax
        uy = by - ay
        uz = bz - az
        for i in range(xs.size):
            wx = np.float64(xs[i]) - ax
            wy = np.float64(ys[i]) - ay
            wz = np.float64(zs[i]) - az
            cx = wy * uz - wz * uy
            cy = wz * ux - wx * uz
            cz = wx * uy - wy * ux
            bs[i] |= bit if (cx * cx + cy * cy + cz * cz) / uu < r2 else zero
    else:
        for i in range(xs.size):
            wx = np.float64(xs[i]) - ax
            wy = np.float64(ys[i]) - ay
            wz = np.float64(zs[i]) - az
            bs[i] |= bit if wx * wx + wy * wy + wz * wz < r2 else zero


@njit(cache=True, nogil=True)
def mark_volume_veto(
    t, x, y, z, seg_lo, seg_hi, tidx, ax, ay, az, bx, by, bz, uu, window, r2, bit, bits
):
    """OR ``bit`` into ``bits`` of the in-segment events vetoed by a volume veto.

    Same test as :func:`volume_veto` with every in-segment event of the slice as a query
    (a trigger never vetoes itself); triggers from :func:`volume_triggers` (``uu > 0``: a
    line), ascending. Each trigger scans the events of ``[t_j, t_j + window)``.
    """
    n = t.size
    ns = seg_lo.size
    if window <= 0:
        return
    ea = np.searchsorted(t, seg_lo, side="left")
    eb = np.searchsorted(t, seg_hi, side="left")
    b = 0
    s0 = 0
    for j in range(tidx.size):
        q = tidx[j]
        tj = t[q]
        a = q
        while a > 0 and t[a - 1] == tj:
            a -= 1
        e = tj + window
        if b < a:
            b = a
        while b < n and t[b] < e:
            b += 1
        while s0 < ns and eb[s0] <= a:
            s0 += 1
        s = s0
        while s < ns and ea[s] < b:
            i0 = max(a, ea[s])
            i1 = min(b, eb[s])
            if i0 < i1:
                # a trigger never vetoes itself: the run is split around it
                cut = q if i0 <= q < i1 else i1
                for half in range(2):
                    r0 = i0 if half == 0 else cut + 1
                    r1 = cut if half == 0 else i1
                    if r0 < r1:
                        _vol_run(
                            x,
                            y,
                            z,
                            r0,
                            r1,
                            ax[j],
                            ay[j],
                            az[j],
                            bx[j],
                            by[j],
                            bz[j],
                            uu[j],
                            r2,
                            bit,
                            bits,
                        )
            s += 1


@njit(cache=True, nogil=True)
def _track_dist(x, y, z, i, ax, ay, az, bx, by, bz, j):
    """Distance of event ``i`` to the track (segment a-b) of muon ``j``."""
    d2 = _dist2(
        np.float64(x[i]), np.float64(y[i]), np.float64(z[i]),
        np.float64(ax[j]), np.float64(ay[j]), np.float64(az[j]),
        np.float64(bx[j]), np.float64(by[j]), np.float64(bz[j]),
        True,
    )  # fmt: skip
    return np.sqrt(d2)


@njit(cache=True, nogil=True)
def since_last(t, x, y, z, seg_lo, seg_hi, mu, ax, ay, az, bx, by, bz, horizon, lo, hi):
    """Time (ns, float) since the previous ``mu`` event of the same segment within
    ``horizon`` and the distance to its track, for events ``[lo, hi)`` (+inf / NaN if none).
    """
    n = hi - lo
    ns = seg_lo.size
    dt = np.full(n, np.inf)
    dist = np.full(n, np.nan)
    last = -1
    last_seg = -1
    s = 0
    for i in range(hi):
        ti = t[i]
        while s < ns and seg_hi[s] <= ti:
            s += 1
        cur = s if (s < ns and seg_lo[s] <= ti) else -1
        if i >= lo and cur >= 0 and last >= 0 and last_seg == cur and ti - t[last] <= horizon:
            dt[i - lo] = ti - t[last]
            dist[i - lo] = _track_dist(x, y, z, i, ax, ay, az, bx, by, bz, last)
        if mu[i] and cur >= 0:
            last = i
            last_seg = cur
    return dt, dist


@njit(cache=True, nogil=True)
def since_at(t, x, y, z, seg_lo, seg_hi, mu, ax, ay, az, bx, by, bz, horizon, rows):
    """:func:`since_last` at the slice indices ``rows`` only (any order): for each row,
    a walk back to the previous ``mu`` event of its segment within ``horizon``.

    Same values as ``since_last(...)[rows]`` when the slice holds every event of the
    ``horizon`` ns before each row. Cost: O(rows x events walked back).
    """
    m = rows.size
    dt = np.full(m, np.inf)
    dist = np.full(m, np.nan)
    for r in range(m):
        i = rows[r]
        ti = t[i]
        s = np.searchsorted(seg_hi, ti, side="right")
        if s == seg_lo.size or seg_lo[s] > ti:
            continue  # outside every segment
        stop = max(seg_lo[s], ti - horizon)  # the muon: same segment, within horizon
        j = i - 1
        while j >= 0 and t[j] >= stop:
            if mu[j]:
                dt[r] = ti - t[j]
                dist[r] = _track_dist(x, y, z, i, ax, ay, az, bx, by, bz, j)
                break
            j -= 1
    return dt, dist
