"""Simulation configuration: run, sources, physics parameters and output options (pydantic).

Every physics default cites its source with the tags of ``docs``' physics reference
(V: read in the source, S: seen in third-party code citing it, E: estimate).
"""

from __future__ import annotations

from typing import Any, Literal

import pydantic
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from jaas import _time
from jaas.errors import ConfigError
from jaas.formats.schema import Source

__all__ = [
    "DEFAULT_START",
    "PhysicsParams",
    "SimConfig",
    "parse_duration",
    "parse_start",
]

DEFAULT_START = "2026-01-01T00:00:00Z"


def parse_duration(text: str | float) -> float:
    """Parse a duration such as ``600s``, ``10min``, ``1h``, ``2d`` or ``42`` (s) into seconds.

    Raises:
        ConfigError: the text is not a number followed by one of s, min, h, d.
    """
    return _time.parse_duration(text)


def parse_start(text: str | int) -> int:
    """Parse an ISO-8601 time (``2026-01-01T00:00:00Z``; UTC if no zone) or int ns into ns.

    Raises:
        ConfigError: not a date, or a date past 2262 (int64 nanoseconds end there).
    """
    return _time.parse_time(text, "start")


class PhysicsParams(BaseModel):
    """Physics parameters of the sources (rates per second unless named otherwise)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # --- detector geometry / response
    R_ls: float = Field(17.7, gt=0)  # m, acrylic sphere; V: arXiv:2201.11321
    res_a: float = Field(0.0261, ge=0)  # sigma/E stochastic term; S (a,b,c form)
    res_b: float = Field(0.0082, ge=0)  # constant term; S
    res_c: float = Field(0.0123, ge=0)  # noise term (MeV); S
    vertex_res_1mev: float = Field(0.10, ge=0)  # m at 1 MeV, ~1/sqrt(E); E
    track_res: float = Field(0.20, ge=0)  # m per track point; V: arXiv:2201.11321
    light_yield: float = Field(1345.0, gt=0)  # PE/MeV design; V: arXiv:2104.02565
    trigger_threshold: float = Field(0.2, ge=0)  # MeV, lowest visible energy kept; E

    # --- reactor antineutrinos
    reactor_ibd_per_day: float = Field(57.0, ge=0)  # at 26.6 GW_th; E (physics.md)
    baseline_km: float = Field(52.5, gt=0)  # JUNO mean reactor baseline; V
    # typical fission fractions 235U, 238U, 239Pu, 241Pu; E (commonly used PWR average)
    fission_fractions: tuple[float, float, float, float] = (0.58, 0.07, 0.30, 0.05)
    sin2_th12: float = Field(0.307, ge=0, le=1)  # PDG 2022, normal ordering; V
    sin2_th13: float = Field(0.0220, ge=0, le=1)  # PDG 2022; V
    dm2_21: float = Field(7.53e-5, gt=0)  # eV^2, PDG 2022; V
    dm2_31: float = Field(2.53e-3, gt=0)  # eV^2, PDG 2022 (NO); V
    geo_ibd_per_day: float = Field(1.5, ge=0)  # before cuts; E (1.2/day after cuts / 0.82)
    geo_u_fraction: float = Field(0.77, ge=0, le=1)  # U share of geo-nu IBD signal; E

    # --- neutron capture (IBD, spallation, 9Li/8He)
    capture_tau_us: float = Field(200.0, gt=0)  # V/E (physics.md)
    capture_c_fraction: float = Field(0.01, ge=0, le=1)  # 4.95 MeV on C; E
    e_capture_h: float = 2.223  # MeV, n-H gamma; V
    e_capture_c: float = 4.946  # MeV, n-C gamma; V
    # prompt->delayed displacement per coordinate (neutron drift + gamma centroid): ~99 %
    # within 1.5 m after vertex smearing; E tuned to the 99.2 % dR efficiency (S)
    neutron_sigma_m: float = Field(0.42, ge=0)

    # --- radioactivity singles (whole LS, above singles_threshold)
    singles_hz: float = Field(10.0, ge=0)  # V: arXiv:2107.03669 (< 10 Hz in FV above 0.7 MeV)
    singles_threshold: float = Field(0.5, ge=0)  # MeV; E
    singles_external_fraction: float = Field(0.6, ge=0, le=1)  # external gammas; E
    external_length_m: float = Field(0.5, gt=0)  # attenuation length inward from R; E

    # --- muons
    muon_hz: float = Field(3.9, ge=0)  # through the CD; V: arXiv:2201.11321
    muon_wp_hz: float = Field(2.0, ge=0)  # water-pool-only muons; E
    muon_dedx_mev_per_m: float = Field(200.0, gt=0)  # ~2 MeV/cm; E
    showering_fraction: float = Field(0.10, ge=0, le=1)  # E
    showering_extra_gev: tuple[float, float] = (1.0, 50.0)  # log-uniform extra deposit; E
    untracked_showering_fraction: float = Field(0.10, ge=0, le=1)  # showering, no track fit; E
    spall_n_mean: float = Field(0.10, ge=0)  # neutrons per non-showering muon; E
    spall_n_mean_showering: float = Field(3.5, ge=0)  # per showering muon (avg ~0.44); E
    spall_sigma_m: float = Field(0.5, ge=0)  # distance of n/9Li from the track; E
    li9he8_per_day: float = Field(80.0, ge=0)  # beta-n decays produced; E (physics.md brief)
    li9he8_showering_share: float = Field(0.85, ge=0, le=1)  # produced after showering mu; E
    he8_fraction: float = Field(0.10, ge=0, le=1)  # 9Li:8He ~ 9:1; E
    li9_tau_ms: float = Field(257.0, gt=0)  # T1/2 178.3 ms; V
    he8_tau_ms: float = Field(172.0, gt=0)  # T1/2 119.0 ms; V
    li9_q_vis: float = Field(11.2, gt=0)  # MeV, endpoint of the visible beta spectrum; E

    # --- BiPo
    bipo214_hz: float = Field(0.2, ge=0)  # E
    bipo214_q: float = Field(3.27, gt=0)  # MeV, 214Bi Q_beta; V
    bipo214_half_life_us: float = Field(164.3, gt=0)  # 214Po; V
    bipo214_alpha_vis: float = Field(0.93, gt=0)  # MeV quenched; V
    bipo212_hz: float = Field(0.05, ge=0)  # E
    bipo212_q: float = Field(2.25, gt=0)  # MeV, 212Bi Q_beta; V/S
    bipo212_half_life_ns: float = Field(299.0, gt=0)  # 212Po; V/S
    bipo212_alpha_vis: float = Field(1.05, gt=0)  # MeV quenched; E
    bipo_sigma_m: float = Field(0.03, ge=0)  # alpha vertex offset per coordinate; E


class SimConfig(BaseModel):
    """Everything that defines a simulated run; same config + seed -> identical output.

    Args:
        run: run number.
        start: run start, ISO-8601 (UTC) or int ns since the Unix epoch.
        duration_s: run length in seconds.
        seed: master seed; each source and time block derive their own stream from it.
        mode: ``"index"`` (reconstructed-level Parquet rows) or ``"hit"`` (RAW files).
        scale: per-source rate factor, e.g. ``{"reactor_ibd": 10, "muon": 0}``.
        physics: physics parameters (:class:`PhysicsParams`).
        light_scale, pmt_scale: passed to the hit-level detector response (fast tests).
        max_events_per_file: events per output file (default 100k hit, 1M index).
        max_bytes_per_file: RAW bytes per file (hit mode only; a file closes once past it).
        block_s: seed block: each source's random stream restarts per block of this length.
        chunk_s: generation chunk (a multiple of ``block_s``); bounds memory only.
        min_trigger_gap_ns: two triggers closer than this are moved apart (never equal t).
        write_truth: also write the truth Parquet files.

    Example:
        >>> SimConfig(duration_s=600, scale={"muon": 0}).mode
        'index'
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    run: int = Field(1, ge=0, lt=2**31)
    start: int | str = DEFAULT_START
    duration_s: float = Field(3600.0, gt=0)
    seed: int = Field(0, ge=0)
    mode: Literal["hit", "index"] = "index"
    scale: dict[str, float] = Field(default_factory=dict)
    physics: PhysicsParams = Field(default_factory=lambda: PhysicsParams.model_validate({}))
    light_scale: float = Field(1.0, gt=0)
    pmt_scale: float = Field(1.0, gt=0, le=1)
    max_events_per_file: int | None = Field(None, gt=0)
    max_bytes_per_file: int | None = Field(None, gt=0)
    block_s: float = Field(600.0, gt=0)
    chunk_s: float = Field(3600.0, gt=0)
    min_trigger_gap_ns: int = Field(1, ge=1)
    write_truth: bool = True

    @field_validator("start")
    @classmethod
    def _check_start(cls, value: int | str) -> int | str:
        parse_start(value)
        return value

    @field_validator("scale")
    @classmethod
    def _check_scale(cls, value: dict[str, float]) -> dict[str, float]:
        valid = [s.value for s in Source]
        for name, factor in value.items():
            if name not in valid:
                raise ValueError(f"unknown source {name!r}; valid sources: {', '.join(valid)}")
            if not factor >= 0:
                raise ValueError(f"scale of {name!r} must be >= 0, got {factor}")
        return value

    @model_validator(mode="after")
    def _check_chunk(self) -> SimConfig:
        ratio = self.chunk_s / self.block_s
        if abs(ratio - round(ratio)) > 1e-9 or round(ratio) < 1:
            raise ValueError(
                f"chunk_s ({self.chunk_s}) must be a positive multiple of block_s ({self.block_s})"
            )
        return self

    @classmethod
    def build(cls, **kwargs: Any) -> SimConfig:
        """Validate keyword arguments; a bad value raises ConfigError naming the field."""
        try:
            return cls(**kwargs)
        except pydantic.ValidationError as exc:
            raise _config_error(exc) from None

    def factor(self, source: str) -> float:
        """Rate scale factor of ``source`` (1 if not given)."""
        return float(self.scale.get(source, 1.0))

    @property
    def start_ns(self) -> int:
        """Run start in ns since the Unix epoch."""
        return parse_start(self.start)

    @property
    def end_ns(self) -> int:
        """Run end (exclusive) in ns since the Unix epoch."""
        return self.start_ns + round(self.duration_s * 1e9)

    @property
    def events_per_file(self) -> int:
        """Resolved ``max_events_per_file``."""
        if self.max_events_per_file is not None:
            return self.max_events_per_file
        return 100_000 if self.mode == "hit" else 1_000_000


def _config_error(exc: pydantic.ValidationError) -> ConfigError:
    parts = []
    for err in exc.errors():
        field = ".".join(str(p) for p in err["loc"]) or "config"
        got = repr(err.get("input"))
        got = got if len(got) <= 60 else got[:57] + "..."
        parts.append(f"{field}: {err['msg']} (got {got})")
    return ConfigError("invalid simulation config: " + "; ".join(parts))


def validated(config: SimConfig | dict[str, Any]) -> SimConfig:
    """Return ``config`` as a SimConfig, raising ConfigError (naming the field) if invalid."""
    if isinstance(config, SimConfig):
        return config
    return SimConfig.build(**config)
