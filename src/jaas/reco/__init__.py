"""Reconstruction: energy, vertex, event class and muon track from hits (RTRAW -> ESD)."""

from jaas.reco.calib import (
    Calibration,
    calibration_for,
    default_calibration,
    derive_calibration,
    load_calibration,
)
from jaas.reco.pipeline import Quality, RecoConfig, reconstruct_batch
from jaas.reco.run import find_run_metadata, reconstruct, resolve_calibration

__all__ = [
    "Calibration",
    "Quality",
    "RecoConfig",
    "calibration_for",
    "default_calibration",
    "derive_calibration",
    "find_run_metadata",
    "load_calibration",
    "reconstruct",
    "reconstruct_batch",
    "resolve_calibration",
]
