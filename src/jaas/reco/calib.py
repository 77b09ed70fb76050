"""Versioned energy calibration: PE/MeV at the centre, non-uniformity vs radius, dark noise.

A calibration is a JSON file (``calib/v1.json`` ships for the default full-scale detector).
It records the detector configuration it was derived for; reconstruction refuses a
calibration whose ``light_scale``/``pmt_scale`` differ from the run's (see ``check``).
``derive_calibration`` regenerates one from a simulated source run: fixed-energy point
deposits at a grid of radii (random directions) pushed through ``Detector.respond``, plus
random triggers for the dark-noise rate.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.resources
import json
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from jaas._io import atomic_path
from jaas._version import __version__
from jaas.detector import Detector
from jaas.errors import ConfigError

if TYPE_CHECKING:
    from jaas.sim.detector import Detector as SimDetector

__all__ = [
    "DEFAULT_RADII",
    "Calibration",
    "calibration_for",
    "default_calibration",
    "derive_calibration",
    "load_calibration",
    "truth_rows",
]

FORMAT = 1
# Source positions (m): denser near the edge, where the light yield changes fastest.
DEFAULT_RADII = (0.0, 3.0, 6.0, 9.0, 11.0, 13.0, 14.5, 15.5, 16.0, 16.5, 17.0, 17.3, 17.5, 17.7)
SOURCE_MEV = 2.22  # V: n-H capture gamma, the standard JUNO calibration source (physics.md)


@dataclass(frozen=True)
class Calibration:
    """Energy-scale constants for one detector configuration.

    Attributes:
        version: name recorded in every ESD (e.g. ``v1``).
        detector: ``Detector.to_dict()`` of the configuration it was derived for.
        pe_per_mev: dark-subtracted in-window PE per MeV at the centre.
        radius_m, nonuniformity: light yield relative to the centre at these radii.
        dark_rate_hz: measured dark rate per PMT (random triggers).
        energy_window_ns: hit-time residual window (ns after the fitted t0) of the charge sum.
        provenance: how it was made (source energy, events, seed, software version).
    """

    version: str
    detector: dict[str, Any]
    pe_per_mev: float
    radius_m: tuple[float, ...]
    nonuniformity: tuple[float, ...]
    dark_rate_hz: float
    energy_window_ns: tuple[float, float] = (-30.0, 170.0)
    provenance: dict[str, Any] = field(default_factory=dict)

    # ------------------------------------------------------------------ use
    def relative_light(self, r: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """Light yield at radius ``r`` (m) relative to the centre (clamped to the map)."""
        return np.interp(np.asarray(r, np.float64), self.radius_m, self.nonuniformity)

    def make_detector(self) -> Detector:
        """The detector this calibration describes."""
        return Detector.from_dict(self.detector)

    @property
    def light_scale(self) -> float:
        return float(self.detector.get("light_scale", 1.0))

    @property
    def pmt_scale(self) -> float:
        return float(self.detector.get("pmt_scale", 1.0))

    @property
    def checksum(self) -> str:
        """SHA-256 (16 hex digits) of the canonical JSON: changes with any constant."""
        text = json.dumps(self.to_dict(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def check(self, light_scale: float, pmt_scale: float, where: str = "the run") -> None:
        """Raise ConfigError unless this calibration is for ``light_scale``/``pmt_scale``."""
        ok = math.isclose(self.light_scale, light_scale, rel_tol=1e-9) and math.isclose(
            self.pmt_scale, pmt_scale, rel_tol=1e-9
        )
        if not ok:
            raise ConfigError(
                f"calibration {self.version!r} is for light_scale={self.light_scale}, "
                f"pmt_scale={self.pmt_scale} but {where} was simulated with "
                f"light_scale={light_scale}, pmt_scale={pmt_scale}; derive a matching one "
                f"with: jaas reco calibrate --light-scale {light_scale} "
                f"--pmt-scale {pmt_scale} --out calib.json (or omit --calibration)"
            )

    # ------------------------------------------------------------------ files
    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["format"] = FORMAT
        data["radius_m"] = list(self.radius_m)
        data["nonuniformity"] = list(self.nonuniformity)
        data["energy_window_ns"] = list(self.energy_window_ns)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "calibration") -> Calibration:
        """Build from ``to_dict()`` output; ConfigError names a missing or bad key."""
        if data.get("format") != FORMAT:
            raise ConfigError(f"{source}: 'format' is {data.get('format')!r}, expected {FORMAT}")
        try:
            cal = cls(
                version=str(data["version"]),
                detector=dict(data["detector"]),
                pe_per_mev=float(data["pe_per_mev"]),
                radius_m=tuple(float(r) for r in data["radius_m"]),
                nonuniformity=tuple(float(v) for v in data["nonuniformity"]),
                dark_rate_hz=float(data["dark_rate_hz"]),
                energy_window_ns=(
                    float(data["energy_window_ns"][0]),
                    float(data["energy_window_ns"][1]),
                ),
                provenance=dict(data.get("provenance", {})),
            )
        except KeyError as exc:
            raise ConfigError(f"{source}: missing key {exc.args[0]!r}") from None
        except (TypeError, ValueError, IndexError) as exc:
            raise ConfigError(f"{source}: bad value ({exc})") from None
        if len(cal.radius_m) != len(cal.nonuniformity) or len(cal.radius_m) < 2:
            raise ConfigError(f"{source}: radius_m and nonuniformity need the same length >= 2")
        if np.any(np.diff(cal.radius_m) <= 0) or not cal.pe_per_mev > 0:
            raise ConfigError(f"{source}: radius_m must increase and pe_per_mev be > 0")
        return cal

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the calibration as JSON, atomically."""
        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps(self.to_dict(), indent=1, sort_keys=True) + "\n")
        return Path(path)


def load_calibration(path: str | os.PathLike[str]) -> Calibration:
    """Read a calibration JSON file (ConfigError names the file and the problem)."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: not a readable calibration JSON file ({exc})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a JSON object")
    return Calibration.from_dict(data, source=str(path))


@functools.cache
def default_calibration() -> Calibration:
    """The shipped calibration (``jaas/reco/calib/v1.json``, full-scale default detector)."""
    res = importlib.resources.files("jaas.reco").joinpath("calib/v1.json")
    return Calibration.from_dict(json.loads(res.read_text()), source="jaas/reco/calib/v1.json")


@functools.cache
def calibration_for(light_scale: float, pmt_scale: float) -> Calibration:
    """The shipped calibration if it matches, else one derived on the fly (seeded, cached).

    On-the-fly calibrations (version ``auto-<hash>``) are meant for scaled-down test
    detectors, where deriving takes seconds; the same inputs give the same constants.
    """
    default = default_calibration()
    try:
        default.check(light_scale, pmt_scale)
        return default
    except ConfigError:
        det = Detector(light_scale=light_scale, pmt_scale=pmt_scale)
        return derive_calibration(det, version=None, events_per_point=40, progress=False)


def simulator(detector: Detector) -> SimDetector:
    """``detector`` with the simulator's ``respond`` (deriving a calibration simulates).

    The only place reconstruction reaches the simulator, imported here on demand: reading
    real data with a shipped calibration never loads :mod:`jaas.sim`.
    """
    from jaas.sim.detector import Detector as Simulated

    if isinstance(detector, Simulated):
        return detector
    return Simulated.from_dict(detector.to_dict())


def derive_calibration(
    detector: Detector,
    *,
    version: str | None = "v1",
    radii: tuple[float, ...] = DEFAULT_RADII,
    energy_mev: float = SOURCE_MEV,
    events_per_point: int = 100,
    n_random: int = 200,
    seed: int = 20_240_601,
    progress: bool = True,
) -> Calibration:
    """Derive a calibration from a simulated source run through ``detector.respond``.

    Args:
        detector: the detector configuration to calibrate.
        version: recorded name; None gives ``auto-<hash of the detector config>``.
        radii: source radii (m), random directions at each.
        energy_mev: deposited energy of each source event.
        events_per_point: events per radius.
        n_random: random (dark-noise only) triggers for the dark rate.
        seed: random seed (same seed, same calibration).
        progress: show a progress bar.

    Example:
        >>> cal = derive_calibration(Detector(light_scale=0.1, pmt_scale=0.05),
        ...                          events_per_point=10, progress=False)  # doctest: +SKIP
    """
    from jaas.progress import progress as bar_factory
    from jaas.reco.pipeline import RecoConfig, reconstruct_batch
    from jaas.reco.vertex import time_tables

    rng = np.random.default_rng(seed)
    detector = simulator(detector)
    p = detector.params
    dark = detector.respond(truth_rows(np.zeros((n_random, 3)), 0.0), rng)
    dark_rate = float(dark.charge.sum()) / (n_random * detector.n_pmt * p.window_ns * 1e-9)
    config = detector.to_dict()
    flat = Calibration(
        version="bootstrap",
        detector=config,
        pe_per_mev=1.0,
        radius_m=(0.0, p.pmt_radius_m),
        nonuniformity=(1.0, 1.0),
        dark_rate_hz=dark_rate,
    )
    gains = []
    no_muon = RecoConfig(muon_threshold_mev=math.inf)
    tables = time_tables(detector)
    quiet: dict[str, Any] = {} if progress else {"disable": True}
    with bar_factory(total=len(radii), desc="calibrate", unit="pos", **quiet) as bar:
        for r in radii:
            d = rng.standard_normal((events_per_point, 3))
            d *= r / np.linalg.norm(d, axis=1)[:, None]
            hits = detector.respond(truth_rows(d, energy_mev), rng)
            cols = reconstruct_batch(hits, detector, flat, config=no_muon, tables=tables)
            good = cols["quality"] == 0
            pe = cols["E"][good]  # flat map, 1 PE/MeV: E is the dark-subtracted PE
            gains.append(float(np.mean(pe)) / energy_mev if good.any() else math.nan)
            bar.update(1)
    g = np.asarray(gains)
    if not np.all(np.isfinite(g)) or g[0] <= 0:
        raise ConfigError(f"calibration run failed: PE/MeV per radius {g.tolist()}")
    name = (
        version
        or "auto-" + hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:8]
    )
    return Calibration(
        version=name,
        detector=config,
        pe_per_mev=float(g[0]),
        radius_m=tuple(float(r) for r in radii),
        nonuniformity=tuple(float(v) for v in g / g[0]),
        dark_rate_hz=dark_rate,
        provenance={
            "source_mev": energy_mev,
            "events_per_point": events_per_point,
            "random_triggers": n_random,
            "seed": seed,
            "software_version": __version__,
        },
    )


def truth_rows(vertex: npt.NDArray[np.float64], energy: float) -> dict[str, Any]:
    """Truth columns of single events at ``vertex`` (n, 3) with visible energy ``energy``
    (MeV), at t = 0: the input of the detector response."""
    n = len(vertex)
    return {
        "event_id": np.arange(n),
        "t": np.zeros(n, np.int64),
        "E_true": np.full(n, energy),
        "x": vertex[:, 0],
        "y": vertex[:, 1],
        "z": vertex[:, 2],
    }
