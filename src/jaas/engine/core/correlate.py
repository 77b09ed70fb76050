"""Time correlation of an event stream: vetoes, coincidences, off-time windows, exposure.

The pure API of the engine. A *stream* is a mapping of equal-length numpy columns,
time-sorted: ``t`` (int64 ns), ``x, y, z`` (m), muon track points ``mx0 .. mz1`` (m, NaN
when untracked), and boolean masks computed by the caller (prompt-like, delayed-like,
muon classes...) on ALL triggers, never on a pre-filtered subset. ``segments`` are the
good-time [start, end) ns intervals; events outside them are ignored everywhere.

Semantics (the contract; ``tests/engine/_reference.py`` implements them literally):

* Whole-detector veto (``Veto.detector``): an event at ``t`` is vetoed when a trigger of
  the mask, inside a segment, has ``t_j <= t < t_j + window`` (ties in time included).
  Veto intervals are real time: they cross gaps. With ``Spec.gap_veto`` (default on), the
  first ``W`` ns of every segment, ``W`` the longest whole-detector window, are vetoed too
  (a muon may have hidden in the gap before) and reported as the gap veto.
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

from collections.abc import Callable, Mapping

import numpy as np
import numpy.typing as npt

from jaas.engine.core import spec as _spec
from jaas.engine.core.exposure import normalize_intervals
from jaas.engine.core.partition import VetoMemo, merge, plan_partitions, run_partitions
from jaas.engine.core.spec import (
    MODES as MODES,
)
from jaas.engine.core.spec import (
    TRACK_COLUMNS as TRACK_COLUMNS,
)
from jaas.engine.core.spec import (
    VETO_KINDS as VETO_KINDS,
)
from jaas.engine.core.spec import (
    Accidentals as Accidentals,
)
from jaas.engine.core.spec import (
    Coincidence as Coincidence,
)
from jaas.engine.core.spec import (
    Isolation as Isolation,
)
from jaas.engine.core.spec import (
    Mode as Mode,
)
from jaas.engine.core.spec import (
    OffTime as OffTime,
)
from jaas.engine.core.spec import (
    Result as Result,
)
from jaas.engine.core.spec import (
    SinceLast as SinceLast,
)
from jaas.engine.core.spec import (
    SinceRows as SinceRows,
)
from jaas.engine.core.spec import (
    Spec as Spec,
)
from jaas.engine.core.spec import (
    Veto as Veto,
)
from jaas.engine.core.spec import (
    VetoKind as VetoKind,
)
from jaas.errors import ConfigError

__all__ = [*_spec.__all__, "VetoMemo", "correlate", "standard_ibd"]


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
    on_partition: Callable[[int, int], None] | None = None,
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
        on_partition: called with (partitions done, total) as partitions finish.

    Example:
        >>> t = np.array([0, 2_000, 2_100, 9_000], np.int64)
        >>> cols = {"t": t, "prompt": np.array([False, True, False, False]),
        ...         "delayed": np.array([False, False, True, True])}
        >>> spec = Spec(coincidence=Coincidence("prompt", "delayed", 1_000, mode="all"))
        >>> r = correlate(cols, spec, segments=[[0, 10_000]])
        >>> r.prompt.tolist(), r.delayed.tolist(), r.exposure.livetime_ns
        ([1], [2], 10000)
    """
    spec.validate()
    cols = _check_columns(columns, spec, veto_memo)
    t = cols["t"]
    if segments is None:
        segs = np.array([[t[0], t[-1] + 1]], np.int64) if t.size else np.empty((0, 2), np.int64)
    else:
        segs = normalize_intervals(segments, what="segments")
    before, after = spec.halo()
    parts = plan_partitions(
        t,
        halo_before_ns=before,
        halo_after_ns=after,
        target_events=partition_events,
        target_ns=partition_ns,
    )
    partials = run_partitions(
        cols, parts, spec, segs, threads=threads, memo=veto_memo, on_partition=on_partition
    )
    return merge(partials, spec, segs, bad=bad, threads=threads, memo=veto_memo)


def _check_columns(
    columns: Mapping[str, np.ndarray], spec: Spec, memo: VetoMemo | None = None
) -> dict[str, np.ndarray]:
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
    from jaas.engine.core._intervals import first_unsorted  # numba: on first use

    i = -1 if memo is not None and memo.known_sorted(t) else int(first_unsorted(t))
    if i >= 0:
        raise ConfigError(
            f"column 't' is not time-sorted: entry {i} (t={t[i]}) precedes entry {i - 1} "
            f"(t={t[i - 1]}); sort the stream by time first"
        )
    return out
