"""Per-batch reconstruction: hits (``HitEvents``) in, ESD columns out; class, energy, vertex."""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from jaas.detector import Detector
from jaas.formats.events import HitEvents
from jaas.formats.schema import EventClass, TriggerBit
from jaas.reco.calib import Calibration
from jaas.reco.muon import fit_track
from jaas.reco.vertex import TimeTables, fit_vertex, time_tables

__all__ = ["Quality", "RecoConfig", "reconstruct_batch"]

F64 = npt.NDArray[np.float64]


class Quality(enum.IntFlag):
    """Bits of the ESD ``quality`` column (0 = good)."""

    NO_HITS = 1  # no hit at all: nothing reconstructed
    LOW_SIGNAL = 2  # too little light above dark noise to fit a vertex (vertex NaN)
    FIT_FAILED = 4  # vertex fit did not converge (vertex and energy unreliable)
    OUTSIDE = 8  # fitted vertex outside the LS sphere by more than 0.5 m
    TRACK_FAILED = 16  # muon track fit failed (track NaN, tracked False)
    INCONSISTENT = 32  # far more hits outside the fitted time window than dark noise explains


@dataclass(frozen=True)
class RecoConfig:
    """Thresholds of the event classification; every default cites its source.

    Attributes:
        muon_threshold_mev: CD energy above which an event is a muon even without WP tag
            (E: far above natural radioactivity and IBD, < 12 MeV, physics.md; below the
            ~100 MeV of 0.5 m of muon track at ~2 MeV/cm).
        min_fit_mev: below this (dark-subtracted, centre scale) no vertex is fitted.
        min_fit_hits: fewer hits than this: no vertex fit.
        dedx_mev_per_m: muon dE/dx in LS (E: ~2 MeV/cm, physics.md).
        showering_excess_mev: a muon is showering when its energy exceeds the track's
            dE/dx expectation by this (E) plus ``showering_rel`` of it.
        showering_rel: relative allowance for ionisation (Landau) fluctuations (E).
    """

    muon_threshold_mev: float = 50.0
    min_fit_mev: float = 0.1
    min_fit_hits: int = 10
    dedx_mev_per_m: float = 200.0
    showering_excess_mev: float = 500.0
    showering_rel: float = 0.2


def _event_index(hits: HitEvents) -> npt.NDArray[np.int64]:
    return np.repeat(np.arange(len(hits), dtype=np.int64), hits.nhits)


def reconstruct_batch(
    hits: HitEvents,
    detector: Detector,
    calib: Calibration,
    *,
    config: RecoConfig | None = None,
    tables: TimeTables | None = None,
) -> dict[str, npt.NDArray[np.generic]]:
    """Reconstruct a batch of events into ESD columns (pure: no I/O, deterministic).

    Args:
        hits: the events.
        detector: the detector model (geometry, PMT types, time profile).
        calib: energy scale, non-uniformity map and dark rate for this detector.
        config: classification thresholds (default ``RecoConfig()``).
        tables: precomputed ``time_tables(detector)`` (computed when None).

    Returns:
        A dict with every column of ``jaas.formats.esd.ESD_COLUMNS``.

    Example:
        >>> from jaas.reco.calib import calibration_for  # doctest: +SKIP
        >>> det = Detector(light_scale=0.1, pmt_scale=0.05)  # doctest: +SKIP
        >>> cols = reconstruct_batch(det.respond(truth, rng=1), det,
        ...                          calibration_for(0.1, 0.05))  # doctest: +SKIP
    """
    cfg = config or RecoConfig()
    tab = tables if tables is not None else time_tables(detector)
    p = detector.params
    n = len(hits)
    ev = _event_index(hits)
    nhit = hits.nhits.astype(np.int32)
    charge = hits.charge.astype(np.float64)
    q_tot = np.bincount(ev, weights=charge, minlength=n)
    dark_pe = calib.dark_rate_hz * 1e-9 * detector.n_pmt * p.window_ns  # whole window
    e_quick = (q_tot - dark_pe) / calib.pe_per_mev
    trig = hits.trigger.astype(np.int64)
    wp = (trig & int(TriggerBit.WP)) != 0
    cd = (trig & int(TriggerBit.CD)) != 0
    muon = (e_quick > cfg.muon_threshold_mev) | (wp & cd)
    wp_only = wp & ~muon
    cls = np.where(muon, EventClass.MUON, np.where(wp_only, EventClass.WP_ONLY, EventClass.POINT))

    nan = np.full(n, np.nan)
    out: dict[str, npt.NDArray[np.generic]] = {
        "event_id": hits.event_id.astype(np.uint64),
        "t": hits.t.astype(np.int64),
        "E": np.maximum(e_quick, 0.0),
        "x": nan.copy(),
        "y": nan.copy(),
        "z": nan.copy(),
        "pe": q_tot,
        "nhit": nhit,
        "cls": cls.astype(np.uint8),
        "wp": wp,
        "showering": np.zeros(n, bool),
        "tracked": np.zeros(n, bool),
        **{c: nan.copy() for c in ("mx0", "my0", "mz0", "mx1", "my1", "mz1")},
        "quality": np.where(nhit == 0, int(Quality.NO_HITS), 0).astype(np.uint8),
    }
    for i in range(n):
        a, b = int(hits.offsets[i]), int(hits.offsets[i + 1])
        if a == b:
            continue
        pmt, q, t = hits.pmt[a:b], charge[a:b], hits.time[a:b]
        if muon[i]:
            _muon(out, i, detector, calib, cfg, pmt, q, t, q_tot[i] - dark_pe)
        elif not wp_only[i]:
            _point(out, i, detector, calib, cfg, tab, pmt, q, t, e_quick[i])
    return out


def _point(
    out: dict[str, npt.NDArray[np.generic]],
    i: int,
    det: Detector,
    calib: Calibration,
    cfg: RecoConfig,
    tab: TimeTables,
    pmt: npt.NDArray[np.uint32],
    q: F64,
    t: npt.NDArray[np.float32],
    e_quick: float,
) -> None:
    p = det.params
    if len(pmt) < cfg.min_fit_hits or e_quick < cfg.min_fit_mev:
        out["quality"][i] |= int(Quality.LOW_SIGNAL)
        return
    dark_hits = calib.dark_rate_hz * 1e-9 * det.n_pmt * p.window_ns
    fit = fit_vertex(det, tab, pmt, q, t, dark_hits=dark_hits)
    v = fit.vertex
    quality = 0 if fit.converged else int(Quality.FIT_FAILED)
    r = float(np.linalg.norm(v))
    if r > p.ls_radius_m + 0.5:
        quality |= int(Quality.OUTSIDE)
    # energy: in-window charge minus the dark-noise expectation, over the light yield at r
    pos = det.pmt_pos[np.asarray(pmt, np.int64)]
    res = t - fit.t0 - np.linalg.norm(pos - v, axis=1) / det.speed_m_per_ns
    lo, hi = calib.energy_window_ns
    inside = (res >= lo) & (res < hi)
    n_in = int(inside.sum())
    width = hi - lo
    dark = calib.dark_rate_hz * 1e-9 * (det.n_pmt * width + n_in * (p.window_ns - width))
    light = calib.pe_per_mev * float(calib.relative_light(r))
    out["E"][i] = max(float(q[inside].sum()) - dark, 0.0) / light
    # goodness of fit: hits outside the signal window should be dark noise only
    dark_out = calib.dark_rate_hz * 1e-9 * det.n_pmt * (p.window_ns - width)
    if len(t) - n_in > dark_out + 5.0 * math.sqrt(dark_out) + 5.0 + 0.02 * n_in:
        quality |= int(Quality.INCONSISTENT)
    out["x"][i], out["y"][i], out["z"][i] = v
    out["quality"][i] |= quality


def _muon(
    out: dict[str, npt.NDArray[np.generic]],
    i: int,
    det: Detector,
    calib: Calibration,
    cfg: RecoConfig,
    pmt: npt.NDArray[np.uint32],
    q: F64,
    t: npt.NDArray[np.float32],
    signal_pe: float,
) -> None:
    track = fit_track(det, pmt, q, t)
    if not track.converged:
        out["quality"][i] |= int(Quality.TRACK_FAILED)
        # no track: light yield averaged over the LS volume (uniform in r^3)
        r = det.params.ls_radius_m * np.cbrt((np.arange(64) + 0.5) / 64)
        out["E"][i] = max(signal_pe, 0.0) / (
            calib.pe_per_mev * float(calib.relative_light(r).mean())
        )
        out["showering"][i] = (
            out["E"][i] > cfg.showering_excess_mev + cfg.dedx_mev_per_m * 2 * det.params.ls_radius_m
        )
        return
    a, b = track.entry, track.exit
    s = (np.arange(64) + 0.5) / 64
    along = a + s[:, None] * (b - a)
    light = calib.pe_per_mev * float(calib.relative_light(np.linalg.norm(along, axis=1)).mean())
    energy = max(signal_pe, 0.0) / light
    length = float(np.linalg.norm(b - a))
    expect = cfg.dedx_mev_per_m * length
    out["E"][i] = energy
    out["showering"][i] = energy > expect * (1.0 + cfg.showering_rel) + cfg.showering_excess_mev
    out["tracked"][i] = True
    for k, c in enumerate("xyz"):
        out[f"m{c}0"][i] = a[k]
        out[f"m{c}1"][i] = b[k]
        out[c][i] = 0.5 * (a[k] + b[k])
    if not math.isfinite(energy):
        out["quality"][i] |= int(Quality.TRACK_FAILED)
