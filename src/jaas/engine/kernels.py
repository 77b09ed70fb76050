"""Numba kernels of the correlation engine: segments, vetoes, coincidences, intervals.

Every kernel is a pure function of numpy arrays compiled with ``nogil=True`` (partitions
run on a thread pool) and ``cache=True`` (the JIT cost is paid once per machine). The
semantics are documented in :mod:`jaas.engine.correlate`; these kernels implement them on
one time-sorted slice of the stream.
"""

from __future__ import annotations

import numpy as np
from numba import njit

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
    "since_last",
    "union2",
    "union_intervals",
    "veto_exposure",
    "volume_triggers",
    "volume_veto",
    "window_union",
]

GAP_BIT = 1 << 31  # veto bit of the conservative veto after each segment start
MODE_ALL = 0
MODE_NEAREST = 1
MODE_EXACTLY_ONE = 2
_FAR = np.int64(1) << np.int64(62)


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
                if i0 <= q < i1:
                    _vol_run(
                        x,
                        y,
                        z,
                        i0,
                        q,
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
                    _vol_run(
                        x,
                        y,
                        z,
                        q + 1,
                        i1,
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
                else:
                    _vol_run(
                        x,
                        y,
                        z,
                        i0,
                        i1,
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
def _count_iso(t, mask, p, d, a0, a1, b0, b1):
    """Events of ``mask`` in [a0, a1] U [b0, b1] (closed, around p and d), p and d excluded."""
    n = t.size
    c = 0
    if a1 >= b0:  # one interval [a0, b1] containing p and d
        j = p - 1
        while j >= 0 and t[j] >= a0:
            c += mask[j]
            j -= 1
        j = p + 1
        while j < n and t[j] <= b1:
            if j != d:
                c += mask[j]
            j += 1
        return c
    j = p - 1
    while j >= 0 and t[j] >= a0:
        c += mask[j]
        j -= 1
    j = p + 1
    while j < n and t[j] <= a1:
        c += mask[j]
        j += 1
    j = d - 1
    while j >= 0 and t[j] >= b0:
        c += mask[j]
        j -= 1
    j = d + 1
    while j < n and t[j] <= b1:
        c += mask[j]
        j += 1
    return c


@njit(cache=True, nogil=True)
def _isolated(t, s, seg_lo, seg_hi, iso, before, after, p, d, shift):
    dtv = t[d] - shift - t[p]
    for m in range(before.size):
        a0 = t[p] - before[m]
        b1 = t[d] + after[m]
        if a0 < seg_lo[s] or b1 >= seg_hi[s]:
            return False
        if _count_iso(t, iso[m], p, d, a0, t[p] + dtv, t[d] - dtv, b1) > 0:
            return False
    return True


@njit(cache=True, nogil=True)
def coincide(
    t,
    x,
    y,
    z,
    seg_lo,
    seg_hi,
    bits,
    prompt,
    didx,
    shifts,
    dt_min,
    dt_max,
    dr2,
    mode,
    iso,
    before,
    after,
):
    """Pairs (prompt, delayed, window) for the delayed-mask events ``didx`` of a slice.

    ``didx`` ascending. Delayed candidate: ``bits == 0`` and inside a segment. For each
    shift ``s_k`` (0 for on-time; ascending) the window ``t_d - s_k - dt_max <= t_p`` must
    lie in the delayed's segment; prompt candidates satisfy ``prompt & bits == 0``, same segment,
    ``dt_min < t_d - s_k - t_p < dt_max`` and ``|r_d - r_p|^2 < dr2`` (``dr2 < 0``: no
    cut). ``mode`` picks pairs, then isolation rejects pairs (see ``correlate``).
    Returns (prompt_idx, delayed_idx, window_idx) in slice indices, unsorted.
    """
    cap = 64
    op = np.empty(cap, np.int64)
    od = np.empty(cap, np.int64)
    ok = np.empty(cap, np.int64)
    cand = np.empty(16, np.int64)
    npairs = 0
    nk = shifts.size
    ns = seg_lo.size
    sp = 0  # segment pointer: delayed events ascend
    for d in didx:
        if bits[d] != 0:
            continue
        td = t[d]
        while sp < ns and seg_hi[sp] <= td:
            sp += 1
        if sp == ns or td < seg_lo[sp]:
            continue
        sd = sp
        p_hi = d  # exclusive upper bound of the window, moves back as shifts grow
        for k in range(nk):
            sk = shifts[k]
            if td - sk - dt_max < seg_lo[sd]:
                break
            lim = td - sk - dt_min
            while p_hi > 0 and t[p_hi - 1] >= lim:
                p_hi -= 1
            nc = 0
            j = p_hi - 1
            while j >= 0 and td - sk - t[j] < dt_max:
                if prompt[j] and bits[j] == 0:  # the window lies in segment sd
                    good = True
                    if dr2 >= 0.0:
                        ddx = np.float64(x[d]) - np.float64(x[j])
                        ddy = np.float64(y[d]) - np.float64(y[j])
                        ddz = np.float64(z[d]) - np.float64(z[j])
                        good = ddx * ddx + ddy * ddy + ddz * ddz < dr2
                    if good:
                        if nc == cand.size:
                            new = np.empty(2 * cand.size, np.int64)
                            new[:nc] = cand[:nc]
                            cand = new
                        cand[nc] = j
                        nc += 1
                        if mode == MODE_NEAREST or (mode == MODE_EXACTLY_ONE and nc > 1):
                            break
                j -= 1
            if nc == 0 or (mode == MODE_EXACTLY_ONE and nc != 1):
                continue
            for c in range(nc):
                p = cand[c]
                if before.size > 0 and not _isolated(
                    t, sd, seg_lo, seg_hi, iso, before, after, p, d, sk
                ):
                    continue
                if npairs == cap:
                    cap *= 2
                    op2 = np.empty(cap, np.int64)
                    od2 = np.empty(cap, np.int64)
                    ok2 = np.empty(cap, np.int64)
                    op2[:npairs] = op[:npairs]
                    od2[:npairs] = od[:npairs]
                    ok2[:npairs] = ok[:npairs]
                    op, od, ok = op2, od2, ok2
                op[npairs] = p
                od[npairs] = d
                ok[npairs] = k
                npairs += 1
    return op[:npairs], od[:npairs], ok[:npairs]


@njit(cache=True, nogil=True)
def _push(op, od, ok, npairs, p, d, k):
    """Append (p, d, k) to the growable output arrays; returns them and the new count."""
    if npairs == op.size:
        cap = 2 * op.size
        op2 = np.empty(cap, np.int64)
        od2 = np.empty(cap, np.int64)
        ok2 = np.empty(cap, np.int64)
        op2[:npairs] = op[:npairs]
        od2[:npairs] = od[:npairs]
        ok2[:npairs] = ok[:npairs]
        op, od, ok = op2, od2, ok2
    op[npairs] = p
    od[npairs] = d
    ok[npairs] = k
    return op, od, ok, npairs + 1


@njit(cache=True, nogil=True)
def _emit(op, od, ok, npairs, ctx, sd, p, d, k, shift):
    """Append the pair (p, d, window k) unless isolation rejects it."""
    t, seg_lo, seg_hi, iso, before, after = ctx
    if before.size > 0 and not _isolated(t, sd, seg_lo, seg_hi, iso, before, after, p, d, shift):
        return op, od, ok, npairs
    return _push(op, od, ok, npairs, p, d, k)


@njit(cache=True, nogil=True)
def coincide_sweep(
    t,
    x,
    y,
    z,
    seg_lo,
    seg_hi,
    bits,
    prompt,
    didx,
    start,
    step,
    nk,
    dt_min,
    dt_max,
    dr2,
    mode,
    iso,
    before,
    after,
):
    """Same result as :func:`coincide` with ``shifts = start + step * arange(nk)`` when
    windows do not overlap (``step >= dt_max - dt_min``), in one backward sweep per delayed.

    A prompt at ``u = t_d - start - t_p`` lies in window ``k = (u - dt_min - 1) // step``
    if ``u < k * step + dt_max`` (strict bounds). Windows are visited in increasing ``k``
    as the sweep goes back in time; mode and isolation are applied per window.
    """
    op = np.empty(64, np.int64)
    od = np.empty(64, np.int64)
    ok = np.empty(64, np.int64)
    npairs = 0
    n = t.size
    jp = 0
    ns = seg_lo.size
    sp = 0  # segment pointer: delayed events ascend
    ctx = (t, seg_lo, seg_hi, iso, before, after)
    for d in didx:
        if bits[d] != 0:
            continue
        td = t[d]
        while sp < ns and seg_hi[sp] <= td:
            sp += 1
        if sp == ns or td < seg_lo[sp]:
            continue
        sd = sp
        # windows k < kmax lie in the segment: td - start - k*step - dt_max >= seg_lo
        room = td - start - dt_max - seg_lo[sd]
        if room < 0:
            continue
        kmax = min(nk, room // step + 1)
        t_hi = td - start - dt_min  # prompts strictly before this time
        t_lo = td - start - (kmax - 1) * step - dt_max  # and strictly after this one
        while jp < n and t[jp] < t_hi:  # delayed ascend, so does t_hi: one forward pass
            jp += 1
        j = min(d, jp) - 1
        cur = -1  # window being collected
        nc = 0
        first = -1
        while j >= 0 and t[j] > t_lo:
            if prompt[j] and bits[j] == 0:
                u = td - start - t[j]
                k = (u - dt_min - 1) // step
                if u < k * step + dt_max:
                    good = True
                    if dr2 >= 0.0:
                        ddx = np.float64(x[d]) - np.float64(x[j])
                        ddy = np.float64(y[d]) - np.float64(y[j])
                        ddz = np.float64(z[d]) - np.float64(z[j])
                        good = ddx * ddx + ddy * ddy + ddz * ddz < dr2
                    if good:
                        if k != cur:
                            if cur >= 0 and (
                                mode == MODE_NEAREST or (mode == MODE_EXACTLY_ONE and nc == 1)
                            ):
                                op, od, ok, npairs = _emit(
                                    op, od, ok, npairs, ctx, sd, first, d, cur, start + cur * step
                                )
                            cur = k
                            nc = 0
                            first = j
                        nc += 1
                        if mode == MODE_ALL:
                            op, od, ok, npairs = _emit(
                                op, od, ok, npairs, ctx, sd, j, d, k, start + k * step
                            )
            j -= 1
        if cur >= 0 and (mode == MODE_NEAREST or (mode == MODE_EXACTLY_ONE and nc == 1)):
            op, od, ok, npairs = _emit(
                op, od, ok, npairs, ctx, sd, first, d, cur, start + cur * step
            )
    return op[:npairs], od[:npairs], ok[:npairs]


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
            d2 = _dist2(
                np.float64(x[i]),
                np.float64(y[i]),
                np.float64(z[i]),
                np.float64(ax[last]),
                np.float64(ay[last]),
                np.float64(az[last]),
                np.float64(bx[last]),
                np.float64(by[last]),
                np.float64(bz[last]),
                True,
            )
            dist[i - lo] = np.sqrt(d2)
        if mu[i] and cur >= 0:
            last = i
            last_seg = cur
    return dt, dist


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
def window_union(t, idx, window):
    """Union of ``[t[j], t[j] + window)`` for ascending ``idx``, as an (m, 2) array."""
    out = np.empty((idx.size, 2), np.int64)
    m = 0
    if window <= 0:
        return out[:0]
    for j in idx:
        a = t[j]
        b = a + window
        if m > 0 and a <= out[m - 1, 1]:
            if b > out[m - 1, 1]:
                out[m - 1, 1] = b
        else:
            out[m, 0] = a
            out[m, 1] = b
            m += 1
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
            x0 = a[i, 0]
            x1 = a[i, 1]
            i += 1
        else:
            x0 = b[j, 0]
            x1 = b[j, 1]
            j += 1
        if m > 0 and x0 <= out[m - 1, 1]:
            if x1 > out[m - 1, 1]:
                out[m - 1, 1] = x1
        else:
            out[m, 0] = x0
            out[m, 1] = x1
            m += 1
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
