"""Seeded synthetic events shared by the RAW tests."""

from __future__ import annotations

import numpy as np

from jaas.formats.events import HitEvents


def make_events(n: int, seed: int = 1, max_hits: int = 40, id0: int = 1000) -> HitEvents:
    """``n`` time-ordered events with consecutive ids and 0..max_hits-1 hits each."""
    rng = np.random.default_rng(seed)
    nh = rng.integers(0, max_hits, n)
    offsets = np.concatenate([[0], np.cumsum(nh)]).astype(np.int64)
    h = int(offsets[-1])
    return HitEvents(
        event_id=np.arange(id0, id0 + n, dtype=np.uint64),
        t=(1_700_000_000 * 10**9 + np.cumsum(rng.integers(0, 10**6, n))).astype(np.int64),
        trigger=rng.integers(0, 8, n).astype(np.uint16),
        offsets=offsets,
        pmt=rng.integers(0, 17_612, h).astype(np.uint32),
        charge=rng.exponential(1.0, h).astype(np.float32),
        time=rng.normal(0.0, 100.0, h).astype(np.float32),
    )


def assert_same(a: HitEvents, b: HitEvents) -> None:
    for name in ("event_id", "t", "trigger", "offsets", "pmt", "charge", "time"):
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype, name
        np.testing.assert_array_equal(x, y, err_msg=name)
