"""Exposure: hand-computed time budget and the volume-veto Monte Carlo."""

from __future__ import annotations

import json

import numpy as np
import pytest

from jaas.engine.core.correlate import Spec, Veto, correlate
from jaas.engine.core.exposure import normalize_intervals


def test_time_budget_by_hand() -> None:
    segs = [[2000, 3000], [0, 1000]]  # any order
    cols = {"t": np.array([100, 980, 2500], np.int64), "muon": np.array([True, True, False])}
    r = correlate(cols, Spec(vetoes=(Veto.detector("mu", "muon", 50),)), segs, bad=[[1000, 1500]])
    e = r.exposure
    # vetoes: gap [0,50) [2000,2050); muons [100,150) [980,1000) (clipped at segment end)
    np.testing.assert_array_equal(
        r.veto_intervals, [[0, 50], [100, 150], [980, 1000], [2000, 2050]]
    )
    assert (e.span_ns, e.good_ns, e.gap_ns, e.bad_ns) == (3000, 2000, 1000, 500)
    assert (e.veto_ns, e.gap_veto_ns, e.livetime_ns) == (170, 100, 1830)
    assert e.livetime_fraction == pytest.approx(1830 / 2000)
    d = e.to_dict()
    assert json.loads(json.dumps(d))["livetime_ns"] == 1830
    text = str(e)
    assert "livetime" in text and "of which gap veto (after gaps)" in text
    assert "lost to gaps" not in text  # it is vetoed good time, not a part of the gaps
    lines = text.splitlines()
    vetoes = next(i for i, line in enumerate(lines) if "whole-detector vetoes" in line)
    assert "gap veto" in lines[vetoes + 1]  # listed under the vetoes it is part of


def test_cylinder_efficiency_matches_geometry() -> None:
    # one muon along a diameter vetoes a cylinder r=0.5 in a unit sphere for all time:
    # vetoed fraction of the sphere = 1 - (1 - r^2)^(3/2)
    nan = np.float32(np.nan)
    cols = {
        "t": np.array([0, 10], np.int64),
        "muon": np.array([True, False]),
        **{
            c: np.array([v, nan], np.float32)
            for c, v in zip(
                ("mx0", "my0", "mz0", "mx1", "my1", "mz1"), (0, 0, -1, 0, 0, 1), strict=True
            )
        },
        **{c: np.zeros(2, np.float32) for c in ("x", "y", "z")},
    }
    spec = Spec(
        vetoes=(Veto.cylinder("cyl", "muon", 10**9, 0.5),),
        fiducial_radius=1.0,
        mc_samples=20_000,
    )
    r = correlate(cols, spec, [[0, 10**6]])
    eff, err = r.exposure.volume_efficiency
    assert r.exposure.mc_live == 20_000  # no whole-detector veto
    assert eff == pytest.approx(0.75**1.5, abs=4 * err)
    assert r.exposure.efficiency_of("cyl") == (eff, err)
    assert correlate(cols, spec, [[0, 10**6]], partition_events=1).exposure == r.exposure


def test_normalize_intervals_merges_touching() -> None:
    assert normalize_intervals([[5, 9], [0, 5], [20, 30], [25, 26]]).tolist() == [[0, 9], [20, 30]]
