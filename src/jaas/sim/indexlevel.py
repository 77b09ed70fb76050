"""Index-level response: truth events -> reconstructed INDEX_SCHEMA columns, vectorised.

Energy is smeared with sigma/E = sqrt((a/sqrt(E))^2 + b^2 + (c/E)^2), vertices by
``vertex_res_1mev / sqrt(E)`` per coordinate, muon track points by ``track_res``.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from jaas.formats.schema import EventClass
from jaas.sim.params import PhysicsParams
from jaas.sim.truth import SOURCES, TRACK_COLUMNS, Events

__all__ = ["energy_resolution", "index_columns"]

_MUON = SOURCES.index("muon")
_MUON_WP = SOURCES.index("muon_wp")


def energy_resolution(energy: npt.ArrayLike, p: PhysicsParams) -> npt.NDArray[np.float64]:
    """Relative resolution sigma/E at visible energy ``energy`` (MeV), 0 where E <= 0."""
    e = np.asarray(energy, dtype=np.float64)
    safe = np.where(e > 0, e, 1.0)
    rel = np.sqrt(p.res_a**2 / safe + p.res_b**2 + (p.res_c / safe) ** 2)
    return np.where(e > 0, rel, 0.0)


def index_columns(
    events: Events, rng: np.random.Generator, p: PhysicsParams
) -> dict[str, npt.NDArray[np.generic]]:
    """Reconstructed columns (without run, file_id, entry) for ``events``, same order.

    Example:
        >>> from jaas.sim.params import SimConfig
        >>> ev = Events.make(1, t=0, uid=0, src=6, role=0, E_true=2.0, x=0, y=0, z=1)
        >>> cols = index_columns(ev, np.random.default_rng(0), PhysicsParams())
        >>> bool(cols["cls"][0] == 0)
        True
    """
    n = len(events)
    e_true = events["E_true"].astype(np.float64)
    energy = e_true * (1 + energy_resolution(e_true, p) * rng.standard_normal(n))
    energy = np.clip(energy, 0.0, None)
    src = events["src"]
    is_mu = src == _MUON
    is_wp = src == _MUON_WP
    sigma_v = p.vertex_res_1mev / np.sqrt(np.maximum(e_true, 0.1))
    vertex = [events[c] + sigma_v * rng.standard_normal(n) for c in ("x", "y", "z")]
    r = np.sqrt(vertex[0] ** 2 + vertex[1] ** 2 + vertex[2] ** 2)
    showering = events["showering"]
    untracked = showering & (rng.random(n) < p.untracked_showering_fraction)
    tracked = is_mu & ~untracked
    rows = np.flatnonzero(tracked)  # track points are smeared only where reconstructed
    track = {}
    for c in TRACK_COLUMNS:
        col = np.full(n, np.nan, np.float32)
        col[rows] = events[c][rows] + p.track_res * rng.standard_normal(len(rows))
        track[c] = col
    cls = np.where(is_mu, EventClass.MUON, np.where(is_wp, EventClass.WP_ONLY, EventClass.POINT))
    return {
        "t": events["t"],
        "E": energy.astype(np.float32),
        "x": vertex[0].astype(np.float32),
        "y": vertex[1].astype(np.float32),
        "z": vertex[2].astype(np.float32),
        "r": r.astype(np.float32),
        "pe": (energy * p.light_yield).astype(np.float32),
        "cls": cls.astype(np.uint8),
        "muon": is_mu | is_wp,
        "wp": events["wp"].copy(),
        "showering": showering.copy(),
        "tracked": tracked,
        **track,
        "quality": np.zeros(n, np.uint8),
    }
