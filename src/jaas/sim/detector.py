"""Hit-level central-detector response: truth rows in, PMT hits (``HitEvents``) out.

Conventions
-----------
* **Time.** ``HitEvents.t`` is the truth ``t`` (int64 ns): the interaction time of a
  point-like event, the time a muon enters the detector at (mx0, my0, mz0). Hit times are
  in ns relative to it: photon time of flight + scintillation emission + transit-time
  spread, so the earliest photons of an event at the centre arrive at about
  +97 ns (19.434 m at c/1.5), those of an event near the edge at about +10 ns.
* **Readout window.** ``[window_start_ns, window_start_ns + window_ns)`` relative to ``t``
  (default -200 ns to +800 ns). Dark hits are uniform in it; a hit whose time falls
  outside it is dropped.
* **One hit per PMT per event.** Signal PEs and dark-noise PEs of the same PMT are merged:
  the time is the earliest PE, the charge is the sum over all PEs (each PE has gain
  Gaussian(1, gain_sigma) truncated positive; n PEs: Gaussian(n, gain_sigma sqrt n)).
  Hits of an event are sorted by PMT id.
* **Trigger bits.** ``TriggerBit.CD`` when the visible energy ``E_true > 0``,
  ``TriggerBit.WP`` when ``wp`` is true, ``TriggerBit.PERIODIC`` when neither (such events
  hold dark noise only).
* **Light model.** Expected PEs on PMT i for a deposit E at v:
  ``LY E light_scale eff_i cos(theta_i) exp(-d_i/L_att) / d_i^2`` normalised so that the
  total at the centre is ``LY E light_scale``; the first-PE time of a PMT with n PEs is
  drawn exactly as the minimum of n single-PE delays (see ``_optics.sample_first_pe``).
* **Muons** (``role == "muon"`` or ``source`` in muon/muon_wp, with ``E_true > 0``) emit
  light from segments of at most ``muon_segment_m`` along the track, energy split by
  length; a segment emits at the time the muon (at c) reaches it. A PMT's hit time is
  the earliest segment arrival plus the first-PE delay of the PEs arriving within
  ``muon_early_ns`` of it (an approximation of the exact minimum over all PEs).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from jaas.detector.model import Detector as _Model
from jaas.detector.params import DetectorParams
from jaas.errors import ConfigError
from jaas.formats.events import HitEvents
from jaas.formats.schema import Source, TriggerBit
from jaas.sim import _optics

__all__ = ["Detector", "DetectorParams", "pmt_positions"]

pmt_positions = _optics.pmt_positions

F64 = npt.NDArray[np.float64]
_CHUNK_CELLS = 1 << 19  # events x PMTs handled at once on the point-like path
_TRACK = ("mx0", "my0", "mz0", "mx1", "my1", "mz1")
_MUON_SOURCES = (str(Source.MUON), str(Source.MUON_WP))


class Detector(_Model):
    """The detector response model: :class:`jaas.detector.Detector` plus ``respond``.

    Same arguments and attributes as :class:`jaas.detector.Detector`.

    Example:
        >>> det = Detector(light_scale=0.1, pmt_scale=0.05)
        >>> hits = det.respond({"event_id": [0], "t": [0], "E_true": [2.0],
        ...                     "x": [0.0], "y": [0.0], "z": [1.0]}, rng=1)
        >>> len(hits), int(hits.trigger[0]), int(hits.nhits[0]) > 100
        (1, 1, True)
    """

    # ----------------------------------------------------------------- response
    def respond(
        self,
        truth: pa.Table | Mapping[str, npt.ArrayLike],
        rng: np.random.Generator | int | None = None,
    ) -> HitEvents:
        """Simulate the PMT hits of every truth row: one event per row, in the same order.

        Args:
            truth: a ``pyarrow.Table`` or mapping of arrays with TRUTH_SCHEMA columns;
                needs ``event_id, t, E_true, x, y, z``; muon rows also need
                ``mx0..mz1``; ``role``, ``source`` and ``wp`` are optional.
            rng: a numpy Generator (or a seed); same seed, same hits.

        Returns:
            HitEvents with ``event_id`` and ``t`` copied from the truth.

        Example:
            >>> det = Detector(light_scale=0.1, pmt_scale=0.05)
            >>> ev = det.respond({"event_id": [7], "t": [10**18], "E_true": [0.0],
            ...                   "x": [0.0], "y": [0.0], "z": [0.0]}, rng=0)
            >>> int(ev.event_id[0]), int(ev.trigger[0])
            (7, 4)
        """
        gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
        cols = _truth_columns(truth)
        n_ev = len(cols["event_id"])
        energy = cols["E_true"]
        vertex = np.stack([cols["x"], cols["y"], cols["z"]], axis=1)
        muon = cols["muon"] & (energy > 0)
        self._check_geometry(cols, vertex, energy, muon)

        trigger = np.where(energy > 0, int(TriggerBit.CD), 0)
        trigger |= np.where(cols["wp"], int(TriggerBit.WP), 0)
        trigger = np.where(trigger == 0, int(TriggerBit.PERIODIC), trigger)

        rows: list[npt.NDArray[np.int64]] = []
        pmts: list[npt.NDArray[np.int64]] = []
        charges: list[F64] = []
        times: list[F64] = []
        chunk = max(1, _CHUNK_CELLS // self.n_pmt)
        point_rows = np.flatnonzero(~muon)
        for start in range(0, len(point_rows), chunk):
            sel = point_rows[start : start + chunk]
            ev, pmt, q, tt = self._respond_points(vertex[sel], energy[sel], gen)
            rows.append(sel[ev])
            pmts.append(pmt)
            charges.append(q)
            times.append(tt)
        for row in np.flatnonzero(muon):
            track = np.array([cols[c][row] for c in _TRACK], dtype=np.float64)
            ev, pmt, q, tt = self._respond_muon(track, float(energy[row]), gen)
            rows.append(np.full(len(pmt), row, dtype=np.int64))
            pmts.append(pmt)
            charges.append(q)
            times.append(tt)

        row_all = np.concatenate(rows) if rows else np.zeros(0, np.int64)
        in_order = bool(np.all(row_all[1:] >= row_all[:-1]))
        order = slice(None) if in_order else np.argsort(row_all, kind="stable")
        counts = np.bincount(row_all, minlength=n_ev)
        offsets = np.zeros(n_ev + 1, dtype=np.int64)
        np.cumsum(counts, out=offsets[1:])

        def cat(parts: list[Any], dtype: type) -> Any:
            joined = np.concatenate(parts) if parts else np.zeros(0)
            return joined[order].astype(dtype)

        return HitEvents(
            event_id=np.asarray(cols["event_id"]).astype(np.uint64),
            t=np.asarray(cols["t"]).astype(np.int64),
            trigger=trigger.astype(np.uint16),
            offsets=offsets,
            pmt=cat(pmts, np.uint32),
            charge=cat(charges, np.float32),
            time=cat(times, np.float32),
        )

    # ----------------------------------------------------------------- internals
    def _check_geometry(
        self,
        cols: Mapping[str, Any],
        vertex: F64,
        energy: F64,
        muon: npt.NDArray[np.bool_],
    ) -> None:
        radius = self.params.pmt_radius_m
        point = (energy > 0) & ~muon
        r = np.linalg.norm(vertex, axis=1)
        bad = np.flatnonzero(point & ~(r < radius))
        if bad.size:
            b = int(bad[0])
            raise ConfigError(
                f"truth row {b} (event_id {int(cols['event_id'][b])}): vertex "
                f"({vertex[b, 0]}, {vertex[b, 1]}, {vertex[b, 2]}) m with E_true="
                f"{energy[b]} MeV; expected a finite point inside the PMT sphere "
                f"(r < {radius} m)"
            )
        for i in np.flatnonzero(muon):
            track = np.array([cols[c][i] for c in _TRACK], dtype=np.float64).reshape(2, 3)
            ok = np.all(np.isfinite(track)) and np.all(np.linalg.norm(track, axis=1) < radius)
            if not ok:
                raise ConfigError(
                    f"truth row {int(i)} (event_id {int(cols['event_id'][i])}): muon with "
                    f"E_true={energy[i]} MeV has track {track.tolist()}; expected finite "
                    f"entry/exit points mx0..mz1 inside the PMT sphere (r < {radius} m)"
                )

    def _respond_points(
        self, vertex: F64, energy: F64, rng: np.random.Generator
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], F64, F64]:
        """Hits of k point-like events: (event in chunk, pmt, charge, time) per hit."""
        k, n = len(energy), self.n_pmt
        lit = energy > 0
        v = np.where(lit[:, None], vertex, 0.0)
        mu, d = self._expected(v, np.where(lit, energy, 0.0))
        mu_flat = mu.ravel()
        total = float(mu_flat.sum())
        sparse = total < k * n  # most PMTs get no PE: place Poisson totals instead
        nsig = _thinned_poisson(mu_flat, k, n, rng) if sparse else rng.poisson(mu_flat)
        base = d.ravel() / self.speed_m_per_ns
        return self._finish(k, nsig, nsig, base, rng)

    def _respond_muon(
        self, track: F64, energy: float, rng: np.random.Generator
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], F64, F64]:
        """Hits of one muon crossing from track[:3] to track[3:] with visible energy E."""
        p = self.params
        a, b = track[:3], track[3:]
        length = float(np.linalg.norm(b - a))
        n_seg = max(1, math.ceil(length / p.muon_segment_m))
        s_mid = (np.arange(n_seg) + 0.5) / n_seg  # fraction of the track
        points = a + s_mid[:, None] * (b - a)
        emit = s_mid * length / _optics.C_LIGHT_M_PER_NS
        weight = self.efficiency * (self._norm * energy / n_seg)
        mu, first, early = _optics.muon_light(
            points,
            emit,
            self.pmt_pos,
            weight,
            p.pmt_radius_m,
            p.attenuation_length_m,
            self.speed_m_per_ns,
            p.muon_early_ns,
        )
        nsig = rng.poisson(mu)
        frac = np.divide(early, mu, out=np.ones_like(mu), where=mu > 0)
        n_early = np.maximum(rng.binomial(nsig, np.clip(frac, 0.0, 1.0)), 1)
        return self._finish(1, nsig, n_early, first, rng)

    def _finish(
        self,
        k: int,
        nsig: npt.NDArray[np.int64],
        n_first: npt.NDArray[np.int64],
        base: F64,
        rng: np.random.Generator,
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], F64, F64]:
        """Add dark noise, draw times and charges for k events laid out as (k * n_pmt,) cells.

        ``nsig``: signal PEs per cell; ``n_first``: PEs competing for the first-PE time;
        ``base``: arrival time (ns) of those PEs before emission and transit delays.
        """
        p, n = self.params, self.n_pmt
        lo, width = p.window_start_ns, p.window_ns
        n_dark = rng.poisson(n * p.dark_rate_hz * width * 1e-9, size=k)
        dark_cell = np.repeat(np.arange(k) * n, n_dark) + rng.integers(0, n, n_dark.sum())
        dark_time = lo + width * rng.random(dark_cell.size)
        ndark = np.bincount(dark_cell, minlength=k * n)
        cells = np.flatnonzero((nsig > 0) | (ndark > 0))

        time = np.full(cells.size, np.inf)
        if dark_cell.size:
            tdark = np.full(k * n, np.inf)
            np.minimum.at(tdark, dark_cell, dark_time)
            time = tdark[cells]
        sig = nsig[cells] > 0
        sig_cells = cells[sig]
        pmt_sig = sig_cells % n
        tsig = base[sig_cells].copy()
        for dyn in (False, True):
            m = self.pmt_is_dynode[pmt_sig] == dyn
            if m.any():
                cdf, grid = self._cdf[dyn]
                tsig[m] += _optics.sample_first_pe(n_first[sig_cells[m]], cdf, grid, rng)
        time[sig] = np.minimum(time[sig], tsig)

        n_pe = (nsig[cells] + ndark[cells]).astype(np.float64)
        charge = _gain(n_pe, p.gain_sigma, rng)
        keep = (time >= lo) & (time < lo + width)
        cells = cells[keep]
        return cells // n, cells % n, charge[keep], time[keep]


def _thinned_poisson(mu: F64, k: int, n: int, rng: np.random.Generator) -> npt.NDArray[np.int64]:
    """Independent Poisson(mu) counts for k rows of n cells, via Poisson totals + placement.

    Equivalent in distribution to ``rng.poisson(mu)`` and much faster when most cells get
    no PE: draw each row's total, then place the PEs with probability mu / row total.
    """
    cum = np.cumsum(mu)
    ends = cum[n - 1 :: n]
    starts = np.concatenate([[0.0], ends[:-1]])
    counts = rng.poisson(ends - starts)
    row = np.repeat(np.arange(k), counts)
    u = starts[row] + rng.random(row.size) * (ends - starts)[row]
    u.sort()  # rows own disjoint increasing ranges, so sorting keeps them grouped by row
    cell = np.searchsorted(cum, u, side="right")
    cell = np.clip(cell, row * n, row * n + n - 1)  # guard float rounding at row ends
    return np.bincount(cell, minlength=k * n)


def _gain(n_pe: F64, sigma: float, rng: np.random.Generator) -> F64:
    """Summed charge of n PEs: Gaussian(n, sigma sqrt n), redrawn until positive."""
    spread = sigma * np.sqrt(n_pe)
    charge = n_pe + spread * rng.standard_normal(n_pe.size)
    bad = np.flatnonzero(charge <= 0)
    while bad.size:
        charge[bad] = n_pe[bad] + spread[bad] * rng.standard_normal(bad.size)
        bad = bad[charge[bad] <= 0]
    return charge


def _truth_columns(truth: pa.Table | Mapping[str, npt.ArrayLike]) -> dict[str, Any]:
    """The truth columns the detector uses, as numpy arrays; checks the required ones."""
    required = ("event_id", "t", "E_true", "x", "y", "z")
    names = truth.column_names if isinstance(truth, pa.Table) else list(truth.keys())
    missing = [c for c in required if c not in names]
    if missing:
        raise ConfigError(
            f"truth table lacks columns {missing}; expected the TRUTH_SCHEMA columns "
            f"(at least {list(required)}), got {sorted(names)}"
        )

    def get(name: str) -> npt.NDArray[Any]:
        if isinstance(truth, pa.Table):
            col = truth.column(name)
            if pa.types.is_dictionary(col.type):
                col = col.cast(col.type.value_type)
            return np.asarray(col.to_numpy(zero_copy_only=False))
        return np.asarray(truth[name])

    n = len(get("event_id"))
    cols: dict[str, Any] = {
        "event_id": get("event_id"),
        "t": get("t"),
        "E_true": np.nan_to_num(get("E_true").astype(np.float64), nan=0.0),
    }
    for c in ("x", "y", "z"):
        cols[c] = get(c).astype(np.float64)
    for c in _TRACK:
        cols[c] = get(c).astype(np.float64) if c in names else np.full(n, np.nan)
    wp = get("wp") if "wp" in names else np.zeros(n, dtype=bool)
    cols["wp"] = np.asarray(wp, dtype=bool)
    muon = np.zeros(n, dtype=bool)
    if "role" in names:
        muon |= get("role").astype(str) == "muon"
    if "source" in names:
        muon |= np.isin(get("source").astype(str), _MUON_SOURCES)
    cols["muon"] = muon
    for c, arr in cols.items():
        if len(arr) != n:
            raise ConfigError(f"truth column {c!r} has {len(arr)} rows, expected {n}")
    return cols
