"""Assert that a distributed result equals the local engine's, field by field."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd


def assert_identical(dist: Any, ref: Any) -> None:
    a, b = dist.result, ref.result
    for name in ("prompt", "delayed", "veto_bits", "veto_intervals", "off_prompt",
                 "off_delayed", "off_window"):  # fmt: skip
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    assert a.exposure == b.exposure
    assert (a.accidentals is None) == (b.accidentals is None)
    if a.accidentals is not None:
        assert (a.accidentals.n_off, a.accidentals.n_windows) == (
            b.accidentals.n_off,
            b.accidentals.n_windows,
        )
    assert a.columns.keys() == b.columns.keys()
    for name in a.columns:
        np.testing.assert_array_equal(a.columns[name], b.columns[name], err_msg=name)
    assert dist.columns.keys() == ref.columns.keys()
    for name in ref.columns:
        np.testing.assert_array_equal(dist.columns[name], ref.columns[name], err_msg=name)
        assert dist.columns[name].dtype == ref.columns[name].dtype, name
    for name in ref.masks:
        np.testing.assert_array_equal(dist.masks[name], ref.masks[name], err_msg=name)
    pd.testing.assert_frame_equal(dist.pairs, ref.pairs)


def worker_of(info: Any, t: np.ndarray) -> np.ndarray:
    """The worker that ran the partition holding each time ``t``."""
    lo = np.array([p[1] for p in info.partitions], np.int64)
    k = np.searchsorted(lo, t, side="right") - 1
    return np.array([info.partitions[i][3] for i in k])
