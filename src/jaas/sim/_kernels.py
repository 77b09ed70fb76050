"""Numba kernels of the index-mode simulation (``nogil``: they run beside the writers).

The kernels draw from the numpy ``Generator`` they are given, in the same order and with
the same methods as the vectorised numpy code they replace (numba's Generator methods
give numpy's numbers, about 3x faster per draw), and do the arithmetic in float64 with
the same operations in the same order (no fastmath). So the output is what the numpy
expressions gave, draw for draw.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["index_response"]


@njit(cache=True, nogil=True)
def index_response(
    rng,
    e_true,
    x,
    y,
    z,
    is_mu,
    showering,
    track_in,
    untracked_fraction,
    res_a2,
    res_b2,
    res_c,
    vertex_res_1mev,
    track_res,
    light_yield,
):
    """Smear energies, vertices and tracked muons' track points (see ``index_columns``).

    Draws: n normals (energy), n each for x, y and z, n uniforms (a showering muon's
    track is lost below ``untracked_fraction``), then per track column (``track_in``,
    the 6 float32 columns) one normal per tracked row.

    Returns:
        (energy, x, y, z, r, pe, tracked, track): float32 arrays, a bool array and a
        (6, n) float32 array (NaN where not tracked).
    """
    n = len(e_true)
    energy = np.empty(n, np.float32)
    pe = np.empty(n, np.float32)
    sigma = np.empty(n)
    for i in range(n):
        e = np.float64(e_true[i])
        rel = np.sqrt(res_a2 / e + res_b2 + (res_c / e) ** 2) if e > 0 else 0.0
        en = e * (1 + rel * rng.standard_normal())
        if en < 0.0:
            en = 0.0
        energy[i] = en
        pe[i] = en * light_yield
        sigma[i] = vertex_res_1mev / np.sqrt(max(e, 0.1))
    vx = np.empty(n)
    vy = np.empty(n)
    vz = np.empty(n)
    for i in range(n):
        vx[i] = np.float64(x[i]) + sigma[i] * rng.standard_normal()
    for i in range(n):
        vy[i] = np.float64(y[i]) + sigma[i] * rng.standard_normal()
    r = np.empty(n, np.float32)
    for i in range(n):
        vz[i] = np.float64(z[i]) + sigma[i] * rng.standard_normal()
        r[i] = np.sqrt(vx[i] ** 2 + vy[i] ** 2 + vz[i] ** 2)
    tracked = np.empty(n, np.bool_)
    for i in range(n):
        u = rng.random()  # drawn for every row
        tracked[i] = is_mu[i] and not (showering[i] and u < untracked_fraction)
    track = np.full((6, n), np.nan, np.float32)
    for c in range(6):
        col = track_in[c]
        for i in range(n):
            if tracked[i]:
                track[c, i] = np.float64(col[i]) + track_res * rng.standard_normal()
    f32 = np.float32
    return energy, vx.astype(f32), vy.astype(f32), vz.astype(f32), r, pe, tracked, track


@njit(cache=True, nogil=True, inline="always")
def _sample(rng, inverse, cells):
    """One draw of a tabulated inverse CDF (``TabulatedSpectrum.sample``)."""
    x = rng.random() * cells
    cell = int(x)
    x -= cell
    lo = inverse[cell]
    return (inverse[cell + 1] - lo) * x + lo


@njit(cache=True, nogil=True)
def _on_shell(rng, r, x, y, z, rows):
    """Directions uniform on the sphere for radii ``r``, written at ``rows``."""
    n = len(r)
    cos_t = np.empty(n)
    for i in range(n):
        cos_t[i] = 2 * rng.random() - 1
    for i in range(n):
        sin_t = np.sqrt(1 - cos_t[i] ** 2)
        phi = 2 * np.pi * rng.random()
        k = rows[i]
        x[k] = r[i] * sin_t * np.cos(phi)
        y[k] = r[i] * sin_t * np.sin(phi)
        z[k] = r[i] * cos_t[i]


@njit(cache=True, nogil=True)
def singles(rng, n, ext_fraction, internal, external, cells, radius, ext_len):
    """Energies and vertices of ``n`` singles (``sources.singles`` after the times)."""
    ext = np.empty(n, np.bool_)
    for i in range(n):
        ext[i] = rng.random() < ext_fraction
    rows_int = np.flatnonzero(~ext)
    rows_ext = np.flatnonzero(ext)
    energy = np.empty(n, np.float32)
    for k in rows_int:
        energy[k] = _sample(rng, internal, cells)
    for k in rows_ext:
        energy[k] = _sample(rng, external, cells)
    x = np.empty(n, np.float32)
    y = np.empty(n, np.float32)
    z = np.empty(n, np.float32)
    r = np.empty(len(rows_int))
    for i in range(len(r)):
        r[i] = radius * np.cbrt(rng.random())
    _on_shell(rng, r, x, y, z, rows_int)
    r = np.empty(len(rows_ext))
    for i in range(len(r)):
        r[i] = radius - np.mod(rng.exponential(ext_len), radius)
    _on_shell(rng, r, x, y, z, rows_ext)
    return energy, x, y, z


@njit(cache=True, nogil=True)
def muons(rng, n, radius, dedx, showering_fraction, log_lo, log_hi):
    """Track, energy and showering flag of ``n`` muons (``sources.muon`` after the times).

    Returns (mid, entry, exit, energy, showering): three (3, n) float32 arrays of points,
    float32 energies and a bool array.
    """
    cos_t = np.empty(n)
    for i in range(n):
        cos_t[i] = np.cbrt(rng.random())  # pdf ~ cos^2 on [0, 1]
    phi = np.empty(n)
    for i in range(n):
        phi[i] = 2 * np.pi * rng.random()
    b = np.empty(n)
    for i in range(n):
        b[i] = radius * np.sqrt(rng.random())
    alpha = np.empty(n)
    for i in range(n):
        alpha[i] = 2 * np.pi * rng.random()
    moyal = np.empty(n)
    for i in range(n):  # Landau-like fluctuation: Moyal variate -ln(Z^2), truncated
        moyal[i] = min(-np.log(rng.standard_normal() ** 2 + 1e-300), 15.0)
    showering = np.empty(n, np.bool_)
    for i in range(n):
        showering[i] = rng.random() < showering_fraction
    mid = np.empty((3, n), np.float32)
    entry = np.empty((3, n), np.float32)
    exit_ = np.empty((3, n), np.float32)
    energy = np.empty(n, np.float32)
    for i in range(n):
        extra = np.exp(log_lo + (log_hi - log_lo) * rng.random())
        c, cos_p, sin_p = cos_t[i], np.cos(phi[i]), np.sin(phi[i])
        s = np.sqrt(1 - c**2)
        d0, d1, d2 = s * cos_p, s * sin_p, -c  # direction (downward)
        e0, e1, e2 = c * cos_p, c * sin_p, s  # d x (-sin phi, cos phi, 0)
        u, v = b[i] * np.cos(alpha[i]), b[i] * np.sin(alpha[i])
        m0, m1, m2 = v * e0 - u * sin_p, u * cos_p + v * e1, v * e2
        half = np.sqrt(max(radius**2 - b[i] ** 2, 0.0))
        mid[0, i], mid[1, i], mid[2, i] = m0, m1, m2
        entry[0, i], entry[1, i], entry[2, i] = m0 - half * d0, m1 - half * d1, m2 - half * d2
        exit_[0, i], exit_[1, i], exit_[2, i] = m0 + half * d0, m1 + half * d1, m2 + half * d2
        e = dedx * 2 * half * max(1 + 0.04 * moyal[i], 0.5)
        energy[i] = e + extra if showering[i] else e
    return mid, entry, exit_, energy, showering
