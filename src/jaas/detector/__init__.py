"""The detector as both simulation and reconstruction see it (below ``sim`` and ``reco``).

- :mod:`jaas.detector.params`: ``DetectorParams``, every physics default with its source;
- :mod:`jaas.detector.optics`: PMT layout, light weights, single-PE time CDFs;
- :mod:`jaas.detector.model`: ``Detector``, the geometry and light/time model.

This package never imports :mod:`jaas.sim`; reconstruction of real data needs only it.
"""

from __future__ import annotations

from jaas.detector.model import Detector
from jaas.detector.optics import C_LIGHT_M_PER_NS, pmt_positions
from jaas.detector.params import DetectorParams

__all__ = ["C_LIGHT_M_PER_NS", "Detector", "DetectorParams", "pmt_positions"]
