"""Exact time partitioning: plan (core, halo) slices, run each, merge the partial results.

Split inclusive, count exclusive: a partition owns the events of its core time range
``[t_lo, t_hi)`` (boundaries never split equal times) and reads a halo of
``Spec.halo()`` ns on each side, borrowed from as many neighbours as needed (a halo may be
longer than many partitions). A pair belongs to the partition holding its delayed event,
veto bits and derived columns are reported for core events, exposure sums and veto
intervals are clipped to the core time range. Every number is an integer or computed
from the same events whatever the cut, so ``merge`` gives identical results for any plan.

A distributed backend ships ``columns[halo_start:halo_stop]`` and the ``Partition`` to a
worker, calls :func:`run_partition` there and :func:`merge` on the driver.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from jaas.engine.core._join import concat, join_intervals
from jaas.engine.core.exposure import (
    Exposure,
    gap_exposure,
    intervals_measure,
    mc_samples,
    normalize_intervals,
)
from jaas.engine.core.memo import VetoMemo, _frozen
from jaas.engine.core.plan import (
    Partition,
    halo_bounds,
    plan_partitions,
    rows_between,
    samples_between,
)
from jaas.engine.core.spec import TRACK_COLUMNS, Accidentals, Result, Spec

__all__ = [
    "PartialResult",
    "Partition",
    "VetoMemo",
    "VetoPhase",
    "halo_bounds",
    "merge",
    "plan_partitions",
    "rows_between",
    "run_partition",
    "run_partitions",
    "run_vetoes",
    "samples_between",
]

_FAR = 1 << 62


class _Kernels:
    """``jaas.engine.core.kernels``, imported on first use: importing it imports numba and
    builds the dispatchers (~0.15 s of a fresh process), which a first query does on its
    numba warm-up thread while the columns are read (``Dataset.load``)."""

    def __getattr__(self, name: str) -> Any:
        from jaas.engine.core import kernels

        return getattr(kernels, name)


K: Any = _Kernels()  # numba dispatchers: untyped for mypy
I64 = npt.NDArray[np.int64]


@dataclass
class PartialResult:
    """What one partition contributes; indices are global stream indices."""

    part: Partition
    prompt: I64
    delayed: I64
    off_prompt: I64
    off_delayed: I64
    off_window: I64
    veto_bits: npt.NDArray[np.uint32]
    columns: dict[str, np.ndarray]
    veto_intervals: I64
    veto_ns: int
    muon_veto_ns: int
    mc_live: int = 0
    mc_pass: int = 0
    mc_pass_by_veto: dict[str, int] = field(default_factory=dict)
    pair_columns: dict[str, np.ndarray] = field(default_factory=dict)  # since at="pairs"


def _triggers(cols: Mapping[str, np.ndarray], trigger: str, segs: I64) -> I64:
    """Indices of the ``trigger`` events inside a segment."""
    t = cols["t"]
    idx = np.flatnonzero(cols[trigger])
    a = np.searchsorted(idx, np.searchsorted(t, segs[:, 0], side="left"))
    b = np.searchsorted(idx, np.searchsorted(t, segs[:, 1], side="left"))
    keep = b > a
    if keep.sum() == 1:  # one segment holds them all: a view, no copy
        k = int(np.flatnonzero(keep)[0])
        return idx[a[k] : b[k]]
    return np.concatenate([idx[i:j] for i, j in zip(a[keep], b[keep], strict=True)] or [idx[:0]])


def _volume(cols: Mapping[str, np.ndarray], idx: I64, kind: str) -> tuple[I64, list[np.ndarray]]:
    """Triggers usable by a volume veto (tracked, for cylinders), their float64 geometry
    (a, b) and ``|b - a|^2`` (0 for spheres)."""
    names = TRACK_COLUMNS if kind == "cylinder" else ("x", "y", "z") * 2
    keep, *g = K.volume_triggers(idx, *(cols[c] for c in names), kind == "cylinder")
    return keep, g


@dataclass
class VetoPhase:
    """The veto part of a partition's work: a function of the vetoes, never of the pair
    cuts, so a query changing only those reuses it (see ``run_partitions``)."""

    bits: npt.NDArray[np.uint32]  # per slice event
    union: I64  # whole-detector veto intervals in the core time range
    veto_ns: int
    muon_veto_ns: int
    mc: tuple[int, int, dict[str, int]] | None  # (live, pass, pass by veto)
    # (prompt, delayed) masks -> their candidate sub-stream (see ``_candidates``)
    candidates: dict[tuple[tuple[int, int, int], ...], Candidates] = field(default_factory=dict)


@dataclass
class Candidates:
    """The events of a slice that the pair kernels can use, for one (prompt, delayed)
    mask pair and one veto phase: prompt or delayed mask, not vetoed (``idx``, slice
    indices), with their time, vertex and masks. The kernels skip every other event
    (a vetoed or unmarked event is neither a candidate nor counted), and the sub-stream
    keeps stream order, so pairs found on it, mapped through ``idx``, are the pairs of
    the full slice. Remembered on a read-only veto phase: a query changing only dt,
    dR or the mode (a panel's time sliders) scans ~20 % of the events, densely."""

    held: tuple[np.ndarray, ...]  # the masks and vertex read: keeps the keyed memory alive
    idx: I64
    cols: tuple[np.ndarray, ...]  # t, x, y, z, prompt, delayed, bits (zeros)


def _memory_key(a: np.ndarray) -> tuple[int, int, int]:
    """Where a read-only array's values live: its owner, first byte and length (a new
    view of the same rows, as each query's partition slice is, has the same key)."""
    root: Any = a
    while isinstance(root.base, np.ndarray):
        root = root.base
    return id(root), int(a.__array_interface__["data"][0]), a.size


def _candidates(
    cols: Mapping[str, np.ndarray],
    xyz: list[np.ndarray],
    prompt: str,
    delayed: str,
    vp: VetoPhase,
) -> Candidates | None:
    """The remembered (or new) candidate sub-stream of ``prompt``/``delayed`` for the
    read-only veto phase ``vp``; None when the masks or vertex may change (writeable)."""
    held = (cols[prompt], cols[delayed], *xyz)
    if vp.bits.flags.writeable or not all(_frozen(a) for a in held):
        return None
    key = tuple(_memory_key(a) for a in held)
    got = vp.candidates.get(key)
    if got is not None:  # its held arrays keep the keyed memory alive: same values
        return got
    pm, dm = held[0], held[1]
    idx = np.flatnonzero((pm | dm) & (vp.bits == 0))
    sub = (cols["t"][idx], *(a[idx] for a in xyz), pm[idx], dm[idx])
    got = Candidates(held, idx, (*sub, np.zeros(idx.size, np.uint32)))
    if len(vp.candidates) >= 2:  # bounded: the last two mask pairs
        vp.candidates.pop(next(iter(vp.candidates)))
    vp.candidates[key] = got
    return got


def run_vetoes(
    cols: Mapping[str, np.ndarray],
    part: Partition,
    spec: Spec,
    segments: I64,
    samples: tuple[np.ndarray, ...] | None = None,
) -> VetoPhase:
    """Veto bits, whole-detector veto intervals and volume-veto MC of one partition."""
    t = cols["t"]
    seg_lo, seg_hi = segments[:, 0].copy(), segments[:, 1].copy()
    bits = np.zeros(t.size, np.uint32)
    trig = {v.name: _triggers(cols, v.trigger, segments) for v in spec.vetoes}
    det_w = [v.window_ns for v in spec.vetoes if v.kind == "detector"]
    gap_w = max(det_w) if (spec.gap_veto and det_w) else 0
    for i, v in enumerate(spec.vetoes):
        if v.kind == "detector":
            K.mark_detector_veto(t, trig[v.name], v.window_ns, 1 << i, seg_lo, seg_hi, bits)
    if gap_w:
        K.mark_gap_veto(t, seg_lo, seg_hi, gap_w, bits)
    vol = [(i, v) for i, v in enumerate(spec.vetoes) if v.kind != "detector"]
    geo = {v.name: _volume(cols, trig[v.name], v.kind) for _, v in vol}
    for i, v in vol:
        idx, g = geo[v.name]
        xyz = (cols[c] for c in ("x", "y", "z"))
        K.mark_volume_veto(
            t, *xyz, seg_lo, seg_hi, idx, *g, v.window_ns, v.radius**2, np.uint32(1 << i), bits
        )

    # exposure: whole-detector veto time inside segments and the core time range
    clip = segments.copy()
    if len(clip):
        clip[:, 0] = np.maximum(clip[:, 0], part.t_lo)
        clip[:, 1] = np.minimum(clip[:, 1], part.t_hi)
        clip = clip[clip[:, 1] > clip[:, 0]]
    det = [v for v in spec.vetoes if v.kind == "detector"]
    extra = np.empty((0, 2), np.int64)
    for v in det[1:]:
        extra, _ = K.union2(extra, K.window_union(t, trig[v.name], v.window_ns))
    gaps = np.empty((0, 2), np.int64)
    if gap_w:
        gaps = normalize_intervals(np.stack([segments[:, 0], segments[:, 0] + gap_w], axis=1))
    first = (trig[det[0].name], det[0].window_ns) if det else (np.empty(0, np.int64), 0)
    all_union, all_ns, mu_ns = K.veto_exposure(t, *first, extra, gaps, clip)
    mc = _mc(cols, geo, samples, all_union, vol) if samples is not None and vol else None
    return VetoPhase(bits, all_union, int(all_ns), int(mu_ns), mc)


def run_partition(
    cols: Mapping[str, np.ndarray],
    part: Partition,
    spec: Spec,
    segments: I64,
    samples: tuple[np.ndarray, ...] | None = None,
    vetoes: VetoPhase | None = None,
) -> PartialResult:
    """Process one partition.

    Args:
        cols: the stream columns sliced to ``[part.halo_start, part.halo_stop)``.
        part: the partition (global indices).
        spec: what to compute.
        segments: all good-time segments (normalised).
        samples: the volume-veto Monte Carlo samples (t, x, y, z) in ``[t_lo, t_hi)``.
        vetoes: the result of :func:`run_vetoes` for the same arguments, if known (it
            is not modified; its arrays are shared by the result when read-only, as
            ``run_partitions`` makes the phases it remembers, else copied).
    """
    t = cols["t"]
    off = part.halo_start
    lo, hi = part.core_start - off, part.core_stop - off
    seg_lo, seg_hi = segments[:, 0].copy(), segments[:, 1].copy()
    fresh = vetoes is None
    vp = run_vetoes(cols, part, spec, segments, samples) if vetoes is None else vetoes
    bits = vp.bits

    empty = np.empty(0, np.int64)
    pairs = (empty, empty, empty)
    offp = (empty, empty, empty)
    c = spec.coincidence
    if c is not None:
        n = t.size
        xyz = [cols[a] if a in cols else np.zeros(n, np.float32) for a in ("x", "y", "z")]
        if c.isolation:
            iso = np.stack([cols[i.mask] for i in c.isolation])
        else:
            iso = np.zeros((0, n), np.bool_)
        before = np.array([i.before_ns for i in c.isolation], np.int64)
        after = np.array([i.after_ns for i in c.isolation], np.int64)
        dr2 = -1.0 if c.dr_max is None else float(c.dr_max) ** 2
        cand = None if fresh or c.isolation else _candidates(cols, xyz, c.prompt, c.delayed, vp)
        if cand is not None:  # the same pairs, on the candidates only (mapped back below)
            ct, cx, cy, cz, cp, cd, cb = cand.cols
            iso = np.zeros((0, ct.size), np.bool_)
            common: tuple[np.ndarray, ...] = (ct, cx, cy, cz, seg_lo, seg_hi, cb)
            a, b = np.searchsorted(cand.idx, (lo, hi))
            masks = (cp, np.flatnonzero(cd[a:b]) + a)
        else:
            common = (t, *xyz, seg_lo, seg_hi, bits)
            masks = (cols[c.prompt], np.flatnonzero(cols[c.delayed][lo:hi]) + lo)
        mode = getattr(K, f"MODE_{c.mode.upper()}")
        args = (c.dt_min_ns, c.dt_max_ns, dr2, mode, iso, before, after)
        pairs = K.coincide(common, *masks, np.zeros(1, np.int64), args)
        o = c.offtime
        if o is not None:
            width = c.dt_max_ns - c.dt_min_ns
            step = width if o.step_ns is None else o.step_ns
            if step >= width:  # disjoint windows: one backward sweep per delayed
                offp = K.coincide_sweep(common, *masks, o.start_ns, step, o.n, args)
            else:
                offp = K.coincide(common, *masks, spec.shifts(), args)
        if cand is not None:
            pairs = (cand.idx[pairs[0]], cand.idx[pairs[1]], pairs[2])
            offp = (cand.idx[offp[0]], cand.idx[offp[1]], offp[2])
    on = _sorted_pairs(*pairs, off)[:2]
    offtime = _sorted_pairs(*offp, off)
    roles = {"prompt": on[0], "delayed": on[1], "off_prompt": offtime[0]}
    roles["off_delayed"] = offtime[1]
    columns, at_pairs = _since(cols, spec, segments, lo, hi, {r: i - off for r, i in roles.items()})
    partial = PartialResult(
        part,
        *on,
        *offtime,
        bits[lo:hi] if fresh or not bits.flags.writeable else bits[lo:hi].copy(),
        columns,
        vp.union if fresh or not vp.union.flags.writeable else vp.union.copy(),
        vp.veto_ns,
        vp.muon_veto_ns,
    )
    partial.pair_columns = at_pairs
    if vp.mc is not None:
        partial.mc_live, partial.mc_pass, by = vp.mc
        partial.mc_pass_by_veto = dict(by)
    return partial


def _since(
    cols: Mapping[str, np.ndarray],
    spec: Spec,
    segments: I64,
    lo: int,
    hi: int,
    rows: dict[str, I64],
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The ``since`` columns: per core event ``[lo, hi)`` for ``at="events"``, and at the
    pairs' ``rows`` (slice indices by role) for ``at="pairs"``. :func:`merge` takes the
    per-event ones at the pairs."""
    columns: dict[str, np.ndarray] = {}
    at_pairs: dict[str, np.ndarray] = {}
    if not spec.since:
        return columns, at_pairs
    t = cols["t"]
    seg_lo, seg_hi = segments[:, 0].copy(), segments[:, 1].copy()
    xyz = [cols[a] for a in ("x", "y", "z")]
    nan = np.broadcast_to(np.float32(np.nan), t.shape)  # untracked: no copy of n NaNs
    trk = [cols.get(a, nan) for a in TRACK_COLUMNS]
    for s in spec.since:
        ev = (t, *xyz, seg_lo, seg_hi, cols[s.mask], *trk, s.horizon_ns)
        if s.at == "events":
            columns[s.name], columns[s.name + "_dist"] = K.since_last(*ev, lo, hi)
            continue
        got = {role: K.since_at(*ev, idx) for role, idx in rows.items()}
        for k, suffix in enumerate(("", "_dist")):
            for role, values in got.items():
                at_pairs[f"{role}_{s.name}{suffix}"] = values[k]
    return columns, at_pairs


def _mc(
    cols: Mapping[str, np.ndarray],
    geo: dict[str, tuple[I64, list[np.ndarray]]],
    samples: tuple[np.ndarray, ...],
    union: I64,
    vol: list,
) -> tuple[int, int, dict[str, int]]:
    st, sx, sy, sz = samples
    k = np.searchsorted(union[:, 0], st, side="right") - 1
    dead = (k >= 0) & (st < union[np.maximum(k, 0), 1]) if len(union) else np.zeros(st.size, bool)
    live = ~dead
    lt, lx, ly, lz = st[live], sx[live], sy[live], sz[live]
    qidx = np.full(lt.size, -1, np.int64)
    any_hit = np.zeros(lt.size, np.bool_)
    by_veto: dict[str, int] = {}
    t = cols["t"]
    for _, v in vol:
        idx, g = geo[v.name]
        hit = K.volume_veto(
            lt,
            lx,
            ly,
            lz,
            qidx,
            t[idx],
            idx,
            *g[:6],
            v.window_ns,
            v.radius**2,
            v.kind == "cylinder",
        )
        by_veto[v.name] = int(lt.size - hit.sum())
        any_hit |= hit
    return int(lt.size), int(lt.size - any_hit.sum()), by_veto


def _sorted_pairs(p: I64, d: I64, k: I64, off: int) -> tuple[I64, I64, I64]:
    if p.size > 1:
        order = np.lexsort((p, k, d))
        p, d, k = p[order], d[order], k[order]
    return p + off, d + off, k


def run_partitions(
    cols: Mapping[str, np.ndarray],
    parts: list[Partition],
    spec: Spec,
    segments: I64,
    *,
    threads: int = 1,
    memo: VetoMemo | None = None,
    on_partition: Callable[[int, int], None] | None = None,
) -> list[PartialResult]:
    """Run every partition (on ``threads`` threads), with the volume-veto MC samples.
    ``on_partition(done, total)`` is called as partitions finish (progress reports).

    With a ``memo``, the MC samples are remembered and, when every column the vetoes
    read is read-only (as the column cache serves them), so is the veto phase of each
    partition for the next call with the same columns, vetoes and segments: a query
    changing only pair cuts skips it.
    """
    has_vol = any(v.kind != "detector" for v in spec.vetoes)
    samples = None
    if has_vol:
        samples = (
            memo.samples(segments, spec) if memo is not None else _fresh_samples(segments, spec)
        )
    phases = memo.phases(cols, spec, segments) if memo is not None and spec.vetoes else None

    def one(p: Partition) -> PartialResult:
        sl = {name: a[p.halo_start : p.halo_stop] for name, a in cols.items()}
        sub = samples_between(samples, p.t_lo, p.t_hi)
        if phases is None:
            return run_partition(sl, p, spec, segments, sub)
        vp = phases.get(p)
        if vp is None:
            vp = run_vetoes(sl, p, spec, segments, sub)
            if not _frozen(vp.union):  # a view of the kernel's larger buffer: own it
                vp.union = vp.union.copy()
            vp.bits.setflags(write=False)  # shared with results: no copy per query
            vp.union.setflags(write=False)
            if len(phases) >= VetoMemo.max_partitions:  # many plans: bounded memory
                phases.clear()
            phases[p] = vp
        return run_partition(sl, p, spec, segments, sub, vp)

    def done(i: int, r: PartialResult) -> PartialResult:
        if on_partition is not None:
            on_partition(i + 1, len(parts))
        return r

    if on_partition is not None:
        on_partition(0, len(parts))
    if threads <= 1 or len(parts) == 1:
        return [done(i, one(p)) for i, p in enumerate(parts)]
    with ThreadPoolExecutor(max_workers=threads) as pool:
        return [done(i, r) for i, r in enumerate(pool.map(one, parts))]


def _fresh_samples(segments: I64, spec: Spec) -> tuple[np.ndarray, ...]:
    return mc_samples(segments, spec.mc_samples, spec.fiducial_radius, spec.mc_seed)


def merge(
    partials: Sequence[PartialResult],
    spec: Spec,
    segments: I64,
    *,
    bad: npt.ArrayLike | None = None,
    threads: int = 1,
    memo: VetoMemo | None = None,
) -> Result:
    """Combine partial results (in partition order) into one :class:`Result`.

    ``threads`` share the copies of the per-event arrays (identical result). With a
    ``memo``, the merged veto bits and veto intervals of partitions that reused their
    veto phases are remembered (read-only), not copied again.
    """

    def cat(arrays: list[np.ndarray]) -> np.ndarray:
        return concat(arrays, threads)

    def col(attr: str) -> np.ndarray:
        if len(partials) == 1:
            return getattr(partials[0], attr)
        return cat([getattr(p, attr) for p in partials])

    def veto_bits() -> np.ndarray:
        pieces = [p.veto_bits for p in partials]
        if len(pieces) == 1 or memo is None:
            return col("veto_bits")
        return memo.joined(pieces, lambda: cat(pieces))

    iv = partials[0].veto_intervals
    if len(partials) > 1:  # join pieces cut at partition boundaries (already in order)
        pieces = [p.veto_intervals for p in partials]

        def join() -> np.ndarray:
            return join_intervals(pieces, lambda a: K.union2(a, np.empty((0, 2), np.int64))[0])

        iv = join() if memo is None else memo.joined(pieces, join)
    bad_iv = normalize_intervals(bad if bad is not None else [], what="bad")
    span_ns, gap_ns, bad_ns = gap_exposure(segments, bad_iv)
    veto_ns = sum(p.veto_ns for p in partials)
    good_ns = intervals_measure(segments)
    exp = Exposure(
        span_ns=span_ns,
        good_ns=good_ns,
        gap_ns=gap_ns,
        bad_ns=bad_ns,
        veto_ns=veto_ns,
        gap_veto_ns=veto_ns - sum(p.muon_veto_ns for p in partials),
        livetime_ns=good_ns - veto_ns,
        n_segments=len(segments),
    )
    vol = [v.name for v in spec.vetoes if v.kind != "detector"]
    if vol:
        exp.mc_samples = spec.mc_samples if good_ns else 0
        exp.mc_live = sum(p.mc_live for p in partials)
        exp.mc_pass = sum(p.mc_pass for p in partials)
        exp.mc_pass_by_veto = {n: sum(p.mc_pass_by_veto.get(n, 0) for p in partials) for n in vol}
    columns = {
        name: cat([p.columns[name] for p in partials]) if len(partials) > 1 else c
        for name, c in partials[0].columns.items()
    }

    shifts = spec.shifts()
    off_w = col("off_window")
    idx = {role: col(role) for role in ("prompt", "delayed", "off_prompt", "off_delayed")}
    at_pairs: dict[str, np.ndarray] = {}
    for s in spec.since:
        for suffix in ("", "_dist"):
            for role, rows in idx.items():
                key = f"{role}_{s.name}{suffix}"
                if s.at == "events":
                    at_pairs[key] = columns[s.name + suffix][rows]
                else:
                    at_pairs[key] = cat([p.pair_columns[key] for p in partials])
    return Result(
        spec=spec,
        prompt=idx["prompt"],
        delayed=idx["delayed"],
        veto_bits=veto_bits(),
        veto_intervals=iv,
        exposure=exp,
        columns=columns,
        pair_columns=at_pairs,
        off_prompt=idx["off_prompt"],
        off_delayed=idx["off_delayed"],
        off_window=off_w,
        accidentals=Accidentals(int(off_w.size), int(shifts.size)) if shifts.size else None,
    )
