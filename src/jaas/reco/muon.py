"""Muon track fit: entry and exit points on the LS sphere from first-hit times (Nelder-Mead)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.optimize import minimize

from jaas.detector import Detector
from jaas.detector.optics import C_LIGHT_M_PER_NS

__all__ = ["TrackResult", "fit_track", "predicted_times"]

F64 = npt.NDArray[np.float64]
_ROBUST_NS = 3.0  # scale of the Cauchy loss on time residuals (ns)
_SEED_FRACTION = 0.01  # earliest / brightest fraction of hits used for the seeds
_MIN_HITS = 20
_MAX_FIT_HITS = 1500  # dynode hits used by the track fit at most


@dataclass
class TrackResult:
    """A fitted muon track: entry and exit points (m), time offset (ns), convergence."""

    entry: F64
    exit: F64
    t0: float
    converged: bool
    rms_ns: float


def predicted_times(entry: F64, exit_: F64, pmt_pos: F64, speed: float) -> F64:
    """Earliest light arrival (ns after the muon enters) at each PMT from a track at c.

    The muon moves at c from ``entry`` to ``exit_``; light travels at ``speed``. Along the
    line the earliest light leaves where the track is seen at the Cherenkov-like angle
    cos(theta) = speed / c; the emission point is clamped to the track ends.
    """
    axis = exit_ - entry
    length = float(np.linalg.norm(axis))
    u = axis / max(length, 1e-9)
    rel = pmt_pos - entry
    along = rel @ u
    perp = np.sqrt(np.maximum(np.einsum("ij,ij->i", rel, rel) - along * along, 0.0))
    beta = speed / C_LIGHT_M_PER_NS
    s = np.clip(along - perp * beta / math.sqrt(1.0 - beta * beta), 0.0, length)
    return np.asarray(s / C_LIGHT_M_PER_NS + np.hypot(perp, along - s) / speed)


def _on_sphere(theta: float, phi: float, radius: float) -> F64:
    st = math.sin(theta)
    return radius * np.array([st * math.cos(phi), st * math.sin(phi), math.cos(theta)])


def _angles(v: F64) -> tuple[float, float]:
    r = float(np.linalg.norm(v))
    return math.acos(max(-1.0, min(1.0, float(v[2]) / max(r, 1e-12)))), math.atan2(v[1], v[0])


def fit_track(
    detector: Detector,
    pmt: npt.NDArray[np.integer],
    charge: npt.ArrayLike,
    time: npt.ArrayLike,
) -> TrackResult:
    """Fit a through-going muon's entry and exit points on the LS sphere.

    Seeds: entry at the earliest hits, exit at the brightest PMTs away from the entry
    (light is most intense where the track comes closest to the PMT sphere). The fit
    minimises a Cauchy loss of first-hit time residuals of the dynode PMTs (small TTS) with
    the track geometry of ``predicted_times`` and a free time offset.

    Args:
        detector: geometry and PMT types.
        pmt, charge, time: the event's hits.

    Example:
        >>> det = Detector(light_scale=0.1, pmt_scale=0.05)
        >>> ev = det.respond({"event_id": [0], "t": [0], "E_true": [7000.0], "x": [0.0],
        ...     "y": [0.0], "z": [0.0], "mx0": [0.0], "my0": [0.0], "mz0": [17.7],
        ...     "mx1": [0.0], "my1": [0.0], "mz1": [-17.7], "role": ["muon"]}, rng=1)
        >>> tr = fit_track(det, ev.pmt, ev.charge, ev.time)
        >>> tr.converged, bool(tr.entry[2] > 16 and tr.exit[2] < -16)
        (True, True)
    """
    p = detector.params
    radius = p.ls_radius_m
    idx = np.asarray(pmt, dtype=np.int64)
    q = np.asarray(charge, dtype=np.float64)
    t = np.asarray(time, dtype=np.float64)
    nan = np.full(3, np.nan)
    if len(idx) < _MIN_HITS:
        return TrackResult(nan, nan.copy(), math.nan, False, math.nan)
    pos = detector.pmt_pos[idx]
    k = max(5, int(_SEED_FRACTION * len(idx)))
    bright = q > np.quantile(q, 0.5)  # dark-noise hits are single PEs
    cand = np.flatnonzero(bright) if bright.sum() >= 2 * k else np.arange(len(idx))
    early = cand[np.argsort(t[cand])[:k]]
    entry_dir = pos[early].mean(axis=0)
    entry_dir /= max(float(np.linalg.norm(entry_dir)), 1e-12)
    away = np.flatnonzero(pos @ entry_dir < 0.8 * p.pmt_radius_m)  # > ~37 deg from entry
    if len(away) < k:
        away = np.arange(len(idx))
    top = away[np.argsort(q[away])[-k:]]
    exit_dir = (q[top] @ pos[top]) / q[top].sum()
    exit_dir /= max(float(np.linalg.norm(exit_dir)), 1e-12)

    dyn = detector.pmt_is_dynode[idx] & (q >= 2.0)
    use = dyn if dyn.sum() >= _MIN_HITS else q >= 0.0
    chosen = np.flatnonzero(use)
    if len(chosen) > _MAX_FIT_HITS:  # an even subsample: the fit cost scales with hits
        chosen = chosen[:: math.ceil(len(chosen) / _MAX_FIT_HITS)]
    pos_u, t_u = pos[chosen], t[chosen]
    speed = detector.speed_m_per_ns

    def cost(par: F64) -> float:
        a = _on_sphere(par[0], par[1], radius)
        b = _on_sphere(par[2], par[3], radius)
        res = (t_u - par[4] - predicted_times(a, b, pos_u, speed)) / _ROBUST_NS
        return float(np.log1p(res * res).sum())

    a0, b0 = entry_dir * radius, exit_dir * radius
    t_seed = float(np.median(t_u - predicted_times(a0, b0, pos_u, speed)))
    x0 = np.array([*_angles(a0), *_angles(b0), t_seed])
    best = None
    for start in (x0, np.array([*_angles(b0), *_angles(a0), t_seed])):
        res = minimize(
            cost,
            start,
            method="Nelder-Mead",
            options={"xatol": 1e-4, "fatol": 1e-3, "maxiter": 4000, "maxfev": 6000},
        )
        if best is None or res.fun < best.fun:
            best = res
    assert best is not None
    a = _on_sphere(best.x[0], best.x[1], radius)
    b = _on_sphere(best.x[2], best.x[3], radius)
    resid = t_u - best.x[4] - predicted_times(a, b, pos_u, speed)
    core = np.abs(resid) < 5 * _ROBUST_NS
    rms = float(np.sqrt(np.mean(resid[core] ** 2))) if core.any() else math.inf
    ok = bool(best.success) and bool(core.mean() > 0.5)
    return TrackResult(a, b, float(best.x[4]), ok, rms)
