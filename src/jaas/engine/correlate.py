"""Time correlation of an event stream: vetoes, coincidences, off-time windows, exposure.

The pure API of the engine. A *stream* is a mapping of equal-length numpy columns,
time-sorted: ``t`` (int64 ns), ``x, y, z`` (m), muon track points ``mx0 .. mz1`` (m, NaN
when untracked), and boolean masks computed by the caller (prompt-like, delayed-like,
muon classes...) on ALL triggers, never on a pre-filtered subset. ``segments`` are the
good-time [start, end) ns intervals; events outside them are ignored everywhere.

Semantics (the contract; ``reference.py`` implements them literally):

* Whole-detector veto (``Veto.detector``): an event at ``t`` is vetoed when a trigger of
  the mask, inside a segment, has ``t_j <= t < t_j + window`` (ties in time included).
  Veto intervals are real time: they cross gaps. With ``Spec.gap_veto`` (default on), the
  first ``W`` ns of every segment, ``W`` the longest whole-detector window, are vetoed too
  (a muon may have hidden in the gap before) and reported as "lost to gaps".
* Cylinder veto: within ``radius`` (strict) of the infinite line through a tracked
  trigger's entry and exit points, for ``t_j <= t < t_j + window``; untracked triggers
  (NaN track) are ignored by it (give them a whole-detector veto). Sphere veto: within
  ``radius`` of the trigger's vertex. A trigger never vetoes itself with a volume veto.
* Coincidence, delayed-first (junosw SelectionAlg): delayed candidate = delayed mask, not
  vetoed, in a segment. Prompt candidates = prompt mask, not vetoed, same segment, with
  ``dt_min < t_d - t_p < dt_max`` (strict both sides) and ``|r_d - r_p| < dr_max``
  (optional). The window ``[t_d - dt_max, t_d - dt_min]`` must lie inside the delayed's
  segment, so no pair window spans a gap. Modes: ``"all"`` every pair; ``"nearest"`` the
  prompt closest in time (tie: the later one in stream order); ``"exactly_one"`` keep the
  delayed only if exactly one prompt candidate is in the window (JUNO standard).
* Isolation (applied after the mode picked the pair): no other event of the mask
  (vetoed or not) within the closed ``[t_p - before, t_d + after]`` apart
  from the pair; a pair whose isolation window leaves the segment is rejected.
* Off-time windows (accidentals): the prompt window shifted back by ``s_k = start +
  (k - 1) * step``, ``k = 1..n`` (``step`` defaults to the window width, so windows tile
  ``[start, start + n * width]`` before the delayed): prompt candidates satisfy
  ``dt_min < t_d - s_k - t_p < dt_max``, with the same vetoes, dr, mode and segment rule.
  Isolation uses ``[t_p - before, t_p + dt]`` and ``[t_d - dt, t_d + after]`` with
  ``dt = t_d - s_k - t_p`` (equal to the on-time window when ``s_k = 0``).
  The estimate is ``n_off / n`` on-time pairs, error ``sqrt(n_off) / n``.
* Time since the last event of a mask (``SinceLast``): the previous such event in stream
  order, same segment, at most ``horizon`` ns before (inclusive); +inf if none, and the
  distance to its track (NaN if untracked or none).

Results are identical for any partitioning and thread count (see ``partition.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import numpy as np
import numpy.typing as npt

from jaas.engine.exposure import Exposure
from jaas.engine.kernels import first_unsorted
from jaas.errors import ConfigError

if TYPE_CHECKING:
    from jaas.engine.partition import VetoMemo

__all__ = [
    "TRACK_COLUMNS",
    "Accidentals",
    "Coincidence",
    "Isolation",
    "OffTime",
    "Result",
    "SinceLast",
    "Spec",
    "Veto",
    "correlate",
    "standard_ibd",
]

TRACK_COLUMNS = ("mx0", "my0", "mz0", "mx1", "my1", "mz1")
Mode = Literal["all", "nearest", "exactly_one"]
MODES: tuple[str, ...] = ("all", "nearest", "exactly_one")
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
    kind: Literal["detector", "cylinder", "sphere"]
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
    """Derived columns ``name`` (ns since the last ``mask`` event) and ``name + "_dist"``."""

    name: str
    mask: str
    horizon_ns: int = 10 * _S


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
            if v.kind not in ("detector", "cylinder", "sphere"):
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
        columns: derived per-event columns (``SinceLast``).
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


def standard_ibd(
    *,
    prompt: str = "prompt",
    delayed: str = "delayed",
    muon: str = "muon",
    muon_window_ns: int = 1_500_000,  # 1.5 ms whole detector (physics.md, S: Yellow Book)
    dt_max_ns: int = 1_000_000,  # 0 < dt < 1.0 ms (physics.md, V: junosw SelectionAlg)
    dr_max: float = 1.5,  # dR < 1.5 m (physics.md, V)
    offtime: OffTime | None = None,
) -> Spec:
    """The standard IBD correlation (physics.md) on caller-computed masks.

    Energy and fiducial cuts (prompt 0.7-12 MeV, delayed 1.9-2.5 MeV, r < 17.2 m) belong
    to the ``prompt`` and ``delayed`` masks.

    Example:
        >>> spec = standard_ibd()
        >>> spec.coincidence.mode
        'exactly_one'
    """
    return Spec(
        vetoes=(Veto.detector("muon", muon, muon_window_ns),),
        coincidence=Coincidence(
            prompt, delayed, dt_max_ns, 0, dr_max, "exactly_one", offtime=offtime
        ),
    )


def correlate(
    columns: Mapping[str, np.ndarray],
    spec: Spec,
    segments: npt.ArrayLike | None = None,
    *,
    bad: npt.ArrayLike | None = None,
    partition_events: int | None = None,
    partition_ns: int | None = None,
    threads: int = 1,
    veto_memo: VetoMemo | None = None,
) -> Result:
    """Run vetoes, coincidences, off-time windows and exposure over one stream.

    Args:
        columns: time-sorted stream columns (see module docs and ``spec.required_columns``).
        spec: what to compute.
        segments: good-time [start, end) ns intervals; default one segment covering all
            events, ``[t[0], t[-1] + 1)``.
        bad: [start, end) intervals of bad or missing files, for the exposure report.
        partition_events: split into time partitions of about this many events.
        partition_ns: or of about this duration (ignored if ``partition_events`` is set).
        threads: partitions processed on this many threads (identical results).
        veto_memo: what a warm query on the same (read-only) columns may reuse; owned
            by the caller (e.g. a dataset's column cache), never global.

    Example:
        >>> t = np.array([0, 2_000, 2_100, 9_000], np.int64)
        >>> cols = {"t": t, "prompt": np.array([False, True, False, False]),
        ...         "delayed": np.array([False, False, True, True])}
        >>> spec = Spec(coincidence=Coincidence("prompt", "delayed", 1_000, mode="all"))
        >>> r = correlate(cols, spec, segments=[[0, 10_000]])
        >>> r.prompt.tolist(), r.delayed.tolist(), r.exposure.livetime_ns
        ([1], [2], 10000)
    """
    from jaas.engine.partition import merge, plan_partitions, run_partitions

    spec.validate()
    cols = _check_columns(columns, spec)
    t = cols["t"]
    if segments is None:
        segs = np.array([[t[0], t[-1] + 1]], np.int64) if t.size else np.empty((0, 2), np.int64)
    else:
        from jaas.engine.exposure import normalize_intervals

        segs = normalize_intervals(segments, what="segments")
    before, after = spec.halo()
    parts = plan_partitions(
        t,
        halo_before_ns=before,
        halo_after_ns=after,
        target_events=partition_events,
        target_ns=partition_ns,
    )
    partials = run_partitions(cols, parts, spec, segs, threads=threads, memo=veto_memo)
    return merge(partials, spec, segs, bad=bad)


def _check_columns(columns: Mapping[str, np.ndarray], spec: Spec) -> dict[str, np.ndarray]:
    missing = [c for c in spec.required_columns() if c not in columns]
    if missing:
        raise ConfigError(
            f"stream lacks columns {missing} needed by the spec; it has {sorted(columns)}"
        )
    t = np.asarray(columns["t"])
    if t.ndim != 1 or t.dtype.kind not in "iu":
        raise ConfigError(f"column 't' must be 1-d integer ns, got {t.dtype} shape {t.shape}")
    t = t.astype(np.int64, copy=False)
    out: dict[str, np.ndarray] = {"t": t}
    masks = {v.trigger for v in spec.vetoes} | {s.mask for s in spec.since}
    if spec.coincidence is not None:
        c = spec.coincidence
        masks |= {c.prompt, c.delayed} | {i.mask for i in c.isolation}
    for name in spec.required_columns():
        if name == "t":
            continue
        a = np.asarray(columns[name])
        if a.shape != t.shape:
            raise ConfigError(f"column {name!r} has shape {a.shape}, expected {t.shape} like 't'")
        if name in masks and a.dtype != np.bool_:
            raise ConfigError(f"mask column {name!r} must be bool, got {a.dtype}")
        out[name] = a
    for name in ("x", "y", "z", *TRACK_COLUMNS):
        if name in columns and name not in out:
            out[name] = np.asarray(columns[name])
    i = int(first_unsorted(t))
    if i >= 0:
        raise ConfigError(
            f"column 't' is not time-sorted: entry {i} (t={t[i]}) precedes entry {i - 1} "
            f"(t={t[i - 1]}); sort the stream by time first"
        )
    return out
