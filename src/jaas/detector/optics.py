"""Optics of the detector: PMT layout on the sphere, light weights, single-PE time CDFs.

Shared by simulation and reconstruction (pure numpy/scipy, no random numbers)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy.special import log_ndtr, ndtr

__all__ = [
    "C_LIGHT_M_PER_NS",
    "first_pe_cdf",
    "geometry",
    "invertible",
    "pmt_positions",
]

C_LIGHT_M_PER_NS = 0.299792458  # speed of light in vacuum, m/ns

_GOLDEN = (1.0 + 5.0**0.5) / 2.0


def pmt_positions(n_pmt: int, radius: float = 19.434) -> npt.NDArray[np.float64]:
    """Place ``n_pmt`` PMTs evenly on a sphere with a Fibonacci lattice (deterministic).

    Args:
        n_pmt: number of PMTs (>= 1).
        radius: sphere radius in m (default: 19.434 m, junosw PMT sphere, physics.md tag V).

    Returns:
        (n_pmt, 3) float64 positions in m; PMT ``i`` has id ``i``.

    Example:
        >>> pmt_positions(4).shape
        (4, 3)
    """
    i = np.arange(n_pmt, dtype=np.float64)
    z = 1.0 - (2.0 * i + 1.0) / n_pmt
    rho = np.sqrt(np.clip(1.0 - z * z, 0.0, None))
    phi = 2.0 * np.pi * ((i / _GOLDEN) % 1.0)
    return radius * np.stack([rho * np.cos(phi), rho * np.sin(phi), z], axis=1)


def geometry(
    vertex: npt.NDArray[np.float64], pmt_pos: npt.NDArray[np.float64], radius: float
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Distances and incidence cosines from ``vertex`` (k, 3) to every PMT: two (k, n) arrays.

    PMTs sit on the sphere of ``radius`` facing its centre, so the cosine of the angle
    between the photon direction and the PMT axis is ``(R - v.p/R) / d``.
    """
    vp = vertex @ pmt_pos.T  # (k, n)
    v2 = np.einsum("ij,ij->i", vertex, vertex)[:, None]
    d2 = np.maximum(radius * radius + v2 - 2.0 * vp, 1e-12)
    d = np.sqrt(d2)
    cos = (radius - vp / radius) / d
    return d, cos


def _exgauss_cdf(t: npt.NDArray[np.float64], tau: float, sigma: float) -> npt.NDArray[np.float64]:
    """CDF of an exponential (mean ``tau``) convolved with a centred Gaussian (``sigma``)."""
    if tau <= 0.0:
        return np.asarray(ndtr(t / sigma), dtype=np.float64)
    # Phi(t/s) - exp(-t/tau + s^2/(2 tau^2)) Phi(t/s - s/tau), second term in log space
    log_tail = -t / tau + sigma * sigma / (2.0 * tau * tau) + log_ndtr(t / sigma - sigma / tau)
    return np.asarray(ndtr(t / sigma) - np.exp(log_tail), dtype=np.float64)


def first_pe_cdf(
    grid: npt.NDArray[np.float64],
    *,
    tau_fast: float,
    tau_slow: float,
    fast_fraction: float,
    rise_time: float,
    tts_sigma: float,
) -> npt.NDArray[np.float64]:
    """CDF of one photoelectron's delay: scintillation emission plus PMT transit-time spread.

    Emission is ``fast_fraction`` x Exp(tau_fast) + rest x Exp(tau_slow), each convolved
    with Exp(rise_time) when ``rise_time > 0``; the transit time is Gaussian(0, tts_sigma).
    """
    cdf = np.zeros_like(grid)
    for weight, tau in ((fast_fraction, tau_fast), (1.0 - fast_fraction, tau_slow)):
        if rise_time > 0.0:
            # Exp(tau) * Exp(rise): CDF = (tau F_tau - rise F_rise) / (tau - rise)
            part = (
                tau * _exgauss_cdf(grid, tau, tts_sigma)
                - rise_time * _exgauss_cdf(grid, rise_time, tts_sigma)
            ) / (tau - rise_time)
        else:
            part = _exgauss_cdf(grid, tau, tts_sigma)
        cdf += weight * part
    cdf = np.clip(cdf, 0.0, 1.0)
    return np.maximum.accumulate(cdf)


def invertible(
    grid: npt.NDArray[np.float64], cdf: npt.NDArray[np.float64]
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Keep the strictly increasing part of a tabulated CDF so that ``np.interp`` inverts it."""
    _, first = np.unique(cdf, return_index=True)
    return cdf[first], grid[first]
