"""What reconstruction knows about the detector: PMT layout, light model, single-PE times.

``Detector`` is built from :class:`~jaas.detector.params.DetectorParams` alone, so
reconstruction of real data needs only this package. The simulator's
:class:`jaas.sim.detector.Detector` extends it with ``respond`` (truth in, PMT hits out).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Self

import numpy as np
import numpy.typing as npt

from jaas.detector import optics as _optics
from jaas.detector.params import DetectorParams
from jaas.errors import ConfigError

__all__ = ["Detector"]

F64 = npt.NDArray[np.float64]


class Detector:
    """The detector model: geometry, PMT layout and light/time model (no simulation).

    Args:
        params: physics and electronics parameters (defaults: ``DetectorParams()``).
        light_scale: multiplies the light yield (e.g. 0.1 for fast tests).
        pmt_scale: multiplies the PMT count (and the number of dynode PMTs); the PMTs
            stay evenly spread on the sphere, e.g. 0.05 gives 881 PMTs.

    Attributes:
        pmt_pos: (n_pmt, 3) float64 PMT positions in m; PMT id = row.
        pmt_is_dynode: (n_pmt,) bool, dynode PMT (small TTS) or MCP-PMT.
        tts_sigma: (n_pmt,) float64 transit-time spread per PMT in ns.
        efficiency: (n_pmt,) float64 relative detection efficiency (mean 1).

    Example:
        >>> det = Detector(light_scale=0.1, pmt_scale=0.05)
        >>> det.n_pmt, det.pmt_pos.shape
        (881, (881, 3))
    """

    def __init__(
        self,
        params: DetectorParams | None = None,
        *,
        light_scale: float = 1.0,
        pmt_scale: float = 1.0,
    ) -> None:
        self.params = params if params is not None else DetectorParams()
        for name, value in (("light_scale", light_scale), ("pmt_scale", pmt_scale)):
            if not (math.isfinite(value) and value > 0):
                raise ConfigError(f"Detector {name} must be a finite number > 0, got {value!r}")
        self.light_scale = float(light_scale)
        self.pmt_scale = float(pmt_scale)
        p = self.params
        n = max(1, round(p.n_pmt * pmt_scale))
        self.n_pmt = n
        self.pmt_pos: F64 = _optics.pmt_positions(n, p.pmt_radius_m)
        layout = np.random.default_rng(p.layout_seed)
        n_dyn = min(n, round(p.n_dynode * n / p.n_pmt))
        self.pmt_is_dynode = np.zeros(n, dtype=bool)
        self.pmt_is_dynode[layout.choice(n, n_dyn, replace=False)] = True
        self.tts_sigma: F64 = np.where(self.pmt_is_dynode, p.tts_dynode_ns, p.tts_mcp_ns)
        eff = 1.0 + p.qe_spread * layout.standard_normal(n)
        self.efficiency: F64 = np.clip(eff, 0.05, None) / np.clip(eff, 0.05, None).mean()
        self.speed_m_per_ns = _optics.C_LIGHT_M_PER_NS / p.refractive_index
        # Centre normalisation: sum_i eff_i exp(-R/L) / R^2 (cos = 1 at the centre).
        centre = self.efficiency * math.exp(-p.pmt_radius_m / p.attenuation_length_m)
        self._norm = (
            p.light_yield_pe_per_mev * self.light_scale / float(centre.sum() / p.pmt_radius_m**2)
        )
        self._cdf = {dyn: self._time_table(dyn) for dyn in (False, True)}

    def expected_pe(self, vertex: npt.ArrayLike, energy: npt.ArrayLike) -> F64:
        """Expected PEs on every PMT for point deposits (light_scale included).

        Args:
            vertex: (3,) or (k, 3) positions in m, inside the PMT sphere.
            energy: visible energy in MeV, scalar or (k,).

        Returns:
            (n_pmt,) for one vertex, (k, n_pmt) for k vertices.

        Example:
            >>> det = Detector(pmt_scale=0.01)
            >>> round(float(det.expected_pe([0, 0, 0], 1.0).sum()), 6)
            1345.0
        """
        v = np.asarray(vertex, dtype=np.float64)
        single = v.ndim == 1
        v2 = np.atleast_2d(v)
        e = np.broadcast_to(np.asarray(energy, dtype=np.float64), (v2.shape[0],))
        mu = self._expected(v2, e)[0]
        return mu[0] if single else mu

    def time_of_flight(self, vertex: npt.ArrayLike) -> F64:
        """Photon time of flight in ns from ``vertex`` ((3,) or (k, 3), m) to every PMT."""
        v = np.asarray(vertex, dtype=np.float64)
        d, _ = _optics.geometry(np.atleast_2d(v), self.pmt_pos, self.params.pmt_radius_m)
        tof = d / self.speed_m_per_ns
        return tof[0] if v.ndim == 1 else tof

    def hit_time_cdf(self, dynode: bool) -> tuple[F64, F64]:
        """Single-PE delay CDF (emission + TTS) of one PMT type: ``(times_ns, cdf)``.

        A hit time is ``time_of_flight + delay`` where the delay of a PMT with n PEs is
        the minimum of n draws from this CDF.
        """
        cdf, grid = self._cdf[bool(dynode)]
        return grid.copy(), cdf.copy()

    def to_dict(self) -> dict[str, Any]:
        """The exact configuration (params, light_scale, pmt_scale) as a plain dict."""
        return {
            "params": self.params.to_dict(),
            "light_scale": self.light_scale,
            "pmt_scale": self.pmt_scale,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """Rebuild the detector that ``to_dict()`` described."""
        unknown = set(data) - {"params", "light_scale", "pmt_scale"}
        if unknown:
            raise ConfigError(
                f"unknown detector configuration keys {sorted(unknown)}; "
                "expected 'params', 'light_scale', 'pmt_scale'"
            )
        return cls(
            DetectorParams.from_dict(data.get("params", {})),
            light_scale=float(data.get("light_scale", 1.0)),
            pmt_scale=float(data.get("pmt_scale", 1.0)),
        )

    def __repr__(self) -> str:
        return (
            f"Detector(n_pmt={self.n_pmt}, light_scale={self.light_scale}, "
            f"pmt_scale={self.pmt_scale})"
        )

    # ----------------------------------------------------------------- internals
    def _time_table(self, dynode: bool) -> tuple[F64, F64]:
        p = self.params
        sigma = p.tts_dynode_ns if dynode else p.tts_mcp_ns
        lo = -8.0 * sigma
        hi = 40.0 * max(p.tau_fast_ns, p.tau_slow_ns, p.rise_time_ns) + 8.0 * sigma
        grid = np.linspace(lo, hi, 20_001)
        cdf = _optics.first_pe_cdf(
            grid,
            tau_fast=p.tau_fast_ns,
            tau_slow=p.tau_slow_ns,
            fast_fraction=p.fast_fraction,
            rise_time=p.rise_time_ns,
            tts_sigma=sigma,
        )
        return _optics.invertible(grid, cdf)

    def _expected(self, vertex: F64, energy: F64) -> tuple[F64, F64]:
        """Expected PEs (k, n) and distances (k, n) for k point deposits."""
        p = self.params
        d, cos = _optics.geometry(vertex, self.pmt_pos, p.pmt_radius_m)
        w = cos / (d * d) * np.exp(-d / p.attenuation_length_m)
        w *= self.efficiency
        w *= (self._norm * energy)[:, None]
        return w, d
