"""Point-like events: energy within resolution of the truth, vertex within a few sigma."""

from __future__ import annotations

import numpy as np
import pytest

from jaas.formats.events import HitEvents
from jaas.formats.schema import EventClass
from jaas.reco.calib import Calibration
from jaas.reco.pipeline import Quality, reconstruct_batch
from jaas.sim.detector import Detector
from tests.reco.conftest import on_shell, points

E_TRUE = 3.0


@pytest.mark.parametrize("radius", [0.0, 16.5])
def test_energy_and_vertex_of_point_events(det: Detector, calib: Calibration, radius: float):
    rng = np.random.default_rng(int(radius * 10) + 1)
    vertex = on_shell(rng, 40, radius)
    cols = reconstruct_batch(det.respond(points(vertex, E_TRUE), rng), det, calib)
    assert np.all(cols["quality"] == 0)
    assert np.all(cols["cls"] == EventClass.POINT)
    # photostatistics: sigma_E/E ~ 1/sqrt(PE) (gain spread and dark noise add a little)
    sigma = E_TRUE * 1.3 / np.sqrt(calib.pe_per_mev * E_TRUE)
    err = cols["E"] - E_TRUE
    assert np.all(np.abs(err) < 5 * sigma)
    # the mean is unbiased: the edge light yield (~1.5x the centre) is corrected
    assert abs(err.mean()) < 3 * sigma / np.sqrt(len(err)) + 0.02 * E_TRUE
    assert 0.3 * sigma < err.std() < 2 * sigma
    dv = np.stack([cols[c] for c in "xyz"], axis=1) - vertex
    dist = np.linalg.norm(dv, axis=1)
    assert np.median(dist) < 0.5
    assert np.all(dist < 1.5)
    assert np.all(np.abs(dv.mean(axis=0)) < 0.15)  # no bias beyond the statistics
    assert np.array_equal(cols["t"], points(vertex, E_TRUE)["t"])
    assert np.all(cols["nhit"] > 0) and np.all(cols["pe"] > cols["E"] * calib.pe_per_mev * 0.5)


def test_energy_without_nonuniformity_would_be_biased(det: Detector, calib: Calibration):
    """The map is what removes the edge bias: the edge yield is well above the centre's."""
    assert float(calib.relative_light(16.5)) > 1.3
    assert float(calib.relative_light(0.0)) == pytest.approx(1.0)


def test_reconstruction_is_deterministic(det: Detector, calib: Calibration):
    rng = np.random.default_rng(5)
    hits = det.respond(points(on_shell(rng, 5, 8.0), 2.0), rng)
    a = reconstruct_batch(hits, det, calib)
    b = reconstruct_batch(hits, det, calib)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])


def test_zero_hits_and_dark_only_events_are_flagged(det: Detector, calib: Calibration):
    rng = np.random.default_rng(9)
    dark = det.respond(points(np.zeros((1, 3)), 0.0), rng)  # periodic trigger: dark noise
    empty = HitEvents(
        event_id=np.array([99], np.uint64),
        t=np.array([5], np.int64),
        trigger=np.array([4], np.uint16),
        offsets=np.array([0, 0], np.int64),
        pmt=np.zeros(0, np.uint32),
        charge=np.zeros(0, np.float32),
        time=np.zeros(0, np.float32),
    )
    cols = reconstruct_batch(HitEvents.concatenate([dark, empty]), det, calib)
    assert cols["quality"][0] & Quality.LOW_SIGNAL
    assert cols["quality"][1] & Quality.NO_HITS
    assert cols["nhit"][1] == 0 and cols["E"][1] == 0.0
    assert np.all(np.isnan(cols["x"])) and cols["event_id"][1] == 99
    assert abs(cols["E"][0]) < 0.2  # dark noise is subtracted


def test_nonconverging_fit_is_flagged_not_silent(det: Detector, calib: Calibration):
    """Hits whose times no point source can produce: quality says so."""
    rng = np.random.default_rng(3)
    n = 300
    pmt = np.sort(rng.choice(det.n_pmt, n, replace=False)).astype(np.uint32)
    hits = HitEvents(
        event_id=np.array([0], np.uint64),
        t=np.array([0], np.int64),
        trigger=np.array([1], np.uint16),
        offsets=np.array([0, n], np.int64),
        pmt=pmt,
        charge=np.full(n, 1.0, np.float32),
        # half the PMTs fire 400 ns before the others: two incompatible flashes
        time=np.where(rng.random(n) < 0.5, -150.0, 250.0).astype(np.float32),
    )
    cols = reconstruct_batch(hits, det, calib)
    assert cols["quality"][0] != 0
