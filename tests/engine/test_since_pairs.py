"""Property test: ``SinceLast(at="pairs")`` (a walk back from each pair's events) gives
the values of the full per-event computation at the pairs, at any partitioning."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jaas.engine.core.correlate import SinceLast, Spec, correlate
from tests.engine.test_kernels_property import make_stream, segment_sets, specs

ROLES = ("prompt", "delayed", "off_prompt", "off_delayed")


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.one_of(st.integers(0, 8), st.integers(30, 90)),
    spec=specs(),
    horizon=st.integers(0, 8000),
    segs=segment_sets(),
    part=st.integers(1, 12),
    threads=st.integers(1, 3),
    untracked=st.booleans(),
)
def test_since_at_pairs_equals_full_computation_at_the_pairs(
    seed: int,
    n: int,
    spec: Spec,
    horizon: int,
    segs: Any,
    part: int,
    threads: int,
    untracked: bool,
) -> None:
    cols = make_stream(seed, n)
    if untracked and all(v.kind != "cylinder" for v in spec.vetoes):  # distances NaN
        cols = {k: v for k, v in cols.items() if not k.startswith("m") or k == "muon"}
    full = dataclasses.replace(spec, since=(SinceLast("tmu", "muon", horizon),))
    lazy = dataclasses.replace(spec, since=(SinceLast("tmu", "muon", horizon, at="pairs"),))
    kw: dict[str, Any] = {"partition_events": max(1, n // part), "threads": threads}
    a = correlate(cols, full, segs)  # one partition, every event
    b = correlate(cols, lazy, segs, **kw)
    assert set(b.columns) == set()
    for role in ROLES:
        np.testing.assert_array_equal(getattr(a, role), getattr(b, role))
        idx = getattr(a, role)
        for col in ("tmu", "tmu_dist"):
            want = a.columns[col][idx]
            np.testing.assert_array_equal(a.pair_columns[f"{role}_{col}"], want)
            np.testing.assert_array_equal(b.pair_columns[f"{role}_{col}"], want, err_msg=role)
    if spec.coincidence is not None and a.prompt.size:
        assert list(b.pair_columns)[:2] == ["prompt_tmu", "delayed_tmu"]


def test_since_at_pairs_reads_back_past_the_partition_halo_for_an_off_time_prompt() -> None:
    """An off-time prompt 23 s before its delayed, a muon 5 s before that prompt: the
    partition of the delayed must still see the muon."""
    from jaas.engine.core.correlate import Coincidence, OffTime

    s = 1_000_000_000
    t = np.array([0, 2 * s, 7 * s, 7 * s + 1000, 30 * s], np.int64)
    cols = {
        "t": t,
        "muon": np.array([False, True, False, False, False]),
        "p": np.array([False, False, True, False, False]),
        "d": np.array([False, False, False, False, True]),
        "x": np.zeros(5, np.float32),
        "y": np.zeros(5, np.float32),
        "z": np.zeros(5, np.float32),
    }
    coinc = Coincidence("p", "d", 1000, offtime=OffTime(1, 23 * s - 500))
    spec = Spec(coincidence=coinc, since=(SinceLast("tmu", "muon", 6 * s, at="pairs"),))
    for k in (1, 2, 3, 4):
        r = correlate(cols, spec, [[0, 40 * s]], partition_events=k)
        assert r.off_prompt.tolist() == [2]
        assert r.pair_columns["off_prompt_tmu"].tolist() == [5.0 * s]
        assert r.pair_columns["off_delayed_tmu"].tolist() == [np.inf]
