"""Live data quality: trigger, muon and IBD-candidate rates per hour of the published
keep-up dataset, computed through the engine (``jaas.open`` of the catalog dataset, the
standard ``ibd()`` selection) and cached until the dataset's files change.

The catalog is the pipeline's database (``settings.db_url``), as for ``jaas kup up``. The
live stream sends a ``quality`` frame when files are published; the SPA then asks again.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Annotated

import numpy as np
from fastapi import APIRouter, Query, Request

from jaas.errors import CatalogError, ConfigError, DatabaseError, NotInCatalogError
from jaas.formats.schema import EventClass
from jaas.portal.app import _ERRORS, ReaderDep
from jaas.portal.schemas import QualityOut

if TYPE_CHECKING:
    from jaas.engine.session.dataset import Dataset

__all__ = ["QualityCache", "router"]

router = APIRouter(tags=["quality"])
HOUR_NS = 3600 * 10**9


def _per_hour(t: np.ndarray, first: int, n: int) -> list[int]:
    if n == 0:
        return []
    idx = (t - first) // HOUR_NS
    return [int(x) for x in np.bincount(idx.astype(np.int64), minlength=n)[:n]]


def _covered(spans: list[tuple[int, int]], first: int, n: int) -> list[float]:
    """Seconds of each hour inside the files' ``[t_min, t_max]`` spans (which a dataset
    keeps from overlapping)."""
    out = np.zeros(n)
    for lo, hi in spans:
        for i in range(max(0, (lo - first) // HOUR_NS), min(n, (hi - first) // HOUR_NS + 1)):
            start = first + i * HOUR_NS
            out[i] += max(0, min(hi, start + HOUR_NS) - max(lo, start)) / 1e9
    return [round(float(x), 3) for x in out]


class QualityCache:
    """Rates per hour of one catalog dataset, recomputed only when its files change."""

    def __init__(self, catalog_url: str) -> None:
        self.url = catalog_url
        self._lock = threading.Lock()
        self._key: tuple[str, tuple[str, ...]] | None = None
        self._value: QualityOut | None = None

    def get(self, dataset: str) -> QualityOut:
        from jaas.engine.session.dataset import open_dataset  # heavy: only when asked

        try:
            ds = open_dataset(self.url, dataset=dataset)
        except (NotInCatalogError, CatalogError, ConfigError, DatabaseError) as exc:
            return QualityOut(dataset=dataset, available=False, detail=str(exc).strip("'\""))
        key = (dataset, tuple(f.path for f in ds.files))
        with self._lock:
            if self._key == key and self._value is not None:
                return self._value
            value = self._compute(dataset, ds)
            self._key, self._value = key, value
            return value

    def _compute(self, dataset: str, ds: Dataset) -> QualityOut:
        if not ds.files or ds.n_events == 0:
            return QualityOut(dataset=dataset, available=True, files=len(ds.files))
        cols = ds.load(["t", "cls"])
        t = cols["t"]
        first = int(t.min()) // HOUR_NS * HOUR_NS
        n = int((int(t.max()) - first) // HOUR_NS) + 1
        res = ds.ibd()
        prompt_t = res.columns["t"][res.result.prompt]
        return QualityOut(
            dataset=dataset,
            available=True,
            files=len(ds.files),
            hours=[(first + i * HOUR_NS) / 1e9 for i in range(n)],
            triggers=_per_hour(t, first, n),
            muons=_per_hour(t[cols["cls"] == EventClass.MUON], first, n),
            ibd=_per_hour(np.asarray(prompt_t), first, n),
            covered_s=_covered([(f.t_min, f.t_max) for f in ds.files], first, n),
        )


def get_cache(request: Request) -> QualityCache:
    state = request.app.state
    if getattr(state, "quality", None) is None:
        state.quality = QualityCache(state.settings.db_url)
    cache: QualityCache = state.quality
    return cache


@router.get("/api/quality", response_model=QualityOut, responses=_ERRORS)
def quality(
    request: Request,
    _: ReaderDep,
    dataset: Annotated[str, Query(min_length=1, max_length=128)] = "keepup",
) -> QualityOut:
    """Triggers, CD muons and IBD candidates per hour of the published dataset (cached)."""
    return get_cache(request).get(dataset)
