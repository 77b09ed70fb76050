"""Event sources: each draws the truth events whose primary falls in one time block.

A source is a function ``(block, rng, params, scale, muons) -> Events`` (``scale``: the
source's rate factor). Primaries are
Poisson in the block; correlated followers (delayed captures, 9Li decays, alphas) may fall
after the block end and are carried by the caller. Muon-induced sources draw per muon of
the same block, so their rates scale with both their own and the muon scale factor.

The draws after a block's count and times, and the arithmetic on them, run in numba
kernels (:mod:`jaas.sim._kernels`) that take the source's Generator.
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
from jaas.sim.truth import ROLES, SOURCES, TRACK_COLUMNS, Events

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


# --- helpers (geometry, captures and decays are drawn by the kernels in jaas.sim._kernels)


def _pair(
    block: Block,
    src: str,
    roles: tuple[str, str],
    cols: tuple[npt.NDArray[np.int64], F64, F64, F64, F64],
    corr: npt.NDArray[np.int64] | None = None,
) -> Events:
    """Events of n pairs from a kernel's 2n rows (first members, then second members);
    ``corr`` links each pair (default: the first member's uid)."""
    t, energy, x, y, z = cols
    n = len(t) // 2
    first = block.uid(src, roles[0], n)
    corr = first if corr is None else corr
    return Events.make(
        2 * n,
        t=t,
        uid=np.concatenate([first, block.uid(src, roles[1], n)]),
        src=_S[src],
        role=np.repeat(np.array([_R[roles[0]], _R[roles[1]]], np.int8), n),
        corr_id=np.concatenate([corr, corr]),
        E_true=energy,
        x=x,
        y=y,
        z=z,
    )


def _capture_args(p: PhysicsParams) -> tuple[float, float, float, float, float]:
    """(radius, capture tau in ns, C fraction, E on C, E on H) for the capture kernels."""
    return p.R_ls, p.capture_tau_us * 1e3, p.capture_c_fraction, p.e_capture_c, p.e_capture_h


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
        radius, tau, c_frac, e_c, e_h = _capture_args(p)
        cols = _kernels.ibd_pairs(rng, t, spectrum.inverse, _INVERSE_CELLS,  # type: ignore[attr-defined]
                                  radius, p.neutron_sigma_m, tau, c_frac, e_c, e_h)  # fmt: skip
        return _pair(block, src, ("prompt", "delayed"), cols)

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


def spall_n(
    block: Block, rng: np.random.Generator, p: PhysicsParams, scale: float, muons: Events
) -> Events:
    """Spallation neutrons: Poisson per muon (many after showering muons), near the track."""
    rows = _kernels.per_muon(
        rng, muons["showering"], p.spall_n_mean * scale, p.spall_n_mean_showering * scale
    )
    n = len(rows)
    if n == 0:
        return Events.empty()
    track = tuple(muons[c][rows] for c in TRACK_COLUMNS)
    radius, tau, c_frac, e_c, e_h = _capture_args(p)
    t, energy, x, y, z = _kernels.spallation(rng, muons["t"][rows], track, p.spall_sigma_m,
                                             radius, tau, c_frac, e_c, e_h)  # fmt: skip
    return Events.make(n, t=t, uid=block.uid("spall_n", "neutron", n), src=_S["spall_n"],
                       role=_R["neutron"], corr_id=muons["corr_id"][rows], E_true=energy,
                       x=x, y=y, z=z)  # fmt: skip


def li9he8(
    block: Block, rng: np.random.Generator, p: PhysicsParams, scale: float, muons: Events
) -> Events:
    """9Li/8He beta-n decays after muons (mostly showering): beta prompt + neutron capture."""
    share, f = p.li9he8_showering_share, p.showering_fraction
    per_mu = p.li9he8_per_day / DAY / p.muon_hz * scale if p.muon_hz > 0 else 0.0
    mean_sh = per_mu * share / f if f > 0 else 0.0
    mean = per_mu * (1 - share) / (1 - f) if f < 1 else 0.0
    rows = _kernels.per_muon(rng, muons["showering"], mean, mean_sh)
    n = len(rows)
    if n == 0:
        return Events.empty()
    track = tuple(muons[c][rows] for c in TRACK_COLUMNS)
    spectrum = beta_spectrum(p.li9_q_vis, p.trigger_threshold)
    radius, tau, c_frac, e_c, e_h = _capture_args(p)
    cols = _kernels.li9he8_pairs(
        rng, muons["t"][rows], track, p.he8_fraction, p.he8_tau_ms * 1e6, p.li9_tau_ms * 1e6,
        spectrum.inverse, _INVERSE_CELLS, p.spall_sigma_m, radius, p.neutron_sigma_m, tau,
        c_frac, e_c, e_h,
    )  # fmt: skip
    return _pair(block, "li9he8", ("prompt", "delayed"), cols, muons["corr_id"][rows])


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
        spectrum = beta_spectrum(getattr(p, q), p.trigger_threshold)
        cols = _kernels.bipo_pairs(rng, t, spectrum.inverse, _INVERSE_CELLS, p.R_ls,
                                   half_life_ns(p) / np.log(2), p.bipo_sigma_m,
                                   getattr(p, alpha))  # fmt: skip
        return _pair(block, src, ("beta", "alpha"), cols)

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
