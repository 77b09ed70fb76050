"""Tests of the hit-level detector response (jaas.sim.detector)."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pyarrow as pa
import pytest
from scipy import stats

from jaas.errors import ConfigError
from jaas.formats.schema import TRUTH_SCHEMA, TriggerBit
from jaas.sim import _optics
from jaas.sim.detector import Detector, DetectorParams, pmt_positions

QUIET = DetectorParams(dark_rate_hz=0.0)  # no dark noise: signal-only checks


def points(vertex, energy, n, *, t0=1_700_000_000_000_000_000):
    """Truth dict of n point-like events at one vertex."""
    v = np.broadcast_to(np.asarray(vertex, dtype=np.float64), (n, 3))
    return {
        "event_id": np.arange(n, dtype=np.int64),
        "t": t0 + 1000 * np.arange(n, dtype=np.int64),
        "E_true": np.full(n, energy, dtype=np.float32),
        "x": v[:, 0].astype(np.float32),
        "y": v[:, 1].astype(np.float32),
        "z": v[:, 2].astype(np.float32),
    }


def muon(entry, exit_, energy, *, wp=False):
    track = {
        f"m{c}{k}": [float(p[i])] for k, p in ((0, entry), (1, exit_)) for i, c in enumerate("xyz")
    }
    return {
        "event_id": [0],
        "t": [0],
        "E_true": [energy],
        "x": [np.nan],
        "y": [np.nan],
        "z": [np.nan],
        "role": np.array(["muon"]),
        "wp": [wp],
        **track,
    }


def charge_per_event(hits):
    return np.add.reduceat(hits.charge.astype(np.float64), hits.offsets[:-1])


def test_pmt_layout_and_scale():
    full = Detector()
    small = Detector(pmt_scale=0.05)
    assert full.n_pmt == 17_612
    assert small.n_pmt == round(17_612 * 0.05)
    assert small.pmt_pos.shape == (small.n_pmt, 3)
    assert small.pmt_pos.dtype == np.float64
    np.testing.assert_allclose(np.linalg.norm(small.pmt_pos, axis=1), 19.434)
    # evenly spread: the mean position is near the centre, neighbours are ~equally spaced
    assert np.linalg.norm(small.pmt_pos.mean(axis=0)) < 0.1
    assert full.pmt_is_dynode.sum() == 5_000
    assert small.pmt_is_dynode.sum() == round(5_000 * 0.05)
    np.testing.assert_array_equal(pmt_positions(100), pmt_positions(100))


def test_total_pe_at_centre_matches_light_yield():
    det = Detector(QUIET, light_scale=0.1, pmt_scale=0.05)
    expected = 1345.0 * 2.0 * 0.1
    assert det.expected_pe([0.0, 0.0, 0.0], 2.0).sum() == pytest.approx(expected, rel=1e-9)
    n = 300
    q = charge_per_event(det.respond(points([0, 0, 0], 2.0, n), np.random.default_rng(1)))
    # Poisson PE count x gain (variance 1 + 0.3^2 per PE)
    sigma_mean = math.sqrt(expected * (1 + 0.3**2) / n)
    assert abs(q.mean() - expected) < 5 * sigma_mean


def test_light_rises_towards_the_edge():
    det = Detector(QUIET, light_scale=0.1, pmt_scale=0.2)
    radii = [0.0, 5.0, 10.0, 15.0, 17.0]
    totals = [det.expected_pe([0.0, 0.0, r], 1.0).sum() for r in radii]
    assert all(b > a for a, b in itertools.pairwise(totals))
    assert totals[-1] > 1.15 * totals[0]
    rng = np.random.default_rng(2)
    centre = charge_per_event(det.respond(points([0, 0, 0], 1.0, 200), rng)).mean()
    edge = charge_per_event(det.respond(points([0, 16.0, 0], 1.0, 200), rng)).mean()
    assert edge > centre * 1.1


def test_charge_centroid_and_earliest_hits_point_to_vertex():
    det = Detector(QUIET, light_scale=0.2, pmt_scale=0.1)
    vertex = np.array([8.0, -5.0, 6.0])
    hits = det.respond(points(vertex, 3.0, 1), np.random.default_rng(3))
    pos = det.pmt_pos[hits.pmt]
    centroid = (pos * hits.charge[:, None]).sum(axis=0) / hits.charge.sum()
    cos = centroid @ vertex / (np.linalg.norm(centroid) * np.linalg.norm(vertex))
    assert cos > 0.95
    dist = np.linalg.norm(pos - vertex, axis=1)
    earliest = np.argsort(hits.time)[:20]
    assert np.median(dist[earliest]) < np.percentile(dist, 15)
    tof = det.time_of_flight(vertex)[hits.pmt]
    # hit time = TOF + delay >= TOF - a few TTS sigmas
    assert np.all(hits.time > tof - 6 * det.tts_sigma[hits.pmt])


def test_dark_noise_rate_in_window():
    params = DetectorParams(dark_rate_hz=50_000.0, window_start_ns=-100.0, window_ns=500.0)
    det = Detector(params, pmt_scale=0.05)
    n = 400
    hits = det.respond(points([0, 0, 0], 0.0, n), np.random.default_rng(4))
    lam = 50_000.0 * 500e-9  # mean dark PEs per PMT per window
    expected = n * det.n_pmt * (1 - math.exp(-lam))  # one merged hit per PMT
    assert abs(len(hits.pmt) - expected) < 5 * math.sqrt(expected)
    assert np.all(hits.trigger == TriggerBit.PERIODIC)
    assert hits.time.min() >= -100.0
    assert hits.time.max() < 400.0
    assert stats.kstest(hits.time, stats.uniform(-100.0, 500.0).cdf).pvalue > 1e-3
    assert np.median(hits.charge) == pytest.approx(1.0, abs=0.05)


def test_muon_fires_all_pmts_earliest_near_entry():
    det = Detector(QUIET, light_scale=0.1, pmt_scale=0.05)  # no dark hits before the muon
    entry, exit_ = np.array([0.0, 0.0, 17.7]), np.array([0.0, 0.0, -17.7])
    hits = det.respond(muon(entry, exit_, 7000.0, wp=True), np.random.default_rng(5))
    assert hits.trigger[0] == TriggerBit.CD | TriggerBit.WP
    assert len(hits.pmt) >= 0.99 * det.n_pmt
    assert len(np.unique(hits.pmt)) == len(hits.pmt)
    z = det.pmt_pos[hits.pmt, 2]
    earliest = np.argsort(hits.time)[:10]
    assert np.all(z[earliest] > 15.0)
    # light follows the muon down: hit time grows with depth
    assert stats.spearmanr(-z, hits.time).statistic > 0.8
    assert hits.charge.sum() > 0.5 * 1345 * 7000 * 0.1


def test_water_pool_only_muon_has_dark_noise_only():
    det = Detector(pmt_scale=0.05)
    truth = muon([np.nan] * 3, [np.nan] * 3, 0.0, wp=True)
    hits = det.respond(truth, np.random.default_rng(6))
    assert hits.trigger[0] == TriggerBit.WP
    assert len(hits.pmt) < 0.1 * det.n_pmt  # ~2 % of PMTs from 20 kHz x 1 us
    assert np.all(hits.charge < 5)


def test_first_pe_sampling_matches_brute_force_minimum():
    det = Detector()
    cdf, grid = det._cdf[False]
    rng = np.random.default_rng(7)
    n_pe, m = 5, 20_000
    fast = rng.random((m, n_pe)) < 0.7
    emission = np.where(fast, rng.exponential(4.6, (m, n_pe)), rng.exponential(18.0, (m, n_pe)))
    brute = (emission + rng.normal(0.0, 7.0, (m, n_pe))).min(axis=1)
    drawn = _optics.sample_first_pe(np.full(m, n_pe), cdf, grid, rng)
    assert stats.ks_2samp(brute, drawn).pvalue > 1e-3
    single = _optics.sample_first_pe(np.ones(m, dtype=np.int64), cdf, grid, rng)
    assert single.mean() == pytest.approx(0.7 * 4.6 + 0.3 * 18.0, abs=0.3)


def test_same_seed_same_hits_and_dtypes():
    det = Detector(light_scale=0.1, pmt_scale=0.05)
    rows = 4
    truth = pa.table(
        {
            "run": pa.array([1] * rows, pa.int32()),
            "event_id": pa.array([10, 11, 12, 13], pa.int64()),
            "file_seq": pa.array([0] * rows, pa.int32()),
            "entry": pa.array(range(rows), pa.int64()),
            "t": pa.array([5, 1_000, 2_000_000, 3_000_000], pa.int64()),
            "source": pa.array(["singles", "muon", "reactor_ibd", "muon_wp"]).dictionary_encode(),
            "role": pa.array(["single", "muon", "prompt", "muon"]).dictionary_encode(),
            "corr_id": pa.array([-1] * rows, pa.int64()),
            "E_true": pa.array([1.5, 3000.0, 4.0, 0.0], pa.float32()),
            "x": pa.array([1.0, None, 0.0, None], pa.float32()),
            "y": pa.array([2.0, None, 0.0, None], pa.float32()),
            "z": pa.array([3.0, None, -10.0, None], pa.float32()),
            "mx0": pa.array([None, 0.0, None, None], pa.float32()),
            "my0": pa.array([None, 17.0, None, None], pa.float32()),
            "mz0": pa.array([None, 4.0, None, None], pa.float32()),
            "mx1": pa.array([None, 0.0, None, None], pa.float32()),
            "my1": pa.array([None, -17.0, None, None], pa.float32()),
            "mz1": pa.array([None, -4.0, None, None], pa.float32()),
            "showering": pa.array([False] * rows),
            "wp": pa.array([False, True, False, True]),
        }
    ).cast(TRUTH_SCHEMA)
    a = det.respond(truth, np.random.default_rng(8))
    b = det.respond(truth, np.random.default_rng(8))
    c = det.respond(truth, np.random.default_rng(9))
    for name in ("event_id", "t", "trigger", "offsets", "pmt", "charge", "time"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert not np.array_equal(a.time, c.time)  # another seed, other hits
    dtypes = {
        "event_id": np.uint64,
        "t": np.int64,
        "trigger": np.uint16,
        "offsets": np.int64,
        "pmt": np.uint32,
        "charge": np.float32,
        "time": np.float32,
    }
    for name, dtype in dtypes.items():
        assert getattr(a, name).dtype == dtype, name
    assert a.offsets[0] == 0
    assert a.offsets[-1] == len(a.pmt) == len(a.charge) == len(a.time)
    np.testing.assert_array_equal(a.event_id, [10, 11, 12, 13])
    np.testing.assert_array_equal(a.t, [5, 1_000, 2_000_000, 3_000_000])
    assert list(a.trigger) == [1, 3, 1, 2]
    assert a.nhits[1] >= 0.99 * det.n_pmt  # the muon, in its place among point events
    for i in range(len(a)):
        ev = a.event(i)
        assert np.all(np.diff(ev["pmt"].astype(np.int64)) > 0)  # one hit per PMT, sorted


def test_to_dict_from_dict_round_trip():
    det = Detector(
        DetectorParams(attenuation_length_m=25.0, qe_spread=0.1), light_scale=0.3, pmt_scale=0.02
    )
    data = json.loads(json.dumps(det.to_dict()))
    again = Detector.from_dict(data)
    assert again.to_dict() == det.to_dict()
    assert again.params == det.params
    np.testing.assert_array_equal(again.pmt_pos, det.pmt_pos)
    np.testing.assert_array_equal(again.efficiency, det.efficiency)
    np.testing.assert_array_equal(
        again.expected_pe([1.0, 2.0, 3.0], 2.0), det.expected_pe([1.0, 2.0, 3.0], 2.0)
    )
    truth = points([1.0, 2.0, 3.0], 2.0, 3)
    h1, h2 = det.respond(truth, 11), again.respond(truth, 11)
    np.testing.assert_array_equal(h1.time, h2.time)


def test_expected_pe_and_tof_shapes():
    det = Detector(pmt_scale=0.01)
    many = det.expected_pe(np.zeros((4, 3)), np.array([1.0, 2.0, 3.0, 4.0]))
    assert many.shape == (4, det.n_pmt)
    np.testing.assert_allclose(many.sum(axis=1), 1345.0 * np.array([1.0, 2.0, 3.0, 4.0]))
    tof = det.time_of_flight([0.0, 0.0, 0.0])
    np.testing.assert_allclose(tof, 19.434 / (0.299792458 / 1.5))
    assert det.time_of_flight(np.zeros((2, 3))).shape == (2, det.n_pmt)


def test_errors_name_the_problem():
    det = Detector(pmt_scale=0.01)
    with pytest.raises(ConfigError, match=r"event_id 3.*inside the PMT sphere"):
        det.respond(
            {"event_id": [3], "t": [0], "E_true": [1.0], "x": [25.0], "y": [0.0], "z": [0.0]}, 0
        )
    with pytest.raises(ConfigError, match=r"lacks columns \['E_true'\]"):
        det.respond({"event_id": [3], "t": [0], "x": [0.0], "y": [0.0], "z": [0.0]}, 0)
    with pytest.raises(ConfigError, match=r"muon .* track"):
        det.respond(muon([np.nan] * 3, [0.0, 0.0, 0.0], 100.0), 0)
    with pytest.raises(ConfigError, match="did you mean 'attenuation_length_m'"):
        DetectorParams.from_dict({"attenuation_length": 20.0})
    with pytest.raises(ConfigError, match="fast_fraction"):
        DetectorParams(fast_fraction=1.5)
    with pytest.raises(ConfigError, match="pmt_scale"):
        Detector(pmt_scale=0.0)
