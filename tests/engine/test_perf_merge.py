"""The O(partitions) merge helpers give exactly the general union / concatenation."""

from __future__ import annotations

import itertools

import numpy as np

from jaas.engine.core import kernels as K
from jaas.engine.core._join import concat, join_intervals


def _union(a: np.ndarray) -> np.ndarray:
    out: np.ndarray = K.union2(a, np.empty((0, 2), np.int64))[0]
    return out


def _pieces(rng: np.random.Generator, k: int) -> list[np.ndarray]:
    """Normal interval lists cut at boundaries, as partitions emit them (with touches)."""
    edges = np.sort(rng.choice(np.arange(1, 999), size=k - 1, replace=False))
    bounds = [0, *edges.tolist(), 1000]
    pts = np.unique(rng.integers(0, 1000, 40))
    iv = np.stack([pts[:-1:2], pts[1::2]], axis=1) if len(pts) > 1 else np.empty((0, 2))
    iv = _union(iv[iv[:, 1] > iv[:, 0]].astype(np.int64)) if len(iv) else iv.astype(np.int64)
    pieces = []
    for lo, hi in itertools.pairwise(bounds):
        c = np.clip(iv, lo, hi)
        pieces.append(c[c[:, 1] > c[:, 0]].astype(np.int64))
    return pieces


def test_join_equals_the_union_of_the_concatenation() -> None:
    rng = np.random.default_rng(11)
    touched = 0
    for _ in range(300):
        pieces = _pieces(rng, int(rng.integers(1, 12)))
        cat = np.concatenate(pieces)
        want = _union(cat)
        touched += len(want) < len(cat)
        assert np.array_equal(join_intervals(pieces, _union), want)
    assert touched > 50  # the boundary joins were exercised


def test_overlapping_pieces_fall_back_to_the_general_union() -> None:
    pieces = [np.array([[0, 10]], np.int64), np.array([[5, 20], [30, 40]], np.int64)]
    assert join_intervals(pieces, _union).tolist() == [[0, 20], [30, 40]]
    assert join_intervals([np.empty((0, 2), np.int64)] * 3, _union).shape == (0, 2)


def test_threaded_concat_is_the_plain_concatenation() -> None:
    rng = np.random.default_rng(2)
    arrays = [rng.integers(0, 1 << 30, int(n)).astype(np.uint32) for n in (3 << 20, 0, 5, 1 << 21)]
    assert np.array_equal(concat(arrays, threads=2), np.concatenate(arrays))
    pairs = [rng.integers(0, 9, (int(n), 2)) for n in (1 << 20, 7)]
    assert np.array_equal(concat(pairs, threads=3), np.concatenate(pairs))
