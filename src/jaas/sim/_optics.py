"""Simulation kernels of the detector response: first-PE sampling and muon light.

The geometry and optics shared with reconstruction live in :mod:`jaas.detector.optics`
(re-exported here for the simulator's convenience).
"""

from __future__ import annotations

import numba
import numpy as np
import numpy.typing as npt

from jaas.detector.optics import (
    C_LIGHT_M_PER_NS,
    first_pe_cdf,
    geometry,
    invertible,
    pmt_positions,
)

__all__ = [
    "C_LIGHT_M_PER_NS",
    "first_pe_cdf",
    "geometry",
    "invertible",
    "muon_light",
    "pmt_positions",
    "sample_first_pe",
]


def sample_first_pe(
    n_pe: npt.NDArray[np.int64],
    cdf: npt.NDArray[np.float64],
    grid: npt.NDArray[np.float64],
    rng: np.random.Generator,
) -> npt.NDArray[np.float64]:
    """Delay of the earliest of ``n_pe`` photoelectrons (n_pe >= 1), exactly, in O(1) each.

    The minimum of n uniforms is Beta(1, n) = 1 - (1 - U)^(1/n); mapping it through the
    inverse of the single-PE CDF (``cdf`` strictly increasing, tabulated at ``grid``)
    gives the first-PE time.
    """
    u = rng.random(n_pe.shape[0])
    umin = -np.expm1(np.log1p(-u) / n_pe)
    return np.interp(umin, cdf, grid)


@numba.njit(cache=True, fastmath=True, nogil=True)
def muon_light(
    points: npt.NDArray[np.float64],
    emit_time: npt.NDArray[np.float64],
    pmt_pos: npt.NDArray[np.float64],
    weight: npt.NDArray[np.float64],
    radius: float,
    att_length: float,
    speed: float,
    early: float,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Light of track segments on every PMT: (expected PEs, earliest arrival, early PEs).

    ``points`` (s, 3) emit at ``emit_time`` (s,); ``weight`` (n,) is the per-PMT
    normalisation (efficiency x PE per unit solid-angle weight x segment energy). Early
    PEs are those whose segment's light arrives within ``early`` ns of the earliest one.
    """
    n, s = pmt_pos.shape[0], points.shape[0]
    mu = np.zeros(n)
    first = np.empty(n)
    mu_early = np.zeros(n)
    w_s = np.empty(s)
    a_s = np.empty(s)
    for i in range(n):
        px, py, pz = pmt_pos[i, 0], pmt_pos[i, 1], pmt_pos[i, 2]
        amin = np.inf
        for j in range(s):
            dx, dy, dz = px - points[j, 0], py - points[j, 1], pz - points[j, 2]
            d2 = dx * dx + dy * dy + dz * dz
            d = np.sqrt(d2)
            cos = (dx * px + dy * py + dz * pz) / (radius * d)
            w_s[j] = cos / d2 * np.exp(-d / att_length)
            a_s[j] = emit_time[j] + d / speed
            amin = min(amin, a_s[j])
        total = 0.0
        near = 0.0
        for j in range(s):
            total += w_s[j]
            if a_s[j] <= amin + early:
                near += w_s[j]
        mu[i] = total * weight[i]
        mu_early[i] = near * weight[i]
        first[i] = amin
    return mu, first, mu_early
