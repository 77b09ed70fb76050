"""Point-like vertex fit: charge centroid seed, then a first-hit time likelihood (numba)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numba
import numpy as np
import numpy.typing as npt
from scipy.optimize import minimize

from jaas.detector import Detector

__all__ = ["FitResult", "TimeTables", "centroid_seed", "fit_vertex", "time_tables"]

F64 = npt.NDArray[np.float64]
_FLOOR = 1e-30  # pdf / survival floor before taking logs
_CENTROID_SCALE = 1.5  # charge centroid sits at ~r/1.5 for a sphere of inward-facing PMTs
_KEEP = (80.0, 220.0)  # ns before / after the residual peak: hits used in the time fit


@dataclass(frozen=True)
class TimeTables:
    """Tabulated single-PE delay model on a uniform grid, row 0 MCP-PMT, row 1 dynode.

    ``values[kind, i]`` holds (log pdf, its time derivative, log survival 1 - CDF, its
    derivative) at ``start + i * step`` (interleaved: one cache line per lookup); the
    first-PE pdf of a PMT with n PEs is ``n f S^(n-1)``.
    """

    start: float
    step: float
    values: F64


def time_tables(detector: Detector, step: float = 0.05, stop: float = 400.0) -> TimeTables:
    """Tabulate the detector's emission + TTS delay model for the time likelihood.

    Args:
        detector: the detector whose ``hit_time_cdf`` is inverted.
        step: grid step in ns.
        stop: last grid time in ns (the pdf is negligible after it).
    """
    curves = [detector.hit_time_cdf(dyn) for dyn in (False, True)]
    start = min(float(t[0]) for t, _ in curves)
    grid = np.arange(start, stop + step, step)
    rows = []
    for times, cdf in curves:
        c = np.interp(grid, times, cdf, left=0.0, right=1.0)
        pdf = np.gradient(c, step)
        logf = np.log(np.maximum(pdf, _FLOOR))
        logs = np.log(np.maximum(1.0 - c, _FLOOR))
        rows.append((logf, np.gradient(logf, step), logs, np.gradient(logs, step)))
    values = np.ascontiguousarray(np.stack([np.stack(r, axis=-1) for r in rows]))
    return TimeTables(start, step, values)


@numba.njit(cache=True, nogil=True, fastmath=True)
def _nll(
    par: F64,
    pos: F64,
    time: F64,
    npe: F64,
    lognpe: F64,
    kind: npt.NDArray[np.int64],
    start: float,
    step: float,
    table: F64,
    speed: float,
    dark_frac: float,
    dark_density: float,
) -> tuple[float, F64]:
    """Negative log likelihood of first-hit times and its gradient in (x, y, z, t0)."""
    x, y, z, t0 = par[0], par[1], par[2], par[3]
    size = table.shape[1]
    total = 0.0
    grad = np.zeros(4)
    noise = dark_frac * dark_density
    for i in range(time.shape[0]):
        dx, dy, dz = x - pos[i, 0], y - pos[i, 1], z - pos[i, 2]
        d = math.sqrt(dx * dx + dy * dy + dz * dz) + 1e-9
        res = time[i] - t0 - d / speed
        u = (res - start) / step
        if u <= 0.0:
            j, w = 0, 0.0
        elif u >= size - 1:
            j, w = size - 2, 1.0
        else:
            j = int(u)
            w = u - j
        k = kind[i]
        lf = table[k, j, 0] + w * (table[k, j + 1, 0] - table[k, j, 0])
        dlf = table[k, j, 1] + w * (table[k, j + 1, 1] - table[k, j, 1])
        ls = table[k, j, 2] + w * (table[k, j + 1, 2] - table[k, j, 2])
        dls = table[k, j, 3] + w * (table[k, j + 1, 3] - table[k, j, 3])
        n = npe[i]
        lfn = lognpe[i] + lf + (n - 1.0) * ls
        sig = (1.0 - dark_frac) * math.exp(max(lfn, -700.0))
        p = sig + noise
        total -= math.log(p)
        g = sig * (dlf + (n - 1.0) * dls) / p  # d log p / d res
        c = g / (d * speed)
        grad[0] += c * dx
        grad[1] += c * dy
        grad[2] += c * dz
        grad[3] += g
    return total, grad


@dataclass
class FitResult:
    """Outcome of one vertex fit: position (m), t0 (ns), converged flag, NLL."""

    vertex: F64
    t0: float
    converged: bool
    nll: float


def centroid_seed(pmt_pos: F64, charge: F64, radius_max: float) -> F64:
    """Charge-weighted centroid of the hit PMTs, scaled out towards the vertex, in the LS."""
    q = np.asarray(charge, dtype=np.float64)
    c = _CENTROID_SCALE * (q @ pmt_pos) / max(float(q.sum()), 1e-12)
    r = float(np.linalg.norm(c))
    return c * (radius_max / r) if r > radius_max else c


def fit_vertex(
    detector: Detector,
    tables: TimeTables,
    pmt: npt.NDArray[np.integer],
    charge: npt.ArrayLike,
    time: npt.ArrayLike,
    *,
    dark_hits: float,
    seed: F64 | None = None,
) -> FitResult:
    """Fit (x, y, z, t0) of one point-like event from its first-hit times.

    Args:
        detector: geometry, light speed and PMT types.
        tables: the delay model of ``time_tables(detector)``.
        pmt, charge, time: the event's hits (PMT id, PE, ns after the trigger time).
        dark_hits: expected number of dark-noise hits in the readout window.
        seed: start vertex; default the charge centroid.

    Example:
        >>> det = Detector(light_scale=0.2, pmt_scale=0.05)
        >>> ev = det.respond({"event_id": [0], "t": [0], "E_true": [5.0],
        ...                   "x": [3.0], "y": [0.0], "z": [0.0]}, rng=1)
        >>> fit = fit_vertex(det, time_tables(det), ev.pmt, ev.charge, ev.time,
        ...                  dark_hits=5.0)
        >>> fit.converged, bool(abs(fit.vertex[0] - 3.0) < 1.0)
        (True, True)
    """
    p = detector.params
    pmt_idx = np.asarray(pmt, dtype=np.int64)
    pos = np.ascontiguousarray(detector.pmt_pos[pmt_idx])
    q = np.asarray(charge, dtype=np.float64)
    t = np.ascontiguousarray(time, dtype=np.float64)
    v0 = centroid_seed(pos, q, p.ls_radius_m) if seed is None else np.asarray(seed, np.float64)
    # t0 seed: the densest 8 ns of first-hit time residuals at the seed vertex
    res0 = t - np.linalg.norm(pos - v0, axis=1) / detector.speed_m_per_ns
    edges = np.arange(float(res0.min()) - 4.0, float(res0.max()) + 8.0, 2.0)
    counts = np.convolve(np.histogram(res0, edges)[0], np.ones(4), mode="same")
    peak = float(edges[int(np.argmax(counts))])
    # keep the hits around the signal; the rest (dark noise) carries no vertex information
    keep = (res0 > peak - _KEEP[0]) & (res0 < peak + _KEEP[1])
    pos, t, q = pos[keep], t[keep], q[keep]
    npe = np.maximum(np.rint(q), 1.0)
    kind = detector.pmt_is_dynode[pmt_idx[keep]].astype(np.int64)
    width = _KEEP[0] + _KEEP[1]
    frac = float(np.clip(dark_hits * width / p.window_ns / max(len(t), 1), 1e-3, 0.95))
    args = (
        pos,
        t,
        npe,
        np.log(npe),
        kind,
        tables.start,
        tables.step,
        tables.values,
        detector.speed_m_per_ns,
        frac,
        1.0 / width,
    )
    candidates = peak + np.arange(-30.0, 8.0, 4.0)
    costs = [_nll(np.array([*v0, c]), *args)[0] for c in candidates]
    x0 = np.array([*v0, float(candidates[int(np.argmin(costs))])])
    bound = p.pmt_radius_m - 0.05
    # BFGS: no bounds needed (the fit stays well inside), and unlike L-BFGS-B it does not
    # call multi-threaded BLAS on a 4x4 problem (which stalls on a loaded machine)
    # t0 is fitted as c_n * t0 (m) so that all four parameters have the same scale
    scale = np.array([1.0, 1.0, 1.0, detector.speed_m_per_ns])

    def scaled(y: F64) -> tuple[float, F64]:
        f, g = _nll(y / scale, *args)
        return f, g / scale

    res = minimize(scaled, x0 * scale, jac=True, method="BFGS", options={"gtol": 0.1})
    if not res.success:  # line search gave up: restart once with a fresh Hessian
        res = minimize(scaled, res.x, jac=True, method="BFGS", options={"gtol": 0.1})
    x = np.asarray(res.x, dtype=np.float64) / scale
    v = x[:3]
    ok = bool(np.all(np.isfinite(x))) and float(np.linalg.norm(v)) < bound
    if ok and not res.success:  # line search gave up (interpolated tables): verify locally
        ok = _is_local_minimum(x, float(res.fun), args)
    return FitResult(vertex=v, t0=float(x[3]), converged=ok, nll=float(res.fun))


def _is_local_minimum(x: F64, fun: float, args: tuple[Any, ...]) -> bool:
    """True when no step of 1 cm / 0.05 ns along any axis lowers the NLL by > 0.05.

    A change of 0.5 in NLL is one standard deviation: 0.05 means the fit is within a small
    fraction of its statistical error of the minimum.
    """
    for axis, h in enumerate((0.01, 0.01, 0.01, 0.05)):
        for sign in (-1.0, 1.0):
            trial = x.copy()
            trial[axis] += sign * h
            if _nll(trial, *args)[0] < fun - 0.05:
                return False
    return True
