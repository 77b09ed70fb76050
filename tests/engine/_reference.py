"""Brute-force reference of :func:`jaas.engine.core.correlate.correlate`, for tests only.

Plain Python loops written straight from the semantics in ``correlate``'s module
docstring, O(n * events in window), sharing no code with the kernels (except the
Monte Carlo sample generator, whose samples both must use).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from jaas.engine.core.correlate import TRACK_COLUMNS, Spec
from jaas.engine.core.exposure import mc_samples

__all__ = ["reference"]


def _seg_of(tv: int, segs: list[tuple[int, int]]) -> int:
    for k, (a, b) in enumerate(segs):
        if a <= tv < b:
            return k
    return -1


def _line_d2(p: tuple[float, ...], a: tuple[float, ...], b: tuple[float, ...]) -> float:
    u = [b[i] - a[i] for i in range(3)]
    w = [p[i] - a[i] for i in range(3)]
    uu = sum(c * c for c in u)
    if uu == 0:
        return sum(c * c for c in w)
    # |w|^2 - (w.u)^2/|u|^2 is numerically poor; use the cross product
    cx = w[1] * u[2] - w[2] * u[1]
    cy = w[2] * u[0] - w[0] * u[2]
    cz = w[0] * u[1] - w[1] * u[0]
    return (cx * cx + cy * cy + cz * cz) / uu


def _merge(iv: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[list[int]] = []
    for a, b in sorted(iv):
        if b <= a:
            continue
        if out and a <= out[-1][1]:
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append([a, b])
    return [(a, b) for a, b in out]


def _clip(iv: list[tuple[int, int]], segs: list[tuple[int, int]]) -> list[tuple[int, int]]:
    res = []
    for a, b in iv:
        for s0, s1 in segs:
            lo, hi = max(a, s0), min(b, s1)
            if lo < hi:
                res.append((lo, hi))
    return sorted(res)


def reference(
    columns: Mapping[str, np.ndarray], spec: Spec, segments: Any = None
) -> dict[str, Any]:
    """Return pairs, veto bits, derived columns, off-time pairs and exposure numbers.

    Keys: prompt, delayed, veto_bits, off (list of (p, d, k)), columns, veto_intervals,
    veto_ns, gap_veto_ns, mc_live, mc_pass, mc_pass_by_veto.
    """
    t = [int(v) for v in columns["t"]]
    n = len(t)

    def pos(i: int) -> tuple[float, float, float]:
        return tuple(float(columns[c][i]) for c in ("x", "y", "z"))  # type: ignore[return-value]

    def track(i: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
        v = [float(columns[c][i]) if c in columns else math.nan for c in TRACK_COLUMNS]
        return tuple(v[:3]), tuple(v[3:])

    if segments is None:
        segs = [(t[0], t[-1] + 1)] if n else []
    else:
        segs = _merge([(int(a), int(b)) for a, b in segments])
    seg = [_seg_of(tv, segs) for tv in t]
    det_w = [v.window_ns for v in spec.vetoes if v.kind == "detector"]
    gap_w = max(det_w) if (spec.gap_veto and det_w) else 0

    # vetoes
    def veto_hits(tq: int, pq: tuple[float, ...] | None, qi: int) -> int:
        bits = 0
        for vi, v in enumerate(spec.vetoes):
            for j in range(n):
                if not (columns[v.trigger][j] and seg[j] >= 0 and t[j] <= tq < t[j] + v.window_ns):
                    continue
                if v.kind == "detector":
                    bits |= 1 << vi
                elif pq is not None and j != qi:
                    if v.kind == "cylinder":
                        a, b = track(j)
                        if any(math.isnan(c) for c in a + b):
                            continue
                        d2 = _line_d2(pq, a, b)
                    else:
                        d2 = sum((pq[k] - pos(j)[k]) ** 2 for k in range(3))
                    if d2 < v.radius**2:
                        bits |= 1 << vi
        return bits

    spatial = any(v.kind != "detector" for v in spec.vetoes)
    vbits = [0] * n
    for i in range(n):
        if seg[i] < 0:
            continue
        b = veto_hits(t[i], pos(i) if spatial else None, i)
        if t[i] < segs[seg[i]][0] + gap_w:
            b |= 1 << 31
        vbits[i] = b

    out: dict[str, Any] = {"veto_bits": np.array(vbits, np.uint32)}
    prompt: list[int] = []
    delayed: list[int] = []
    off: list[tuple[int, int, int]] = []
    c = spec.coincidence
    if c is not None:
        shifts = [0, *(int(s) for s in spec.shifts())]
        for d in range(n):
            if not (columns[c.delayed][d] and vbits[d] == 0 and seg[d] >= 0):
                continue
            s_lo, s_hi = segs[seg[d]]
            for k, sh in enumerate(shifts):
                if t[d] - sh - c.dt_max_ns < s_lo:
                    continue
                cands = []
                for p in range(n):
                    dt = t[d] - sh - t[p]
                    if not (columns[c.prompt][p] and vbits[p] == 0 and seg[p] == seg[d]):
                        continue
                    if not (c.dt_min_ns < dt < c.dt_max_ns):
                        continue
                    if c.dr_max is not None:
                        dr2 = sum((pos(d)[q] - pos(p)[q]) ** 2 for q in range(3))
                        if not dr2 < c.dr_max**2:
                            continue
                    cands.append(p)
                if c.mode == "exactly_one":
                    cands = cands if len(cands) == 1 else []
                elif c.mode == "nearest" and cands:
                    best = min(t[d] - t[p] for p in cands)
                    cands = [max(p for p in cands if t[d] - t[p] == best)]
                for p in cands:
                    dt = t[d] - sh - t[p]
                    ok = True
                    for iso in c.isolation:
                        a0, b1 = t[p] - iso.before_ns, t[d] + iso.after_ns
                        if a0 < s_lo or b1 >= s_hi:
                            ok = False
                            break
                        for j in range(n):
                            if j in (p, d) or not columns[iso.mask][j]:
                                continue
                            if a0 <= t[j] <= t[p] + dt or t[d] - dt <= t[j] <= b1:
                                ok = False
                                break
                        if not ok:
                            break
                    if ok:
                        if sh == 0:
                            prompt.append(p)
                            delayed.append(d)
                        else:
                            off.append((p, d, k - 1))
    out["prompt"] = np.array(prompt, np.int64)
    out["delayed"] = np.array(delayed, np.int64)
    out["off"] = off

    cols: dict[str, np.ndarray] = {}
    for s in spec.since:
        dts = np.full(n, np.inf)
        dist = np.full(n, np.nan)
        for i in range(n):
            for j in range(i - 1, -1, -1):
                if columns[s.mask][j] and seg[j] >= 0:
                    if seg[i] >= 0 and seg[j] == seg[i] and t[i] - t[j] <= s.horizon_ns:
                        dts[i] = t[i] - t[j]
                        p0, p1 = track(j)
                        dist[i] = math.sqrt(_line_d2(pos(i), p0, p1))
                    break
        cols[s.name] = dts
        cols[s.name + "_dist"] = dist
    out["columns"] = cols

    mu = []
    for v in spec.vetoes:
        if v.kind == "detector":
            mu += [
                (t[j], t[j] + v.window_ns)
                for j in range(n)
                if columns[v.trigger][j] and seg[j] >= 0
            ]
    gap = [(a, a + gap_w) for a, _ in segs] if gap_w else []
    mu_iv = _clip(_merge(mu), segs)
    all_iv = _merge(_clip(_merge(mu + gap), segs))
    out["veto_intervals"] = np.array(all_iv, np.int64).reshape(-1, 2)
    out["veto_ns"] = sum(b - a for a, b in all_iv)
    out["gap_veto_ns"] = out["veto_ns"] - sum(b - a for a, b in mu_iv)

    vol = [v for v in spec.vetoes if v.kind != "detector"]
    out["mc_live"] = out["mc_pass"] = 0
    out["mc_pass_by_veto"] = {}
    if vol:
        st, sx, sy, sz = mc_samples(
            np.array(segs, np.int64).reshape(-1, 2),
            spec.mc_samples,
            spec.fiducial_radius,
            spec.mc_seed,
        )
        by = {v.name: 0 for v in vol}
        for q in range(st.size):
            tq = int(st[q])
            if any(a <= tq < b for a, b in all_iv):
                continue
            out["mc_live"] += 1
            hits = veto_hits(tq, (float(sx[q]), float(sy[q]), float(sz[q])), -1)
            for vi, v in enumerate(spec.vetoes):
                if v.kind != "detector" and not hits & (1 << vi):
                    by[v.name] += 1
            if not any(
                hits & (1 << vi) for vi, v in enumerate(spec.vetoes) if v.kind != "detector"
            ):
                out["mc_pass"] += 1
        out["mc_pass_by_veto"] = by
    return out
