"""Shared fixtures of the reconstruction tests: a small detector and its calibration."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from jaas.reco.calib import Calibration, calibration_for
from jaas.sim.detector import Detector

LIGHT, PMTS = 0.1, 0.05  # 881 PMTs, ~135 PE/MeV: fast and still resolving


@pytest.fixture(scope="session")
def calib() -> Calibration:
    """Calibration derived on the fly for the test-scale detector (cached per process)."""
    return calibration_for(LIGHT, PMTS)


@pytest.fixture(scope="session")
def det(calib: Calibration) -> Detector:
    return Detector.from_dict(calib.detector)  # the simulator (tests simulate hits)


def points(vertex: np.ndarray, energy: float) -> dict[str, Any]:
    """Truth rows for point deposits of ``energy`` MeV at ``vertex`` (k, 3)."""
    n = len(vertex)
    return {
        "event_id": np.arange(n),
        "t": np.full(n, 10**18, np.int64) + np.arange(n),
        "E_true": np.full(n, energy),
        "x": vertex[:, 0],
        "y": vertex[:, 1],
        "z": vertex[:, 2],
    }


def on_shell(rng: np.random.Generator, n: int, r: float) -> np.ndarray:
    """``n`` random points at radius ``r``."""
    d = rng.standard_normal((n, 3))
    return d * (r / np.linalg.norm(d, axis=1))[:, None]
