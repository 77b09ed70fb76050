"""Calibration files: shipped version, round trip, mismatch refused, derivation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from jaas.errors import ConfigError
from jaas.reco.calib import Calibration, default_calibration, load_calibration
from jaas.reco.run import resolve_calibration


def test_shipped_calibration_matches_the_default_detector():
    cal = default_calibration()
    assert cal.version == "v1"
    assert (cal.light_scale, cal.pmt_scale) == (1.0, 1.0)
    # design light yield 1345 PE/MeV at the centre (physics.md, V), less the few PE lost
    # outside the charge window
    assert 1290 < cal.pe_per_mev < 1360
    # detector engineer's numbers: 1.14 at 10 m, 1.37 at 15 m, 1.58 at 17.5 m
    np.testing.assert_allclose(
        cal.relative_light([10.0, 15.0, 17.5]), [1.14, 1.37, 1.58], atol=0.03
    )
    assert 15_000 < cal.dark_rate_hz < 25_000  # 20 kHz per PMT simulated


def test_shipped_calibration_is_for_the_current_detector_defaults():
    """Fails when the detector model's defaults change: then regenerate v1 (see docs)."""
    from jaas.sim.detector import Detector

    assert default_calibration().detector == Detector().to_dict()


def test_calibration_for_other_detector_parameters_is_refused(calib: Calibration):
    params = dict(calib.detector["params"], attenuation_length_m=25.0)
    run_meta = {"detector": {"light_scale": 0.1, "pmt_scale": 0.05, "params": params}}
    with pytest.raises(ConfigError, match="attenuation_length_m"):
        resolve_calibration(calib, run_meta)


def test_derived_test_scale_calibration(calib: Calibration):
    assert calib.version.startswith("auto-")
    assert (calib.light_scale, calib.pmt_scale) == (0.1, 0.05)
    assert 0.9 * 134.5 < calib.pe_per_mev < 1.05 * 134.5  # 1345 x light_scale
    assert np.all(np.diff(calib.nonuniformity) > -0.03)  # rises towards the edge


def test_round_trip_and_checksum(tmp_path: Path, calib: Calibration):
    path = calib.save(tmp_path / "c.json")
    back = load_calibration(path)
    assert back == calib and back.checksum == calib.checksum
    data = json.loads(path.read_text())
    data["pe_per_mev"] *= 1.01
    (tmp_path / "d.json").write_text(json.dumps(data))
    assert load_calibration(tmp_path / "d.json").checksum != calib.checksum


def test_bad_calibration_file_names_the_problem(tmp_path: Path, calib: Calibration):
    data = calib.to_dict()
    del data["pe_per_mev"]
    (tmp_path / "bad.json").write_text(json.dumps(data))
    with pytest.raises(ConfigError, match=r"bad\.json.*'pe_per_mev'"):
        load_calibration(tmp_path / "bad.json")
    (tmp_path / "junk.json").write_text("{not json")
    with pytest.raises(ConfigError, match=r"junk\.json"):
        load_calibration(tmp_path / "junk.json")


def test_mismatching_calibration_is_refused(calib: Calibration):
    run_meta = {"config": {"light_scale": 0.1, "pmt_scale": 0.05}}
    with pytest.raises(ConfigError) as err:
        resolve_calibration(default_calibration(), run_meta, where="run 7")
    text = str(err.value)
    assert "'v1'" in text and "light_scale=1.0" in text and "light_scale=0.1" in text
    assert "jaas reco calibrate --light-scale 0.1 --pmt-scale 0.05" in text
    # matching explicit one is accepted; none given picks the derived one
    assert resolve_calibration(calib, run_meta) is calib
    assert resolve_calibration(None, run_meta) == calib
    assert resolve_calibration(None, None) is default_calibration()
