"""The faster index-mode pipeline keeps the output: same order, same rows, errors surface."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from jaas.sim.params import SimConfig
from jaas.sim.stream import generate_truth, prefetch
from jaas.sim.truth import Events


def test_order_matches_two_key_sort_with_and_without_equal_times() -> None:
    rng = np.random.default_rng(3)
    for t in (rng.permutation(1000).astype(np.int64), rng.integers(0, 50, 1000)):
        uid = rng.permutation(len(t)).astype(np.int64)
        ev = Events.make(len(t), t=t, uid=uid, src=0, role=0, E_true=1.0, x=0, y=0, z=0)
        assert np.array_equal(ev.order(), np.lexsort((uid, t)))


def test_prefetch_keeps_order_and_reraises_the_producer_error() -> None:
    assert list(prefetch(iter(range(100)), depth=3)) == list(range(100))

    def failing() -> Iterator[int]:
        yield 1
        raise ValueError("bad chunk")

    it = prefetch(failing())
    assert next(it) == 1
    with pytest.raises(ValueError, match="bad chunk"):
        next(it)


def test_leaving_a_prefetch_loop_early_stops_the_producer() -> None:
    produced = []

    def endless() -> Iterator[int]:
        i = 0
        while True:
            produced.append(i)
            yield i
            i += 1

    for x in prefetch(endless()):
        if x == 5:
            break
    n = len(produced)
    assert n <= 8  # at most the depth ahead (plus the one being put)


def test_chunks_are_the_same_with_prefetch_and_any_chunk_size() -> None:
    base = {"duration_s": 4 * 600, "seed": 5, "block_s": 600}
    one = Events.concat(c.events for c in generate_truth(SimConfig(**base, chunk_s=4 * 600)))
    many = Events.concat(c.events for c in prefetch(generate_truth(SimConfig(**base, chunk_s=600))))
    assert len(one) > 0
    for name in one.cols:
        assert np.array_equal(one[name], many[name], equal_nan=True), name
