"""Exposure of a correlation result: good time, vetoed time, gaps, volume-veto efficiency.

Times are integer nanoseconds; all sums are exact integers, so an exposure is identical
however the stream was partitioned. Volume vetoes (cylinders around muon tracks, spheres
around vertices) do not remove time but volume: their efficiency is estimated with a
fixed-seed Monte Carlo of random (time, point) samples, which makes it deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
import numpy.typing as npt

from jaas.errors import ConfigError

__all__ = ["Exposure", "intervals_measure", "mc_samples", "normalize_intervals"]

Intervals = npt.NDArray[np.int64]  # shape (k, 2): [start, end) in ns


def normalize_intervals(iv: Any, *, what: str = "segments") -> Intervals:
    """Return ``iv`` as sorted, disjoint, non-touching [start, end) int64 intervals.

    Args:
        iv: an (k, 2) array-like of [start, end) ns pairs, in any order, may overlap.
        what: name used in error messages.

    Example:
        >>> normalize_intervals([[5, 9], [0, 5]]).tolist()
        [[0, 9]]
    """
    arr = np.asarray(iv, dtype=np.int64).reshape(-1, 2) if len(iv) else np.empty((0, 2), np.int64)
    bad = np.flatnonzero(arr[:, 1] < arr[:, 0])
    if bad.size:
        k = int(bad[0])
        raise ConfigError(
            f"{what}[{k}] = [{arr[k, 0]}, {arr[k, 1]}) ends before it starts; "
            "expected [start, end) in ns with start <= end"
        )
    from jaas.engine.core.kernels import union_intervals  # numba: on first use

    order = np.argsort(arr[:, 0], kind="stable")
    lo, hi = union_intervals(arr[order, 0].copy(), arr[order, 1].copy())
    return np.stack([lo, hi], axis=1) if lo.size else np.empty((0, 2), np.int64)


def intervals_measure(iv: Intervals) -> int:
    """Total length in ns of disjoint intervals."""
    return int((iv[:, 1] - iv[:, 0]).sum()) if len(iv) else 0


def _intersect(a: Intervals, b: Intervals) -> Intervals:
    from jaas.engine.core.kernels import intersect_intervals  # numba: on first use

    lo, hi = intersect_intervals(
        np.ascontiguousarray(a[:, 0]),
        np.ascontiguousarray(a[:, 1]),
        np.ascontiguousarray(b[:, 0]),
        np.ascontiguousarray(b[:, 1]),
    )
    return np.stack([lo, hi], axis=1)


def mc_samples(
    segments: Intervals, n: int, radius: float, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``n`` random (t, x, y, z): t uniform in the good time, point uniform in a sphere.

    Sorted by time; a function of (segments, n, radius, seed) only.
    """
    total = intervals_measure(segments)
    rng = np.random.default_rng(seed)
    if total == 0 or n == 0:
        e = np.empty(0)
        return np.empty(0, np.int64), e, e, e
    u = np.sort(rng.integers(0, total, n))
    lengths = segments[:, 1] - segments[:, 0]
    cum = np.cumsum(lengths)
    k = np.searchsorted(cum, u, side="right")
    t = segments[k, 0] + (u - (cum[k] - lengths[k]))
    v = rng.normal(size=(n, 3))
    v /= np.linalg.norm(v, axis=1)[:, None]
    r = radius * np.cbrt(rng.random(n))
    p = v * r[:, None]
    return t, p[:, 0].copy(), p[:, 1].copy(), p[:, 2].copy()


@dataclass
class Exposure:
    """Where the time went, in integer ns, plus volume-veto efficiencies.

    Attributes:
        span_ns: first segment start to last segment end.
        good_ns: total length of the good-time segments.
        gap_ns: span minus good time (gaps between segments, bad or missing files).
        bad_ns: the part of the gaps the caller declared bad or missing files.
        veto_ns: good time inside whole-detector veto intervals (muons + gap veto).
        gap_veto_ns: the part of ``veto_ns`` only due to the gap veto: good time at the
            start of each segment (after a gap) vetoed because a muon may have hidden
            in the gap. It is good time, not part of ``gap_ns``, and may exceed it.
        livetime_ns: ``good_ns - veto_ns``.
        n_segments: number of good-time segments.
        mc_samples: Monte Carlo samples drawn for the volume vetoes (fixed seed).
        mc_live: samples falling in live time (not whole-detector vetoed).
        mc_pass: samples in live time outside every volume veto.
        mc_pass_by_veto: per volume veto name, live samples it does not veto.
    """

    span_ns: int = 0
    good_ns: int = 0
    gap_ns: int = 0
    bad_ns: int = 0
    veto_ns: int = 0
    gap_veto_ns: int = 0
    livetime_ns: int = 0
    n_segments: int = 0
    mc_samples: int = 0
    mc_live: int = 0
    mc_pass: int = 0
    mc_pass_by_veto: dict[str, int] = field(default_factory=dict)

    @property
    def volume_efficiency(self) -> tuple[float, float]:
        """(efficiency, binomial error) of all volume vetoes together; (1, 0) if none."""
        return _eff(self.mc_pass, self.mc_live)

    def efficiency_of(self, name: str) -> tuple[float, float]:
        """(efficiency, binomial error) of one volume veto."""
        return _eff(self.mc_pass_by_veto[name], self.mc_live)

    @property
    def livetime_fraction(self) -> float:
        """Livetime over good time."""
        return self.livetime_ns / self.good_ns if self.good_ns else 0.0

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON view: the integer fields, seconds, and efficiencies."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            out[f.name] = dict(value) if isinstance(value, dict) else value
            if f.name == "livetime_ns":
                out["livetime_s"] = self.livetime_ns / 1e9
                out["livetime_fraction"] = self.livetime_fraction
        out["volume_efficiency"], out["volume_efficiency_err"] = self.volume_efficiency
        return out

    def __str__(self) -> str:
        def row(label: str, ns: int) -> str:
            frac = f"{100 * ns / self.span_ns:8.3f} %" if self.span_ns else ""
            return f"  {label:<34}{ns / 1e9:16.3f} s {frac}"

        lines = ["exposure (fractions of the span)"]
        lines += [row(label, getattr(self, name)) for label, name in _TIME_ROWS]
        if self.mc_pass_by_veto:
            eff, err = self.volume_efficiency
            lines.append(f"  volume vetoes efficiency: {eff:.5f} +- {err:.5f} (MC)")
            for name in sorted(self.mc_pass_by_veto):
                e, s = self.efficiency_of(name)
                lines.append(f"    {name:<30}{e:.5f} +- {s:.5f}")
        return "\n".join(lines)


# The time budget as printed: (label, field), nested items indented under their total.
_TIME_ROWS = (
    ("span", "span_ns"),
    ("good time", "good_ns"),
    ("gaps", "gap_ns"),
    ("  of which bad/missing files", "bad_ns"),
    ("whole-detector vetoes", "veto_ns"),
    ("  of which gap veto (after gaps)", "gap_veto_ns"),
    ("livetime", "livetime_ns"),
)


def _eff(k: int, n: int) -> tuple[float, float]:
    if n == 0:
        return 1.0, 0.0
    p = k / n
    return p, float(np.sqrt(p * (1 - p) / n))


def gap_exposure(segments: Intervals, bad: Intervals) -> tuple[int, int, int]:
    """(span_ns, gap_ns, bad_ns) of normalised segments and bad/missing intervals."""
    if len(segments) == 0:
        return 0, 0, 0
    span = np.array([[segments[0, 0], segments[-1, 1]]], np.int64)
    span_ns = intervals_measure(span)
    gap_ns = span_ns - intervals_measure(segments)
    # bad time = bad intervals inside the span, outside the good segments
    gaps = np.stack([segments[:-1, 1], segments[1:, 0]], axis=1)
    bad_ns = intervals_measure(_intersect(_intersect(bad, span), gaps)) if len(bad) else 0
    return span_ns, gap_ns, bad_ns
