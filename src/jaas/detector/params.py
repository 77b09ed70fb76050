"""Parameters of the hit-level detector model (``DetectorParams``), with their sources."""

from __future__ import annotations

import dataclasses
import difflib
import math
from collections.abc import Mapping
from typing import Any

from jaas.errors import ConfigError

__all__ = ["DetectorParams"]


@dataclasses.dataclass(frozen=True)
class DetectorParams:
    """Configuration of the central-detector response; every physics default cites its source.

    Tags as in /work/shared/reference/physics.md: V read in the source, S seen in third-party
    code citing it, E estimate (a tunable default, not a fact).

    Example:
        >>> DetectorParams(attenuation_length_m=25.0).light_yield_pe_per_mev
        1345.0
    """

    # --- geometry ---
    n_pmt: int = 17_612  # V: 17,612 20-inch PMTs in the central detector
    pmt_radius_m: float = 19.434  # V: PMT sphere radius (junosw reconstruction constant)
    ls_radius_m: float = 17.7  # V: acrylic sphere, arXiv:2201.11321
    # --- optics ---
    refractive_index: float = 1.5  # E: LS group index, light speed c/n ~ 0.2 m/ns
    attenuation_length_m: float = 20.0  # E: LS attenuation length
    light_yield_pe_per_mev: float = 1345.0  # V: design, arXiv:2104.02565 (1785 measured)
    # --- scintillation time profile ---
    tau_fast_ns: float = 4.6  # E: two-exponential LS emission profile
    tau_slow_ns: float = 18.0  # E
    fast_fraction: float = 0.7  # E
    rise_time_ns: float = 0.0  # E: optional rise time (0: none)
    # --- PMTs ---
    n_dynode: int = 5_000  # E: ~5,000 dynode PMTs, the rest MCP-PMTs (scaled with pmt_scale)
    tts_dynode_ns: float = 1.2  # E: transit-time spread (sigma) of dynode PMTs
    tts_mcp_ns: float = 7.0  # E: transit-time spread (sigma) of MCP-PMTs
    gain_sigma: float = 0.3  # E: single-PE charge resolution (Gaussian, truncated > 0)
    qe_spread: float = 0.0  # E: relative spread of per-PMT detection efficiency (0: uniform)
    layout_seed: int = 12_345  # seeds the (fixed) PMT type assignment and efficiencies
    # --- electronics ---
    dark_rate_hz: float = 20_000.0  # E: dark rate per 20-inch PMT
    window_start_ns: float = -200.0  # E: readout window start, relative to the trigger time
    window_ns: float = 1_000.0  # E: readout window length
    # --- muons ---
    muon_segment_m: float = 0.5  # track split into segments of at most this length
    muon_early_ns: float = 3.0  # PEs arriving this close to the earliest one set the hit time

    def __post_init__(self) -> None:
        positive = (
            "pmt_radius_m",
            "ls_radius_m",
            "attenuation_length_m",
            "tau_fast_ns",
            "tau_slow_ns",
            "tts_dynode_ns",
            "tts_mcp_ns",
            "window_ns",
            "muon_segment_m",
        )
        for name in positive:
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise ConfigError(
                    f"DetectorParams.{name} must be a finite number > 0, got {value!r}"
                )
        non_negative = (
            "light_yield_pe_per_mev",
            "rise_time_ns",
            "gain_sigma",
            "qe_spread",
            "dark_rate_hz",
            "muon_early_ns",
        )
        for name in non_negative:
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
                raise ConfigError(
                    f"DetectorParams.{name} must be a finite number >= 0, got {value!r}"
                )
        if not (isinstance(self.n_pmt, int) and self.n_pmt >= 1):
            raise ConfigError(f"DetectorParams.n_pmt must be an integer >= 1, got {self.n_pmt!r}")
        if not (isinstance(self.n_dynode, int) and 0 <= self.n_dynode <= self.n_pmt):
            raise ConfigError(
                f"DetectorParams.n_dynode must be an integer in [0, n_pmt={self.n_pmt}], "
                f"got {self.n_dynode!r}"
            )
        if not 0.0 <= self.fast_fraction <= 1.0:
            raise ConfigError(
                f"DetectorParams.fast_fraction must be in [0, 1], got {self.fast_fraction!r}"
            )
        if self.refractive_index < 1.0:
            raise ConfigError(
                f"DetectorParams.refractive_index must be >= 1, got {self.refractive_index!r}"
            )
        if self.ls_radius_m >= self.pmt_radius_m:
            raise ConfigError(
                f"DetectorParams.ls_radius_m ({self.ls_radius_m}) must be smaller than "
                f"pmt_radius_m ({self.pmt_radius_m})"
            )
        for tau in ("tau_fast_ns", "tau_slow_ns"):
            if self.rise_time_ns > 0 and math.isclose(getattr(self, tau), self.rise_time_ns):
                raise ConfigError(f"DetectorParams.rise_time_ns must differ from {tau}")

    def to_dict(self) -> dict[str, Any]:
        """All parameters as a plain dict (JSON/YAML-serialisable)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DetectorParams:
        """Build from a dict such as ``to_dict()`` returns; unknown keys raise ``ConfigError``."""
        names = [f.name for f in dataclasses.fields(cls)]
        for key in data:
            if key not in names:
                close = difflib.get_close_matches(str(key), names, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                raise ConfigError(f"unknown detector parameter {key!r}{hint}")
        return cls(**dict(data))
