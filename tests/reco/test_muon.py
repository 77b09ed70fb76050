"""Muons and water-pool tags: class, track, showering flag."""

from __future__ import annotations

import numpy as np

from jaas.formats.schema import EventClass
from jaas.reco.calib import Calibration
from jaas.reco.pipeline import reconstruct_batch
from jaas.sim.detector import Detector

R_LS = 17.7


def _muons(tracks: list[tuple[np.ndarray, np.ndarray]], extra_mev: list[float]) -> dict:
    a = np.array([t[0] for t in tracks])
    b = np.array([t[1] for t in tracks])
    length = np.linalg.norm(b - a, axis=1)
    n = len(tracks)
    mid = 0.5 * (a + b)
    return {
        "event_id": np.arange(n),
        "t": np.arange(n, dtype=np.int64),
        "E_true": 200.0 * length + np.asarray(extra_mev),  # ~2 MeV/cm (physics.md, E)
        "x": mid[:, 0],
        "y": mid[:, 1],
        "z": mid[:, 2],
        **{f"m{c}0": a[:, k] for k, c in enumerate("xyz")},
        **{f"m{c}1": b[:, k] for k, c in enumerate("xyz")},
        "role": ["muon"] * n,
        "wp": np.ones(n, bool),
    }


def _chord(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    down = np.array([0.3, -0.2, -1.0])
    down /= np.linalg.norm(down)
    e1 = np.cross(down, [1.0, 0.0, 0.0])
    e1 /= np.linalg.norm(e1)
    e2 = np.cross(down, e1)
    b = 12.0 * np.sqrt(rng.random())
    alpha = 2 * np.pi * rng.random()
    mid = b * (np.cos(alpha) * e1 + np.sin(alpha) * e2)
    half = np.sqrt(R_LS**2 - b * b)
    return mid - half * down, mid + half * down


def test_muon_class_track_and_showering(det: Detector, calib: Calibration):
    rng = np.random.default_rng(11)
    tracks = [_chord(rng) for _ in range(4)]
    truth = _muons(tracks, [0.0, 0.0, 20_000.0, 0.0])
    cols = reconstruct_batch(det.respond(truth, rng), det, calib)
    assert np.all(cols["cls"] == EventClass.MUON)
    assert np.all(cols["tracked"]) and np.all(cols["quality"] == 0)
    assert list(cols["showering"]) == [False, False, True, False]
    for i, (a, b) in enumerate(tracks):
        entry = np.array([cols[f"m{c}0"][i] for c in "xyz"])
        exit_ = np.array([cols[f"m{c}1"][i] for c in "xyz"])
        # acceptable today: ~0.5-1 m (aim: 20 cm / 0.5 deg)
        assert np.linalg.norm(entry - a) < 1.0, (i, entry, a)
        assert np.linalg.norm(exit_ - b) < 1.0, (i, exit_, b)
        u_fit = (exit_ - entry) / np.linalg.norm(exit_ - entry)
        u_true = (b - a) / np.linalg.norm(b - a)
        assert np.degrees(np.arccos(min(1.0, float(u_fit @ u_true)))) < 3.0
    # visible energy from the total charge over the light yield along the track
    np.testing.assert_allclose(cols["E"], truth["E_true"], rtol=0.05)


def test_water_pool_only_and_untagged_big_deposit(det: Detector, calib: Calibration):
    rng = np.random.default_rng(12)
    a, b = _chord(rng)
    truth = {
        "event_id": np.arange(3),
        "t": np.arange(3, dtype=np.int64),
        "E_true": [0.0, 200.0 * float(np.linalg.norm(b - a)), 2.0],
        "x": [np.nan, 0.0, 1.0],
        "y": [np.nan, 0.0, 1.0],
        "z": [np.nan, 0.0, 1.0],
        "mx0": [np.nan, a[0], np.nan],
        "my0": [np.nan, a[1], np.nan],
        "mz0": [np.nan, a[2], np.nan],
        "mx1": [np.nan, b[0], np.nan],
        "my1": [np.nan, b[1], np.nan],
        "mz1": [np.nan, b[2], np.nan],
        "role": ["muon", "muon", "single"],
        "wp": [True, False, False],  # the CD muon missed by the water pool
    }
    cols = reconstruct_batch(det.respond(truth, rng), det, calib)
    assert list(cols["cls"]) == [EventClass.WP_ONLY, EventClass.MUON, EventClass.POINT]
    assert list(cols["wp"]) == [True, False, False]
    assert np.isnan(cols["x"][0]) and not cols["tracked"][0] and cols["E"][0] < 0.3
    assert cols["tracked"][1]
