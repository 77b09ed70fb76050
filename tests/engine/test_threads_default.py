"""How many threads a local query uses when the caller names none: ``JAAS_THREADS``,
else one per usable core on large data (JupyterHub's ``CPU_LIMIT`` caps it), with the
same result as one thread."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from jaas.engine.session import backend as B
from jaas.errors import ConfigError
from tests.engine import test_analysis

dataset = test_analysis.dataset  # the hand-built dataset fixture


@pytest.fixture
def four_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(B.os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    monkeypatch.delenv("JAAS_THREADS", raising=False)
    monkeypatch.delenv("CPU_LIMIT", raising=False)


def test_auto_is_one_thread_per_core_on_large_data(four_cores: None) -> None:
    per = B.AUTO_EVENTS_PER_THREAD
    assert B.local_threads(None, 100 * per) == 4
    assert B.local_threads(None, 2 * per + 1) == 2  # each thread gets enough events
    assert B.local_threads(None, per - 1) == 1  # small queries stay on one thread
    assert B.local_threads(None, 0) == 1


def test_explicit_threads_and_the_setting_win(
    four_cores: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert B.local_threads(3, 10) == 3
    monkeypatch.setenv("JAAS_THREADS", "2")
    assert B.local_threads(None, 10**9) == 2
    assert B.local_threads(6, 10) == 6
    monkeypatch.setenv("JAAS_THREADS", "auto")
    assert B.local_threads(None, 10**9) == 4
    with pytest.raises(ConfigError, match="threads=0: give at least 1"):
        B.local_threads(0, 10)


@pytest.mark.parametrize(
    ("limit", "threads"),
    [("2", 2), ("1.5", 1), ("0.25", 1), ("x", 4), ("inf", 4), ("nan", 4)],
)
def test_a_spawners_cpu_limit_caps_auto(
    four_cores: None, monkeypatch: pytest.MonkeyPatch, limit: str, threads: int
) -> None:
    monkeypatch.setenv("CPU_LIMIT", limit)
    assert B.local_threads(None, 10**9) == threads


def test_a_query_given_no_threads_runs_on_auto_threads_with_the_same_result(
    dataset: Any, four_cores: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[int] = []

    class Counting(B.LocalBackend):
        def run(self, ds: Any, query: B.BuiltQuery, **kwargs: Any) -> B.Execution:
            seen.append(kwargs["threads"])
            return super().run(ds, query, **kwargs)

    monkeypatch.setattr(B, "AUTO_EVENTS_PER_THREAD", max(1, dataset.n_events // 8))
    auto = dataset.ibd(backend=Counting())
    one = dataset.ibd(threads=1, backend=Counting())
    assert seen == [4, 1]
    assert auto.n_pairs == one.n_pairs > 0
    np.testing.assert_array_equal(auto.result.prompt, one.result.prompt)
    np.testing.assert_array_equal(auto.result.delayed, one.result.delayed)
    np.testing.assert_array_equal(auto.result.veto_bits, one.result.veto_bits)


def test_masks_evaluated_side_by_side_equal_one_by_one(dataset: Any) -> None:
    from jaas.engine.lang.expr import parse_condition
    from jaas.engine.session.analysis import dataset_units
    from jaas.engine.session.masks import evaluate_masks

    cols = dataset.load(["E", "x", "y", "z", "muon"])
    texts = ["E > 1 MeV", "muon", "x**2 + y**2 < 16 m**2", "E > 0.7 MeV and z > 0 m", "true"]
    exprs = {f"m{i}": parse_condition(text, dataset_units(dataset)) for i, text in enumerate(texts)}
    one = evaluate_masks(exprs, cols)
    side = evaluate_masks(exprs, cols, threads=3)
    assert list(side) == list(one)
    for name in one:
        np.testing.assert_array_equal(side[name], one[name])
        assert side[name].shape == (len(cols["t"]),) and side[name].dtype == np.bool_
    assert 0 < one["m0"].sum() < len(cols["t"])


def test_warm_query_on_threads_reuses_the_merged_veto_bits(dataset: Any) -> None:
    from dataclasses import replace

    from jaas.engine.session.analysis import IBDSelection

    first = dataset.ibd(threads=2)
    again = dataset.ibd(threads=2, dr_max="1.1 m")  # pair cut only: veto phases reused
    one = dataset.ibd(threads=1, dr_max="1.1 m")
    assert first.backend_info.partitions == again.backend_info.partitions
    assert again.result.veto_bits is first.result.veto_bits  # merged once, not copied
    assert again.result.veto_intervals is first.result.veto_intervals
    np.testing.assert_array_equal(again.result.veto_intervals, one.result.veto_intervals)
    assert not again.result.veto_bits.flags.writeable
    np.testing.assert_array_equal(again.result.veto_bits, one.result.veto_bits)
    np.testing.assert_array_equal(again.result.delayed, one.result.delayed)
    mu, *rest = IBDSelection().vetoes
    other = dataset.ibd(threads=2, vetoes=(replace(mu, window="2 ms"), *rest))
    alone = dataset.ibd(threads=1, vetoes=(replace(mu, window="2 ms"), *rest))
    assert other.result.veto_bits is not first.result.veto_bits
    np.testing.assert_array_equal(other.result.veto_bits, alone.result.veto_bits)
