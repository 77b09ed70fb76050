"""Event sources: each draws the truth events whose primary falls in one time block.

A source is a function ``(block, rng, params, scale, muons) -> Events`` (``scale``: the
source's rate factor). Primaries are
Poisson in the block; correlated followers (delayed captures, 9Li decays, alphas) may fall
after the block end and are carried by the caller. Muon-induced sources draw per muon of
the same block, so their rates scale with both their own and the muon scale factor.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from jaas.sim import _kernels
from jaas.sim.params import PhysicsParams
from jaas.sim.spectra import (
    _INVERSE_CELLS,
    beta_spectrum,
    geo_prompt_spectrum,
    reactor_prompt_spectrum,
    singles_components,
)
from jaas.sim.truth import ROLES, SOURCES, Events

__all__ = ["GENERATORS", "Block", "expected_rate_hz"]

F64 = npt.NDArray[np.float64]
DAY = 86400.0
_R = {name: i for i, name in enumerate(ROLES)}
_S = {name: i for i, name in enumerate(SOURCES)}


@dataclass(frozen=True)
class Block:
    """One seed block: index, start time (ns) and length (ns)."""

    index: int
    t0: int
    length: int

    def uid(self, src: str, role: str, n: int) -> npt.NDArray[np.int64]:
        """Run-unique ids ``((index*16 + src)*8 + role) << 32 | k`` for k < n."""
        base = ((self.index * 16 + _S[src]) * 8 + _R[role]) << 32
        return base + np.arange(n, dtype=np.int64)

    def times(self, rng: np.random.Generator, n: int) -> npt.NDArray[np.int64]:
        """``n`` uniform times in the block, sorted (the chunk sort then only merges runs)."""
        u = rng.random(n)
        u.sort()
        return self.t0 + (u * self.length).astype(np.int64)


def expected_rate_hz(source: str, p: PhysicsParams, scale: Callable[[str], float]) -> float:
    """Expected trigger-group rate (Hz) of ``source``: pairs count once, spall_n per neutron."""
    mu = p.muon_hz * scale("muon")
    f = p.showering_fraction
    base = {
        "reactor_ibd": p.reactor_ibd_per_day / DAY,
        "geo_ibd": p.geo_ibd_per_day / DAY,
        "singles": p.singles_hz,
        "muon": p.muon_hz,
        "muon_wp": p.muon_wp_hz,
        "bipo214": p.bipo214_hz,
        "bipo212": p.bipo212_hz,
        "spall_n": mu * ((1 - f) * p.spall_n_mean + f * p.spall_n_mean_showering),
        "li9he8": p.li9he8_per_day / DAY * scale("muon"),
    }[source]
    return base * scale(source)


# --- geometry -------------------------------------------------------------------------


def uniform_ball(rng: np.random.Generator, n: int, radius: float) -> tuple[F64, F64, F64]:
    """Points uniform in a ball of ``radius``."""
    r = radius * np.cbrt(rng.random(n))
    return _on_shell(rng, r)


def _on_shell(rng: np.random.Generator, r: F64) -> tuple[F64, F64, F64]:
    n = len(r)
    cos_t = 2 * rng.random(n) - 1
    sin_t = np.sqrt(1 - cos_t**2)
    phi = 2 * np.pi * rng.random(n)
    return r * sin_t * np.cos(phi), r * sin_t * np.sin(phi), r * cos_t


def near_edge(rng: np.random.Generator, n: int, radius: float, length: float) -> tuple[F64, ...]:
    """Points with depth below the sphere surface ~ exponential(``length``) (external gammas)."""
    depth = np.mod(rng.exponential(length, n), radius)
    return _on_shell(rng, radius - depth)


def reflect_inside(x: F64, y: F64, z: F64, radius: float) -> tuple[F64, F64, F64]:
    """Mirror points outside the sphere radially back inside (r -> 2R - r)."""
    r = np.sqrt(x * x + y * y + z * z)
    out = r > radius
    if np.any(out):
        f = np.ones_like(r)
        f[out] = np.clip(2 * radius - r[out], 0.0, radius) / r[out]
        x, y, z = x * f, y * f, z * f
    return x, y, z


def _capture(
    rng: np.random.Generator,
    t: npt.NDArray[np.int64],
    pos: tuple[F64, F64, F64],
    sigma: float,
    p: PhysicsParams,
) -> tuple[npt.NDArray[np.int64], F64, tuple[F64, F64, F64]]:
    """Neutron capture after ``t`` near ``pos``: time, energy (H or C), vertex."""
    n = len(t)
    dt = rng.exponential(p.capture_tau_us * 1e3, n).astype(np.int64) + 1
    energy = np.where(rng.random(n) < p.capture_c_fraction, p.e_capture_c, p.e_capture_h)
    x, y, z = (c + rng.normal(0.0, sigma, n) for c in pos)
    return t + dt, energy, reflect_inside(x, y, z, p.R_ls)


# --- sources ------------------------------------------------------------------------


def _ibd(
    src: str, spectrum_of: Callable[[PhysicsParams], object], base_rate: Callable[..., float]
) -> Callable[..., Events]:
    def generate(
        block: Block, rng: np.random.Generator, p: PhysicsParams, scale: float, muons: Events
    ) -> Events:
        n = rng.poisson(base_rate(p) * scale * block.length * 1e-9)
        if n == 0:  # most blocks of the rare sources: nothing more is drawn either way
            return Events.empty()
        t = block.times(rng, n)
        spectrum = spectrum_of(p)
        e_prompt = spectrum.sample(rng, n)  # type: ignore[attr-defined]
        pos = uniform_ball(rng, n, p.R_ls)
        td, e_del, pos_d = _capture(rng, t, pos, p.neutron_sigma_m, p)
        uid = block.uid(src, "prompt", n)
        prompt = Events.make(
            n,
            t=t,
            uid=uid,
            src=_S[src],
            role=_R["prompt"],
            corr_id=uid,
            E_true=e_prompt,
            x=pos[0],
            y=pos[1],
            z=pos[2],
        )
        delayed = Events.make(n, t=td, uid=block.uid(src, "delayed", n), src=_S[src],
                              role=_R["delayed"], corr_id=uid, E_true=e_del,
                              x=pos_d[0], y=pos_d[1], z=pos_d[2])  # fmt: skip
        return Events.concat([prompt, delayed])

    return generate


def singles(
    block: Block, rng: np.random.Generator, p: PhysicsParams, scale: float, muons: Events
) -> Events:
    """Radioactivity: internal (uniform) + external gammas (near the edge, most of 208Tl)."""
    n = rng.poisson(p.singles_hz * scale * block.length * 1e-9)
    t = block.times(rng, n)  # numpy's sort is much faster than numba's
    internal_spec, external_spec = singles_components(p.singles_threshold)
    energy, x, y, z = _kernels.singles(
        rng, n, p.singles_external_fraction, internal_spec.inverse,
        external_spec.inverse, _INVERSE_CELLS, p.R_ls, p.external_length_m,
    )  # fmt: skip
    return Events.make(n, t=t, uid=block.uid("singles", "single", n), src=_S["singles"],
                       role=_R["single"], E_true=energy, x=x, y=y, z=z)  # fmt: skip


def muon(
    block: Block, rng: np.random.Generator, p: PhysicsParams, scale: float, muons: Events
) -> Events:
    """Muons crossing the LS sphere: cos^2(zenith) from above, uniform impact parameter."""
    n = rng.poisson(p.muon_hz * scale * block.length * 1e-9)
    t = block.times(rng, n)
    lo, hi = np.log(p.showering_extra_gev[0] * 1e3), np.log(p.showering_extra_gev[1] * 1e3)
    mid, entry, exit_, energy, showering = _kernels.muons(
        rng, n, p.R_ls, p.muon_dedx_mev_per_m, p.showering_fraction, lo, hi
    )
    uid = block.uid("muon", "muon", n)
    return Events.make(
        n, t=t, uid=uid, src=_S["muon"], role=_R["muon"], corr_id=uid, E_true=energy,
        x=mid[0], y=mid[1], z=mid[2], mx0=entry[0], my0=entry[1], mz0=entry[2],
        mx1=exit_[0], my1=exit_[1], mz1=exit_[2], showering=showering, wp=True,
    )  # fmt: skip


def muon_wp(
    block: Block, rng: np.random.Generator, p: PhysicsParams, scale: float, muons: Events
) -> Events:
    """Muons clipping the water pool only: no CD deposit, water-pool tag."""
    n = rng.poisson(p.muon_wp_hz * scale * block.length * 1e-9)
    t = block.times(rng, n)
    return Events.make(n, t=t, uid=block.uid("muon_wp", "muon", n), src=_S["muon_wp"],
                       role=_R["muon"], E_true=0.0, x=np.nan, y=np.nan, z=np.nan,
                       wp=True)  # fmt: skip


def _near_track(
    rng: np.random.Generator, mu: Events, sigma: float, p: PhysicsParams
) -> tuple[F64, F64, F64]:
    """Points uniform along each muon's chord, Gaussian-spread by ``sigma`` around it."""
    u = rng.random(len(mu))
    pts = []
    for a, b in (("mx0", "mx1"), ("my0", "my1"), ("mz0", "mz1")):
        c0, c1 = mu[a].astype(np.float64), mu[b].astype(np.float64)
        pts.append(c0 + u * (c1 - c0) + rng.normal(0.0, sigma, len(mu)))
    return reflect_inside(pts[0], pts[1], pts[2], p.R_ls)


def _per_muon(rng: np.random.Generator, muons: Events, mean: float, mean_sh: float) -> Events:
    lam = np.where(muons["showering"], mean_sh, mean)
    counts = rng.poisson(lam)
    return muons.take(np.repeat(np.arange(len(muons)), counts))


def spall_n(
    block: Block, rng: np.random.Generator, p: PhysicsParams, scale: float, muons: Events
) -> Events:
    """Spallation neutrons: Poisson per muon (many after showering muons), near the track."""
    parents = _per_muon(rng, muons, p.spall_n_mean * scale, p.spall_n_mean_showering * scale)
    n = len(parents)
    if n == 0:
        return Events.empty()
    pos = _near_track(rng, parents, p.spall_sigma_m, p)
    t, energy, (x, y, z) = _capture(rng, parents["t"], pos, 0.0, p)
    return Events.make(n, t=t, uid=block.uid("spall_n", "neutron", n), src=_S["spall_n"],
                       role=_R["neutron"], corr_id=parents["corr_id"], E_true=energy,
                       x=x, y=y, z=z)  # fmt: skip


def li9he8(
    block: Block, rng: np.random.Generator, p: PhysicsParams, scale: float, muons: Events
) -> Events:
    """9Li/8He beta-n decays after muons (mostly showering): beta prompt + neutron capture."""
    share, f = p.li9he8_showering_share, p.showering_fraction
    per_mu = p.li9he8_per_day / DAY / p.muon_hz * scale if p.muon_hz > 0 else 0.0
    mean_sh = per_mu * share / f if f > 0 else 0.0
    mean = per_mu * (1 - share) / (1 - f) if f < 1 else 0.0
    parents = _per_muon(rng, muons, mean, mean_sh)
    n = len(parents)
    if n == 0:
        return Events.empty()
    he8 = rng.random(n) < p.he8_fraction
    tau = np.where(he8, p.he8_tau_ms, p.li9_tau_ms) * 1e6
    t = parents["t"] + rng.exponential(tau).astype(np.int64) + 1
    e_prompt = beta_spectrum(p.li9_q_vis, p.trigger_threshold).sample(rng, n)
    pos = _near_track(rng, parents, p.spall_sigma_m, p)
    td, e_del, pos_d = _capture(rng, t, pos, p.neutron_sigma_m, p)
    corr = parents["corr_id"]
    prompt = Events.make(n, t=t, uid=block.uid("li9he8", "prompt", n), src=_S["li9he8"],
                         role=_R["prompt"], corr_id=corr, E_true=e_prompt,
                         x=pos[0], y=pos[1], z=pos[2])  # fmt: skip
    delayed = Events.make(n, t=td, uid=block.uid("li9he8", "delayed", n), src=_S["li9he8"],
                          role=_R["delayed"], corr_id=corr, E_true=e_del,
                          x=pos_d[0], y=pos_d[1], z=pos_d[2])  # fmt: skip
    return Events.concat([prompt, delayed])


def _bipo(
    src: str, q: str, half_life_ns: Callable[[PhysicsParams], float], alpha: str
) -> Callable[..., Events]:
    def generate(
        block: Block, rng: np.random.Generator, p: PhysicsParams, scale: float, muons: Events
    ) -> Events:
        n = rng.poisson(getattr(p, f"{src}_hz") * scale * block.length * 1e-9)
        if n == 0:
            return Events.empty()
        t = block.times(rng, n)
        e_beta = beta_spectrum(getattr(p, q), p.trigger_threshold).sample(rng, n)
        x, y, z = uniform_ball(rng, n, p.R_ls)
        tau = half_life_ns(p) / np.log(2)
        ta = t + rng.exponential(tau, n).astype(np.int64) + 1
        xa, ya, za = (c + rng.normal(0.0, p.bipo_sigma_m, n) for c in (x, y, z))
        xa, ya, za = reflect_inside(xa, ya, za, p.R_ls)
        uid = block.uid(src, "beta", n)
        beta = Events.make(n, t=t, uid=uid, src=_S[src], role=_R["beta"], corr_id=uid,
                           E_true=e_beta, x=x, y=y, z=z)  # fmt: skip
        alp = Events.make(n, t=ta, uid=block.uid(src, "alpha", n), src=_S[src],
                          role=_R["alpha"], corr_id=uid, E_true=getattr(p, alpha),
                          x=xa, y=ya, z=za)  # fmt: skip
        return Events.concat([beta, alp])

    return generate


Generator = Callable[[Block, np.random.Generator, PhysicsParams, float, Events], Events]

# Order matters only in that muon-induced sources need the block's muons first.
GENERATORS: dict[str, Generator] = {
    "muon": muon,
    "muon_wp": muon_wp,
    "spall_n": spall_n,
    "li9he8": li9he8,
    "reactor_ibd": _ibd("reactor_ibd", reactor_prompt_spectrum,
                        lambda p: p.reactor_ibd_per_day / DAY),
    "geo_ibd": _ibd("geo_ibd", geo_prompt_spectrum, lambda p: p.geo_ibd_per_day / DAY),
    "singles": singles,
    "bipo214": _bipo("bipo214", "bipo214_q", lambda p: p.bipo214_half_life_us * 1e3,
                     "bipo214_alpha_vis"),
    "bipo212": _bipo("bipo212", "bipo212_q", lambda p: p.bipo212_half_life_ns,
                     "bipo212_alpha_vis"),
}  # fmt: skip
