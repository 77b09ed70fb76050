"""The standard IBD selection on simulated data: efficiencies, rates, fits, invariance."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import jaas
from jaas.engine.session.analysis import IBDSelection, coincidence
from jaas.engine.session.cache import ColumnCache
from jaas.engine.session.truth import PUBLISHED_EFFICIENCY
from jaas.sim import SimConfig, simulate

DAYS = 0.25
IBD_SCALE = 40.0  # ~570 true IBD pairs in a quarter day: statistics for the checks below


@pytest.fixture(scope="module")
def sim_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ibd-sim")
    cfg = SimConfig(
        run=3,
        duration_s=DAYS * 86400,
        seed=11,
        mode="index",
        scale={"reactor_ibd": IBD_SCALE, "li9he8": 20.0},
        max_events_per_file=120_000,  # several files: pairs cross file boundaries
    )
    simulate(cfg, out)
    return out


@pytest.fixture(scope="module")
def result(sim_run: Path) -> jaas.engine.session.results.CoincidenceResult:  # type: ignore[name-defined]
    return jaas.open(sim_run, cache=ColumnCache()).ibd()


def test_efficiency_per_cut_near_published(result) -> None:  # type: ignore[no-untyped-def]
    report = result.truth()
    assert report is not None
    eff = {name: e for name, _, e in report.cutflow}
    # statistical precision with ~570 pairs is ~1-2 %; the simulation is not JUNO's
    assert eff["fiducial volume"] == pytest.approx(
        PUBLISHED_EFFICIENCY["fiducial volume"], abs=0.04
    )
    assert eff["energy"] > 0.95
    assert eff["dt"] > 0.97
    assert eff["dR"] > 0.95
    assert eff["muon veto"] == pytest.approx(PUBLISHED_EFFICIENCY["muon veto"], abs=0.05)
    assert report.total_efficiency == pytest.approx(PUBLISHED_EFFICIENCY["total"], abs=0.06)
    text = str(report)
    assert "published" in text
    assert "91.50 %" in text  # the published FV efficiency printed next to ours


def test_ibd_rate_and_capture_time(result) -> None:  # type: ignore[no-untyped-def]
    report = result.truth()
    rate, _ = report.rates_per_day["IBD (reactor)"]
    expected = report.true_ibd_per_day * report.total_efficiency
    assert rate == pytest.approx(expected, rel=1e-9)  # same pairs counted two ways
    assert report.true_ibd_per_day == pytest.approx(57 * IBD_SCALE, rel=0.15)
    fit = result.fit_dt()
    assert fit.valid
    assert abs(fit.tau_us - 200.0) < 4 * fit.tau_err_us + 5  # configured tau ~200 us


def test_accidental_estimate_matches_truth_tagged_accidentals(result) -> None:  # type: ignore[no-untyped-def]
    report = result.truth()
    acc = result.result.accidentals
    assert acc is not None
    tagged = report.rates_per_day.get("accidental", (0.0, 0.0))[0] * report.good_days
    # off-time estimate (200 windows) vs the pairs the truth calls accidental
    assert abs(acc.estimate - tagged) < 3 * np.sqrt(acc.error**2 + max(tagged, 1.0))


def test_identical_under_threads_and_partitions(sim_run: Path) -> None:
    ds = jaas.open(sim_run, cache=ColumnCache())
    one = ds.ibd()
    two = ds.ibd(threads=2)
    sel = IBDSelection()
    many = coincidence(  # ~40 small time partitions, each with its halo
        ds,
        prompt=sel.prompt_condition,
        delayed=sel.delayed_condition,
        dt=(sel.dt_min, sel.dt_max),
        dr=sel.dr_max,
        vetoes=sel.vetoes,
        offtime=sel.offtime,
        partition_events=7_000,
    )
    for other in (two, many):
        np.testing.assert_array_equal(one.result.prompt, other.result.prompt)
        np.testing.assert_array_equal(one.result.delayed, other.result.delayed)
        assert one.exposure.to_dict() == other.exposure.to_dict()
        assert one.result.accidentals.n_off == other.result.accidentals.n_off  # type: ignore[union-attr]


def test_li9_time_since_muon(sim_run: Path) -> None:
    ds = jaas.open(sim_run, cache=ColumnCache())
    res = ds.coincidence(
        prompt="0.7 MeV < E < 12 MeV and r < 17.2 m and not muon",
        delayed="1.9 MeV < E < 2.5 MeV and r < 17.2 m and not muon",
        dt="1 ms",
        dr="1.5 m",
        vetoes=[jaas.veto("detector", "muon", "1.5 ms")],
        since={"t_mu": "cls == 1 and showering"},
    )
    assert "prompt_t_mu" in res.pairs
    fit = res.fit_since("t_mu", t_max=3.0)
    # 9Li (tau 257 ms) dominates the short times after showering muons
    assert fit.valid
    assert 0.1e6 < fit.tau_us < 0.5e6
