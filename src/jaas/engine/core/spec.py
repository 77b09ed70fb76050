"""The pure query types of the correlation core: vetoes, coincidence, spec, result.

The semantics are documented in :mod:`jaas.engine.core.correlate`; veto kinds and
coincidence modes are defined here, once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import numpy.typing as npt

from jaas.engine.core.exposure import Exposure
from jaas.errors import ConfigError

__all__ = [
    "MODES",
    "TRACK_COLUMNS",
    "VETO_KINDS",
    "Accidentals",
    "Coincidence",
    "Isolation",
    "Mode",
    "OffTime",
    "Result",
    "SinceLast",
    "SinceRows",
    "Spec",
    "Veto",
    "VetoKind",
]

TRACK_COLUMNS = ("mx0", "my0", "mz0", "mx1", "my1", "mz1")
Mode = Literal["all", "nearest", "exactly_one"]
MODES: tuple[Mode, ...] = ("all", "nearest", "exactly_one")
VetoKind = Literal["detector", "cylinder", "sphere"]
SinceRows = Literal["events", "pairs"]
VETO_KINDS: tuple[VetoKind, ...] = ("detector", "cylinder", "sphere")
_MS = 1_000_000
_S = 1_000_000_000


@dataclass(frozen=True)
class Veto:
    """One veto: ``kind`` "detector", "cylinder" or "sphere" after events of ``trigger``.

    Example:
        >>> Veto.detector("muon", "muon", 1_500_000)   # 1.5 ms after any muon
        Veto(name='muon', kind='detector', trigger='muon', window_ns=1500000, radius=0.0)
    """

    name: str
    kind: VetoKind
    trigger: str
    window_ns: int
    radius: float = 0.0

    @classmethod
    def detector(cls, name: str, trigger: str, window_ns: int) -> Veto:
        """Whole detector for ``window_ns`` after each event of ``trigger``."""
        return cls(name, "detector", trigger, int(window_ns))

    @classmethod
    def cylinder(cls, name: str, trigger: str, window_ns: int, radius: float) -> Veto:
        """Within ``radius`` m of the track of each tracked ``trigger`` event."""
        return cls(name, "cylinder", trigger, int(window_ns), float(radius))

    @classmethod
    def sphere(cls, name: str, trigger: str, window_ns: int, radius: float) -> Veto:
        """Within ``radius`` m of the vertex of each ``trigger`` event."""
        return cls(name, "sphere", trigger, int(window_ns), float(radius))


@dataclass(frozen=True)
class Isolation:
    """No other event of ``mask`` within ``[t_p - before_ns, t_d + after_ns]``."""

    mask: str
    before_ns: int = 0
    after_ns: int = 0


@dataclass(frozen=True)
class OffTime:
    """Off-time windows: ``n`` copies of the prompt window shifted back from ``start_ns``.

    ``step_ns`` (default: the window width ``dt_max - dt_min``) separates the copies.
    """

    n: int = 100
    start_ns: int = 1 * _S
    step_ns: int | None = None

    def shifts(self, width_ns: int) -> npt.NDArray[np.int64]:
        """The shifts ``s_k`` in ns, ascending."""
        step = width_ns if self.step_ns is None else self.step_ns
        return self.start_ns + step * np.arange(self.n, dtype=np.int64)


@dataclass(frozen=True)
class Coincidence:
    """Delayed-first coincidence of ``prompt`` and ``delayed`` masks (see module docs)."""

    prompt: str
    delayed: str
    dt_max_ns: int
    dt_min_ns: int = 0
    dr_max: float | None = None
    mode: Mode = "exactly_one"
    isolation: tuple[Isolation, ...] = ()
    offtime: OffTime | None = None


@dataclass(frozen=True)
class SinceLast:
    """Derived columns ``name`` (ns since the last ``mask`` event) and ``name + "_dist"``.

    ``at="events"`` computes them for every event (``Result.columns``); ``at="pairs"``
    only at the events of the pairs and off-time pairs (``Result.pair_columns``, same
    values), which costs O(pairs) instead of O(events).
    """

    name: str
    mask: str
    horizon_ns: int = 10 * _S
    at: SinceRows = "events"


@dataclass(frozen=True)
class Spec:
    """Everything a correlation run computes; plain data, so it can be shipped to workers.

    Attributes:
        vetoes: vetoes, bit ``i`` of ``Result.veto_bits`` is ``vetoes[i]`` (at most 31).
        coincidence: the pair search, or None for vetoes/derived columns only.
        since: derived "time since last" columns.
        gap_veto: veto the first ``W`` ns of every segment (see module docs).
        fiducial_radius: m, volume of the volume-veto Monte Carlo
            (17.2 m: physics.md, S: arXiv:2204.13249).
        mc_samples, mc_seed: size and seed of that Monte Carlo.
    """

    vetoes: tuple[Veto, ...] = ()
    coincidence: Coincidence | None = None
    since: tuple[SinceLast, ...] = ()
    gap_veto: bool = True
    fiducial_radius: float = 17.2
    mc_samples: int = 100_000
    mc_seed: int = 12345

    def shifts(self) -> npt.NDArray[np.int64]:
        """Off-time shifts (empty without off-time windows)."""
        c = self.coincidence
        if c is None or c.offtime is None:
            return np.empty(0, np.int64)
        return c.offtime.shifts(c.dt_max_ns - c.dt_min_ns)

    def halo(self) -> tuple[int, int]:
        """(before, after) ns of stream a partition must see around its core."""
        w = max((v.window_ns for v in self.vetoes), default=0)
        before = max([w, *(s.horizon_ns for s in self.since)])
        after = 0
        c = self.coincidence
        if c is not None:
            sh = self.shifts()
            s_max = int(sh[-1]) if sh.size else 0
            iso_b = max((i.before_ns for i in c.isolation), default=0)
            before = max(before, s_max + c.dt_max_ns + max(w, iso_b))
            after = max((i.after_ns for i in c.isolation), default=0)
            # since at a pair's prompt: the horizon before the earliest prompt time
            h = max((s.horizon_ns for s in self.since if s.at == "pairs"), default=-1)
            if h >= 0:
                before = max(before, s_max + c.dt_max_ns + h)
        return before, after

    def required_columns(self) -> list[str]:
        """Column names the stream must provide."""
        need = ["t"]
        spatial = any(v.kind != "detector" for v in self.vetoes) or bool(self.since)
        c = self.coincidence
        if spatial or (c is not None and c.dr_max is not None):
            need += ["x", "y", "z"]
        if any(v.kind == "cylinder" for v in self.vetoes):
            need += list(TRACK_COLUMNS)
        need += [v.trigger for v in self.vetoes] + [s.mask for s in self.since]
        if c is not None:
            need += [c.prompt, c.delayed, *(i.mask for i in c.isolation)]
        return list(dict.fromkeys(need))

    def validate(self) -> None:
        """Raise ConfigError naming the first invalid parameter."""
        if len(self.vetoes) > 31:
            raise ConfigError(f"at most 31 vetoes are supported, got {len(self.vetoes)}")
        names = [v.name for v in self.vetoes]
        if len(set(names)) != len(names):
            raise ConfigError(f"veto names must be unique, got {names}")
        for v in self.vetoes:
            if v.kind not in VETO_KINDS:
                raise ConfigError(
                    f"veto {v.name!r}: kind {v.kind!r} is not one of "
                    "'detector', 'cylinder', 'sphere'"
                )
            if v.window_ns < 0:
                raise ConfigError(f"veto {v.name!r}: window_ns must be >= 0, got {v.window_ns}")
            if v.kind != "detector" and not v.radius > 0:
                raise ConfigError(f"veto {v.name!r}: radius must be > 0 m, got {v.radius}")
        for s in self.since:
            if s.horizon_ns < 0:
                raise ConfigError(f"since {s.name!r}: horizon_ns must be >= 0")
            if s.at not in ("events", "pairs"):
                raise ConfigError(f"since {s.name!r}: at must be 'events' or 'pairs', got {s.at!r}")
        c = self.coincidence
        if c is None:
            return
        if c.mode not in MODES:
            raise ConfigError(f"coincidence mode {c.mode!r} is not one of {MODES}")
        if c.dt_min_ns < 0 or c.dt_max_ns <= c.dt_min_ns:
            raise ConfigError(
                f"coincidence needs 0 <= dt_min_ns < dt_max_ns, got {c.dt_min_ns}, {c.dt_max_ns}"
            )
        if c.dr_max is not None and not c.dr_max > 0:
            raise ConfigError(f"coincidence dr_max must be > 0 m or None, got {c.dr_max}")
        for i in c.isolation:
            if i.before_ns < 0 or i.after_ns < 0:
                raise ConfigError(f"isolation on {i.mask!r}: before/after must be >= 0 ns")
        o = c.offtime
        if o is not None:
            step = c.dt_max_ns - c.dt_min_ns if o.step_ns is None else o.step_ns
            if o.n < 1 or step <= 0 or o.start_ns < c.dt_max_ns:
                raise ConfigError(
                    f"off-time windows need n >= 1, step_ns > 0 and start_ns >= dt_max_ns "
                    f"({c.dt_max_ns}), got n={o.n}, step_ns={step}, start_ns={o.start_ns}"
                )


@dataclass
class Accidentals:
    """Off-time estimate of accidental pairs in the on-time window."""

    n_off: int
    n_windows: int

    @property
    def estimate(self) -> float:
        """Expected accidental pairs on-time: ``n_off / n_windows``."""
        return self.n_off / self.n_windows

    @property
    def error(self) -> float:
        """Statistical error ``sqrt(n_off) / n_windows``."""
        return float(np.sqrt(self.n_off)) / self.n_windows


@dataclass
class Result:
    """Output of :func:`correlate`; indices point into the input stream.

    Attributes:
        prompt, delayed: pair indices (int64), sorted by delayed then prompt.
        veto_bits: per event, bit ``i`` = vetoed by ``spec.vetoes[i]``, bit 31 = gap veto.
        veto_intervals: (k, 2) merged whole-detector veto intervals clipped to segments.
        columns: derived per-event columns (``SinceLast(at="events")``).
        pair_columns: derived columns at the pairs, ``{role}_{column}`` for role
            ``prompt``, ``delayed``, ``off_prompt``, ``off_delayed`` (aligned with those
            index arrays), for every ``SinceLast`` whatever its ``at``.
        off_prompt, off_delayed, off_window: off-time pairs (window index k - 1).
        accidentals: off-time estimate, None without off-time windows.
        exposure: where the time went.
    """

    spec: Spec
    prompt: npt.NDArray[np.int64]
    delayed: npt.NDArray[np.int64]
    veto_bits: npt.NDArray[np.uint32]
    veto_intervals: npt.NDArray[np.int64]
    exposure: Exposure
    columns: dict[str, np.ndarray] = field(default_factory=dict)
    pair_columns: dict[str, np.ndarray] = field(default_factory=dict)
    off_prompt: npt.NDArray[np.int64] = field(default_factory=lambda: np.empty(0, np.int64))
    off_delayed: npt.NDArray[np.int64] = field(default_factory=lambda: np.empty(0, np.int64))
    off_window: npt.NDArray[np.int64] = field(default_factory=lambda: np.empty(0, np.int64))
    accidentals: Accidentals | None = None

    @property
    def vetoed(self) -> npt.NDArray[np.bool_]:
        """Per event: vetoed by any veto (including the gap veto)."""
        return self.veto_bits != 0

    def vetoed_by(self, name: str) -> npt.NDArray[np.bool_]:
        """Per event: vetoed by the veto called ``name`` (``"gap"``: the gap veto)."""
        if name == "gap":
            bit = 1 << 31
        else:
            names = [v.name for v in self.spec.vetoes]
            if name not in names:
                raise ConfigError(f"no veto named {name!r}; vetoes are {[*names, 'gap']}")
            bit = 1 << names.index(name)
        return (self.veto_bits & np.uint32(bit)) != 0
