"""Reconstruction throughput (events/s on one core), full- and test-scale detector.

Compares, on the same seeded events:
  ours      ``reconstruct_batch`` (time-likelihood vertex fit, energy, class; muon tracks)
  centroid  charge centroid + total charge per event (the cheapest point estimator: no fit)
  bound     one vectorised pass over all hits (bincount of charges): the memory bound
and the vertex resolution each estimator reaches, so the cost of the fit can be judged.

Usage: .venv/bin/python bench/bench_reco.py [--quick] [--table]
  --table  also print the resolution/bias table (python -m jaas.reco.performance).
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # one core, as reported
os.environ.setdefault("JAAS_PROGRESS", "0")

import numpy as np

from jaas.formats.events import HitEvents
from jaas.reco.calib import calibration_for
from jaas.reco.pipeline import reconstruct_batch
from jaas.reco.vertex import _CENTROID_SCALE, time_tables


def _points(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    r = 17.2 * np.cbrt(rng.random(n))
    d = rng.standard_normal((n, 3))
    v = d * (r / np.linalg.norm(d, axis=1))[:, None]
    return {
        "event_id": np.arange(n),
        "t": np.zeros(n, np.int64),
        "E_true": rng.uniform(1.0, 5.0, n),
        "x": v[:, 0],
        "y": v[:, 1],
        "z": v[:, 2],
    }


def _muons(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    a = np.tile([0.0, 0.0, 17.7], (n, 1))
    phi = 2 * np.pi * rng.random(n)
    ct = -rng.uniform(0.2, 1.0, n)
    b = 17.7 * np.stack([np.sqrt(1 - ct**2) * np.cos(phi), np.sqrt(1 - ct**2) * np.sin(phi), ct], 1)
    length = np.linalg.norm(b - a, axis=1)
    mid = (a + b) / 2
    cols = {f"m{c}0": a[:, k] for k, c in enumerate("xyz")}
    cols.update({f"m{c}1": b[:, k] for k, c in enumerate("xyz")})
    return {
        "event_id": np.arange(n),
        "t": np.zeros(n, np.int64),
        "E_true": 200.0 * length,
        "x": mid[:, 0],
        "y": mid[:, 1],
        "z": mid[:, 2],
        "role": np.array(["muon"] * n),
        "wp": np.ones(n, bool),
        **cols,
    }


def _centroid(hits: HitEvents, pmt_pos: np.ndarray) -> np.ndarray:
    ev = np.repeat(np.arange(len(hits)), hits.nhits)
    q = hits.charge.astype(np.float64)
    qsum = np.bincount(ev, q, len(hits))
    pos = pmt_pos[hits.pmt]
    c = np.stack([np.bincount(ev, q * pos[:, k], len(hits)) for k in range(3)], 1)
    return _CENTROID_SCALE * c / qsum[:, None]


def _bound(hits: HitEvents) -> np.ndarray:
    ev = np.repeat(np.arange(len(hits)), hits.nhits)
    return np.bincount(ev, hits.charge, len(hits))


def _rate(fn, n: int) -> tuple[float, object]:
    t0 = time.perf_counter()
    out = fn()
    return n / (time.perf_counter() - t0), out


def bench(light: float, pmts: float, n_points: int, n_muons: int, seed: int = 7) -> list[str]:
    cal = calibration_for(light, pmts)
    det = cal.make_detector()
    tables = time_tables(det)
    rng = np.random.default_rng(seed)
    truth = _points(rng, n_points)
    hits = det.respond(truth, rng)
    reconstruct_batch(HitEvents.concatenate([hits]), det, cal, tables=tables)  # JIT warm-up
    v_true = np.stack([truth[c] for c in "xyz"], 1)
    r_ours, cols = _rate(lambda: reconstruct_batch(hits, det, cal, tables=tables), n_points)
    r_cent, cent = _rate(lambda: _centroid(hits, det.pmt_pos), n_points)
    r_bound, _ = _rate(lambda: _bound(hits), n_points)
    assert isinstance(cols, dict) and isinstance(cent, np.ndarray)
    v_ours = np.stack([cols[c] for c in "xyz"], 1)
    res_ours = float(np.sqrt(np.nanmean((v_ours - v_true) ** 2)))
    res_cent = float(np.sqrt(np.mean((cent - v_true) ** 2)))
    mu_truth = _muons(rng, n_muons)
    mu_hits = det.respond(mu_truth, rng)
    r_mu, _ = _rate(lambda: reconstruct_batch(mu_hits, det, cal, tables=tables), n_muons)
    tag = f"light={light:g} pmt={pmts:g} ({det.n_pmt} PMTs, {hits.nhits.mean():.0f} hits/ev)"
    return [
        f"| {tag} | ours: point events 1-5 MeV | {r_ours:,.1f} | 1 | {100 * res_ours:.1f} cm |",
        f"| | centroid (no fit) | {r_cent:,.0f} | {r_ours / r_cent:.4f} | "
        f"{100 * res_cent:.0f} cm |",
        f"| | bound: one pass over hits | {r_bound:,.0f} | {r_ours / r_bound:.5f} | - |",
        f"| | ours: muons (track fit) | {r_mu:,.2f} | - | - |",
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description="reconstruction throughput")
    ap.add_argument("--quick", action="store_true", help="fewer events")
    ap.add_argument("--table", action="store_true", help="also print the resolution table")
    args = ap.parse_args()
    n_full, n_test, n_mu = (40, 300, 3) if args.quick else (200, 2000, 10)
    print("| detector | estimator | events/s (1 core) | ours / this | vertex res / coord |")
    print("|---|---|---:|---:|---:|")
    for line in bench(1.0, 1.0, n_full, n_mu):
        print(line)
    for line in bench(0.1, 0.05, n_test, n_mu):
        print(line)
    if args.table:
        from jaas.reco.performance import performance_table

        print()
        print(performance_table(events=30 if args.quick else 100)[0])


if __name__ == "__main__":
    main()
