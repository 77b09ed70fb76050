"""Selection masks evaluated on every trigger, optionally through a column cache.

Shared by the local backend (keyed by the dataset) and the Dask worker (keyed by file):
masks are cached under the canonical text of their expression, so a warm query with one
changed cut evaluates only that mask.
"""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from jaas.engine.lang.expr import Expr
from jaas.engine.session.cache import ColumnCache

__all__ = ["cached_masks", "evaluate_masks"]


def evaluate_masks(
    exprs: Mapping[str, Expr], cols: Mapping[str, np.ndarray], *, threads: int = 1
) -> dict[str, np.ndarray]:
    """``name -> bool array`` of each condition over the rows of ``cols`` (contiguous,
    constants broadcast to every row); with ``threads`` > 1, conditions are evaluated
    side by side (numpy's loops release the GIL)."""
    n = len(cols["t"])

    def one(expr: Expr) -> np.ndarray:
        mask = np.asarray(expr.evaluate(cols), dtype=bool)
        if mask.shape != (n,) or not mask.flags.c_contiguous:  # a full mask is kept as is:
            mask = np.array(np.broadcast_to(mask, (n,)))  # no view on a writeable base, so
        return mask  # the cache can freeze it and warm queries reuse the veto phase

    if threads <= 1 or len(exprs) <= 1:
        return {name: one(expr) for name, expr in exprs.items()}
    with ThreadPoolExecutor(min(threads, len(exprs)), thread_name_prefix="jaas-mask") as pool:
        return dict(zip(exprs, pool.map(one, exprs.values()), strict=True))


def cached_masks(
    cache: ColumnCache | None,
    key: tuple[str, int, int],
    exprs: Mapping[str, Expr],
    cols: Mapping[str, np.ndarray],
    *,
    threads: int = 1,
) -> dict[str, np.ndarray]:
    """``evaluate_masks`` through ``cache`` for the source identified by ``key`` (a
    ``ColumnCache.file_key`` or a dataset fingerprint, whose columns ``cols`` are)."""
    if cache is None:
        return evaluate_masks(exprs, cols, threads=threads)
    canon = {name: str(expr) for name, expr in exprs.items()}
    by_text = {text: exprs[name] for name, text in canon.items()}

    def load(missing: list[str]) -> dict[str, np.ndarray]:
        return evaluate_masks({text: by_text[text] for text in missing}, cols, threads=threads)

    masks = cache.get_keyed((f"{key[0]}:mask", key[1], key[2]), list(by_text), load)
    return {name: masks[text] for name, text in canon.items()}
