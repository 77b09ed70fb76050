"""Numba kernels of the index-mode simulation (``nogil``: they run beside the writers).

The kernels draw from the numpy ``Generator`` they are given, in the same order and with
the same methods as the vectorised numpy code they replaced (jaas <= wave 5: numba's
Generator methods give numpy's numbers, about 3x faster per draw), and do the arithmetic
in float64 with the same operations in the same order (no fastmath). So the files are
those of that code, draw for draw. A kernel's loops run in the order of its draws: each
loop consumes one draw per row, all rows of one quantity before the next quantity.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = [
    "bipo_pairs",
    "ibd_pairs",
    "index_response",
    "li9he8_pairs",
    "muons",
    "per_muon",
    "singles",
    "spallation",
]


@njit(cache=True, nogil=True)
def index_response(
    rng,
    e_true,
    x,
    y,
    z,
    src,
    mu_src,
    wp_src,
    classes,
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
    """Smear energies, vertices and tracked muons' track points (``index_columns``).

    Draws: n normals (energy), n each for x, y and z, n uniforms (a showering muon's
    track is lost below ``untracked_fraction``), then per track column (``track_in``,
    the 6 float32 columns) one normal per tracked row.

    Returns:
        (energy, x, y, z, r, pe, cls, muon, tracked, track): float32 arrays, the class
        (``classes``: the codes of point-like, muon and water-pool-only events, chosen by
        ``src`` against the muon and water-pool-muon source codes), the muon tag, the
        tracked flag and a (6, n) float32 array (NaN where not tracked).
    """
    n = len(e_true)
    cls = np.empty(n, np.uint8)
    muon = np.empty(n, np.bool_)
    for i in range(n):
        is_mu, is_wp = src[i] == mu_src, src[i] == wp_src
        cls[i] = classes[1] if is_mu else (classes[2] if is_wp else classes[0])
        muon[i] = is_mu or is_wp
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
        tracked[i] = src[i] == mu_src and not (showering[i] and u < untracked_fraction)
    track = np.full((6, n), np.nan, np.float32)
    for c in range(6):
        col = track_in[c]
        for i in range(n):
            if tracked[i]:
                track[c, i] = np.float64(col[i]) + track_res * rng.standard_normal()
    f32 = np.float32
    vx32, vy32, vz32 = vx.astype(f32), vy.astype(f32), vz.astype(f32)
    return energy, vx32, vy32, vz32, r, pe, cls, muon, tracked, track


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
    """Energies and vertices of ``n`` singles (``sources.singles`` after the times).

    A single is external (a gamma near the edge, depth ~ exponential(``ext_len``)) below
    ``ext_fraction``, else internal (uniform); energies from the two tabulated spectra.
    """
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


@njit(cache=True, nogil=True)
def _reflect(x, y, z, radius):
    """Mirror points outside the sphere radially back inside (r -> 2R - r), in place."""
    for i in range(len(x)):
        r = np.sqrt(x[i] * x[i] + y[i] * y[i] + z[i] * z[i])
        if r > radius:
            f = min(max(2 * radius - r, 0.0), radius) / r
            x[i] *= f
            y[i] *= f
            z[i] *= f


@njit(cache=True, nogil=True)
def _ball(rng, n, radius, x, y, z):
    """``n`` points uniform in a ball of ``radius`` into x, y, z (float64)."""
    r = np.empty(n)
    for i in range(n):
        r[i] = radius * np.cbrt(rng.random())
    _on_shell(rng, r, x, y, z, np.arange(n))


@njit(cache=True, nogil=True)
def _smear(rng, src, sigma, dst):
    for i in range(len(src)):
        dst[i] = src[i] + rng.normal(0.0, sigma)


@njit(cache=True, nogil=True)
def _capture(rng, t, px, py, pz, sigma, tau_ns, c_fraction, e_c, e_h, radius, out, k):
    """Neutron captures after ``t`` near p, into rows k.. of ``out``.

    ``out`` is (t, energy, x, y, z) arrays; captures happen ``exponential(tau)`` + 1 ns
    later, on carbon below ``c_fraction``, displaced by ``normal(0, sigma)`` per
    coordinate and reflected into the sphere.
    """
    n = len(t)
    tt, energy, x, y, z = out
    for i in range(n):
        tt[k + i] = t[i] + np.int64(rng.exponential(tau_ns)) + 1
    for i in range(n):
        energy[k + i] = e_c if rng.random() < c_fraction else e_h
    _smear(rng, px, sigma, x[k : k + n])
    _smear(rng, py, sigma, y[k : k + n])
    _smear(rng, pz, sigma, z[k : k + n])
    _reflect(x[k : k + n], y[k : k + n], z[k : k + n], radius)


@njit(cache=True, nogil=True)
def _along(rng, c0, c1, u, sigma, dst):
    for i in range(len(c0)):
        a, b = np.float64(c0[i]), np.float64(c1[i])
        dst[i] = a + u[i] * (b - a) + rng.normal(0.0, sigma)


@njit(cache=True, nogil=True)
def _near_track(rng, track, sigma, radius, x, y, z):
    """Points uniform along each muon chord (``track``: mx0, my0, mz0, mx1, my1, mz1),
    Gaussian-spread by ``sigma``, reflected in."""
    n = len(x)
    u = np.empty(n)
    for i in range(n):
        u[i] = rng.random()
    _along(rng, track[0], track[3], u, sigma, x)
    _along(rng, track[1], track[4], u, sigma, y)
    _along(rng, track[2], track[5], u, sigma, z)
    _reflect(x, y, z, radius)


@njit(cache=True, nogil=True)
def _pair_out(n):
    """(t, energy, x, y, z) for 2n rows."""
    return (
        np.empty(2 * n, np.int64),
        np.empty(2 * n),
        np.empty(2 * n),
        np.empty(2 * n),
        np.empty(2 * n),
    )


@njit(cache=True, nogil=True)
def _first_rows(rng, t, inverse, cells, radius):
    """The 2n-row output of n pairs with the first n rows filled: times ``t``, energies
    from the tabulated spectrum, vertices uniform in the ball (drawn in that order)."""
    n = len(t)
    out = _pair_out(n)
    tt, energy, x, y, z = out
    tt[:n] = t
    for i in range(n):
        energy[i] = _sample(rng, inverse, cells)
    _ball(rng, n, radius, x[:n], y[:n], z[:n])
    return out


@njit(cache=True, nogil=True)
def ibd_pairs(rng, t, inverse, cells, radius, sigma, tau_ns, c_fraction, e_c, e_h):
    """Prompt rows 0..n-1 and delayed rows n..2n-1 of n IBD pairs (``sources._ibd``).

    Returns (t, energy, x, y, z) of the 2n rows (times int64, the rest float64).
    """
    n = len(t)
    out = _first_rows(rng, t, inverse, cells, radius)
    x, y, z = out[2], out[3], out[4]
    _capture(rng, t, x[:n], y[:n], z[:n], sigma, tau_ns, c_fraction, e_c, e_h, radius, out, n)
    return out


@njit(cache=True, nogil=True)
def bipo_pairs(rng, t, inverse, cells, radius, tau_ns, sigma, e_alpha):
    """Beta rows 0..n-1 and alpha rows n..2n-1 of n BiPo decays (``sources._bipo``)."""
    n = len(t)
    out = _first_rows(rng, t, inverse, cells, radius)
    tt, energy, x, y, z = out
    for i in range(n):
        tt[n + i] = t[i] + np.int64(rng.exponential(tau_ns)) + 1
    energy[n:] = e_alpha
    _smear(rng, x[:n], sigma, x[n:])
    _smear(rng, y[:n], sigma, y[n:])
    _smear(rng, z[:n], sigma, z[n:])
    _reflect(x[n:], y[n:], z[n:], radius)
    return out


@njit(cache=True, nogil=True)
def per_muon(rng, showering, mean, mean_sh):
    """Row of the parent muon of each follower: Poisson(mean or mean_sh) per muon."""
    counts = np.empty(len(showering), np.int64)
    for i in range(len(showering)):
        counts[i] = rng.poisson(mean_sh if showering[i] else mean)
    return np.repeat(np.arange(len(showering)), counts)


@njit(cache=True, nogil=True)
def spallation(rng, t, track, track_sigma, radius, tau_ns, c_fraction, e_c, e_h):
    """Captures of spallation neutrons of parents at t with ``track`` (6 columns).

    Returns (t, energy, x, y, z) of the n neutrons.
    """
    n = len(t)
    px, py, pz = np.empty(n), np.empty(n), np.empty(n)
    _near_track(rng, track, track_sigma, radius, px, py, pz)
    out = (np.empty(n, np.int64), np.empty(n), np.empty(n), np.empty(n), np.empty(n))
    _capture(rng, t, px, py, pz, 0.0, tau_ns, c_fraction, e_c, e_h, radius, out, 0)
    return out


@njit(cache=True, nogil=True)
def li9he8_pairs(rng, t_mu, track, he8_fraction, he8_tau_ns,
                 li9_tau_ns, inverse, cells, track_sigma, radius, sigma, tau_ns,
                 c_fraction, e_c, e_h):  # fmt: skip
    """Beta rows 0..n-1 and neutron-capture rows n..2n-1 of 9Li/8He decays after their
    parents (times t_mu, ``track`` the 6 track columns; ``sources.li9he8``)."""
    n = len(t_mu)
    he8 = np.empty(n, np.bool_)
    for i in range(n):
        he8[i] = rng.random() < he8_fraction
    out = _pair_out(n)
    tt, energy, x, y, z = out
    for i in range(n):
        tau = he8_tau_ns if he8[i] else li9_tau_ns
        tt[i] = t_mu[i] + np.int64(rng.exponential(tau)) + 1
    for i in range(n):
        energy[i] = _sample(rng, inverse, cells)
    _near_track(rng, track, track_sigma, radius, x[:n], y[:n], z[:n])
    _capture(rng, tt[:n], x[:n], y[:n], z[:n], sigma, tau_ns, c_fraction, e_c, e_h, radius,
             out, n)  # fmt: skip
    return out
