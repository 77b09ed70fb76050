"""Detector simulation: event sources, detector response, RAW and index-level output.

params      SimConfig, PhysicsParams (validated configuration, cited defaults)
spectra     energy spectra (reactor, geo-nu, beta, singles)
sources     per-block event generators of each source
stream      chunked, seeded truth generation (generate_truth)
indexlevel  truth -> reconstructed index columns (fast mode)
detector    truth -> PMT hits (hit mode)
run         simulate(): files, truth, metadata, summary
"""

from jaas.sim.params import PhysicsParams, SimConfig, parse_duration
from jaas.sim.run import FileRecord, SimSummary, simulate
from jaas.sim.stream import generate_truth

__all__ = [
    "FileRecord",
    "PhysicsParams",
    "SimConfig",
    "SimSummary",
    "generate_truth",
    "parse_duration",
    "simulate",
]
