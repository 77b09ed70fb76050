"""Datasets whose files disagree: duplicates, overlaps, foreign files without sequence."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import jaas
from jaas.engine.session.analysis import IBDSelection
from jaas.engine.session.cache import ColumnCache
from jaas.errors import ConfigError
from jaas.formats.index import write_index
from jaas.formats.schema import INDEX_SCHEMA, EventClass

T0 = 1_767_225_600_000_000_000
US = 1_000
S = 1_000_000_000
NO_VETO = IBDSelection(vetoes=(), offtime=None)


def _write(
    path: Path,
    events: list[tuple[int, float, float]],
    *,
    run: int,
    file_id: int,
    seq: int | None,
) -> None:
    n = len(events)
    cols = {f.name: np.zeros(n, dtype=f.type.to_pandas_dtype()) for f in INDEX_SCHEMA}
    cols["t"] = np.array([e[0] for e in events], np.int64)
    cols["E"] = np.array([e[1] for e in events], np.float32)
    cols["x"] = np.array([e[2] for e in events], np.float32)
    cols["r"] = np.abs(cols["x"])
    cols["cls"] = np.full(n, EventClass.POINT, np.uint8)
    for c in ("mx0", "my0", "mz0", "mx1", "my1", "mz1"):
        cols[c] = np.full(n, np.nan, np.float32)
    cols.update(run=np.full(n, run), file_id=np.full(n, file_id), entry=np.arange(n))
    meta = {"run": str(run)} if seq is None else {"run": str(run), "file_seq": str(seq)}
    write_index(cols, path, metadata=meta)


def _pair(t: int) -> list[tuple[int, float, float]]:
    """A prompt 100 us before ``t`` and a delayed 100 us after: straddling ``t``."""
    return [(t - 100 * US, 3.0, 0.0), (t + 100 * US, 2.2, 0.3)]


def test_foreign_files_with_interleaved_catalog_ids_stay_contiguous(tmp_path: Path) -> None:
    """Catalog ids 1, 3, 5 (index files took 2 and 4) and no sequence metadata: no gap
    between the files, and the pair straddling each boundary is found."""
    edges = [T0 + 10 * S, T0 + 20 * S]
    events = sorted([(T0 + 1 * S, 1.0, 0.0), *_pair(edges[0]), *_pair(edges[1])])
    for k, file_id in enumerate((5, 1, 3)):  # ids in no particular time order
        lo, hi = T0 + k * 10 * S, T0 + (k + 1) * 10 * S
        chunk = [e for e in events if lo <= e[0] < hi] or [(lo + S, 1.0, 0.0)]
        _write(tmp_path / f"foreign_{k}.parquet", chunk, run=9, file_id=file_id, seq=None)
    ds = jaas.open(tmp_path, cache=ColumnCache())
    assert ds.lost == [] and len(ds.segments) == 1, ds.info()
    assert [f.path for f in ds.files] == sorted(f.path for f in ds.files)  # by time
    res = ds.ibd(NO_VETO)
    assert res.n_pairs == 2
    t = res.columns["t"]
    assert sorted(int(t[d]) for d in res.result.delayed) == [e + 100 * US for e in edges]


def test_two_files_claiming_the_same_run_and_sequence_are_refused(tmp_path: Path) -> None:
    _write(tmp_path / "a.parquet", [(T0, 1.0, 0.0)], run=3, file_id=1, seq=0)
    _write(tmp_path / "b.parquet", [(T0 + 5 * S, 1.0, 0.0)], run=3, file_id=2, seq=0)
    ds = jaas.open(tmp_path, cache=ColumnCache())
    assert "both claim run 3 sequence 0" in ds.info()
    with pytest.raises(ConfigError, match=r"a\.parquet and .*b\.parquet both claim run 3"):
        ds.ibd()
    with pytest.raises(ConfigError, match="both claim"):
        ds.select("E > 0 MeV")


def test_files_of_one_run_overlapping_in_time_are_refused(tmp_path: Path) -> None:
    _write(
        tmp_path / "a.parquet", [(T0, 1.0, 0.0), (T0 + 9 * S, 1.0, 0.0)], run=3, file_id=1, seq=0
    )
    _write(tmp_path / "b.parquet", [(T0 + 5 * S, 1.0, 0.0)], run=3, file_id=2, seq=1)
    ds = jaas.open(tmp_path, cache=ColumnCache())
    with pytest.raises(ConfigError, match="overlap in time"):
        ds.coincidence(prompt="E > 0 MeV", delayed="E > 0 MeV", dt="1 ms")


def test_runs_overlapping_in_time_are_refused_not_summed(tmp_path: Path) -> None:
    """Two simulated runs with the same default start: refused with the runs named."""
    for run in (1, 2):
        events = sorted(_pair(T0 + 5 * S + run * 1_000 * US))
        _write(tmp_path / f"run{run:06d}_0000.parquet", events, run=run, file_id=run, seq=0)
        meta = {"run": run, "start_ns": T0, "end_ns": T0 + 10 * S}
        (tmp_path / f"run{run:06d}.json").write_text(json.dumps(meta))
    ds = jaas.open(tmp_path, cache=ColumnCache())
    with pytest.raises(ConfigError, match=r"runs 1 and 2 overlap in time.*separately"):
        ds.ibd(NO_VETO)
    one = jaas.open(tmp_path / "run000001_0000.parquet", cache=ColumnCache())
    assert one.problems == [] and one.ibd(NO_VETO).dataset.runs == [1]  # alone: fine


def test_zero_row_file_holds_no_time(tmp_path: Path) -> None:
    _write(tmp_path / "a.parquet", [(T0 + S, 1.0, 0.0)], run=4, file_id=1, seq=0)
    _write(tmp_path / "b.parquet", [], run=4, file_id=2, seq=1)
    _write(tmp_path / "c.parquet", [(T0 + 3 * S, 1.0, 0.0)], run=4, file_id=3, seq=2)
    ds = jaas.open(tmp_path, cache=ColumnCache())
    assert ds.problems == [] and ds.lost == []
    assert ds.t_start == T0 + S  # not 1970 from the empty file's (0, 0)
    assert ds.select("E > 0 MeV").n == 2
