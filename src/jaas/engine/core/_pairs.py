"""Numba kernels of the coincidence search: delayed-first pairs, off-time windows, isolation.

Split from :mod:`jaas.engine.core.kernels` (which re-exports them); semantics in
:mod:`jaas.engine.core.correlate`.
"""

from __future__ import annotations

import numpy as np
from numba import njit

MODE_ALL = 0
MODE_NEAREST = 1
MODE_EXACTLY_ONE = 2


@njit(cache=True, nogil=True)
def _sum_back(t, mask, j, lo):
    """Events of ``mask`` at ``j, j - 1, ...`` while ``t >= lo``."""
    c = 0
    while j >= 0 and t[j] >= lo:
        c += mask[j]
        j -= 1
    return c


@njit(cache=True, nogil=True)
def _sum_fwd(t, mask, j, hi, skip):
    """Events of ``mask`` at ``j, j + 1, ...`` while ``t <= hi``, index ``skip`` excluded."""
    n = t.size
    c = 0
    while j < n and t[j] <= hi:
        if j != skip:
            c += mask[j]
        j += 1
    return c


@njit(cache=True, nogil=True)
def _count_iso(t, mask, p, d, a0, a1, b0, b1):
    """Events of ``mask`` in [a0, a1] U [b0, b1] (closed, around p and d), p and d excluded."""
    if a1 >= b0:  # one interval [a0, b1] containing p and d
        return _sum_back(t, mask, p - 1, a0) + _sum_fwd(t, mask, p + 1, b1, d)
    return (
        _sum_back(t, mask, p - 1, a0)
        + _sum_fwd(t, mask, p + 1, a1, -1)
        + _sum_back(t, mask, d - 1, b0)
        + _sum_fwd(t, mask, d + 1, b1, -1)
    )


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
def _delayed_segment(t, bits, d, seg_lo, seg_hi, sp):
    """The segment pointer ``sp`` moved on to delayed event ``d`` (they ascend), and the
    segment of ``d``: -1 if ``d`` is vetoed or outside every segment."""
    if bits[d] != 0:
        return sp, -1
    td = t[d]
    while sp < seg_lo.size and seg_hi[sp] <= td:
        sp += 1
    if sp == seg_lo.size or td < seg_lo[sp]:
        return sp, -1
    return sp, sp


@njit(cache=True, nogil=True)
def _new_pairs(cap):
    """Empty growable output arrays (prompt, delayed, window) of capacity ``cap``."""
    return np.empty(cap, np.int64), np.empty(cap, np.int64), np.empty(cap, np.int64)


@njit(cache=True, nogil=True)
def _near(x, y, z, d, j, dr2):
    """``|r_d - r_j|^2 < dr2`` (``dr2 < 0``: no distance cut)."""
    if dr2 < 0.0:
        return True
    ddx = np.float64(x[d]) - np.float64(x[j])
    ddy = np.float64(y[d]) - np.float64(y[j])
    ddz = np.float64(z[d]) - np.float64(z[j])
    return ddx * ddx + ddy * ddy + ddz * ddz < dr2


@njit(cache=True, nogil=True)
def coincide(ev, prompt, didx, shifts, cut):
    """Pairs (prompt, delayed, window) for the delayed-mask events ``didx`` of a slice.

    ``didx`` ascending. Delayed candidate: ``bits == 0`` and inside a segment. For each
    shift ``s_k`` (0 for on-time; ascending) the window ``t_d - s_k - dt_max <= t_p`` must
    lie in the delayed's segment; prompt candidates satisfy ``prompt & bits == 0``, same segment,
    ``dt_min < t_d - s_k - t_p < dt_max`` and ``|r_d - r_p|^2 < dr2`` (``dr2 < 0``: no
    cut). ``mode`` picks pairs, then isolation rejects pairs (see ``correlate``).
    Returns (prompt_idx, delayed_idx, window_idx) in slice indices, unsorted.

    ``ev`` is the slice ``(t, x, y, z, seg_lo, seg_hi, bits)`` and ``cut`` the selection
    ``(dt_min, dt_max, dr2, mode, iso, before, after)``, as for :func:`coincide_sweep`.
    """
    t, x, y, z, seg_lo, seg_hi, bits = ev
    dt_min, dt_max, dr2, mode, iso, before, after = cut
    op, od, ok = _new_pairs(64)
    cand = np.empty(16, np.int64)
    npairs = 0
    nk = shifts.size
    sp = 0  # segment pointer: delayed events ascend
    for d in didx:
        sp, sd = _delayed_segment(t, bits, d, seg_lo, seg_hi, sp)
        if sd < 0:
            continue
        td = t[d]
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
                # the window lies in segment sd
                if prompt[j] and bits[j] == 0 and _near(x, y, z, d, j, dr2):
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
                op, od, ok, npairs = _push(op, od, ok, npairs, p, d, k)
    return op[:npairs], od[:npairs], ok[:npairs]


@njit(cache=True, nogil=True)
def _push(op, od, ok, npairs, p, d, k):
    """Append (p, d, k) to the growable output arrays; returns them and the new count."""
    if npairs == op.size:
        op2, od2, ok2 = _new_pairs(2 * op.size)
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
def coincide_sweep(ev, prompt, didx, start, step, nk, cut):
    """Same result as :func:`coincide` with ``shifts = start + step * arange(nk)`` when
    windows do not overlap (``step >= dt_max - dt_min``), in one backward sweep per delayed.

    A prompt at ``u = t_d - start - t_p`` lies in window ``k = (u - dt_min - 1) // step``
    if ``u < k * step + dt_max`` (strict bounds). Windows are visited in increasing ``k``
    as the sweep goes back in time; mode and isolation are applied per window.
    """
    t, x, y, z, seg_lo, seg_hi, bits = ev
    dt_min, dt_max, dr2, mode, iso, before, after = cut
    op, od, ok = _new_pairs(64)
    npairs = 0
    n = t.size
    jp = 0
    sp = 0  # segment pointer: delayed events ascend
    ctx = (t, seg_lo, seg_hi, iso, before, after)
    for d in didx:
        sp, sd = _delayed_segment(t, bits, d, seg_lo, seg_hi, sp)
        if sd < 0:
            continue
        td = t[d]
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
                if u < k * step + dt_max and _near(x, y, z, d, j, dr2):
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
