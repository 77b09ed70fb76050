"""RAW files whose records pass their CRCs but hold impossible values: a deterministic
InvalidContentError naming the file, the event and the field, from the reader, the
converter and the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from jaas.errors import CorruptRecordError, FormatError, InvalidContentError
from jaas.formats.raw import RawReader, RawWriter
from jaas.formats.rtraw import convert_raw
from tests.formats.test_rtraw import make_hits


def _write(path: Path, *, pmt_at: int | None = None, pmt: int = 0, nan: str | None = None,
           metadata: str = "") -> Path:  # fmt: skip
    hits = make_hits(50, seed=5)
    if pmt_at is not None:
        hits.pmt[pmt_at] = pmt
    if nan is not None:
        getattr(hits, nan)[int(hits.offsets[30]) + 2] = np.nan
    with RawWriter(path, run=1, file_seq=0, start_time=int(hits.t[0]), metadata=metadata) as w:
        w.write_batch(hits)
    return path


def _event_of_hit(hit: int) -> int:
    offsets = make_hits(50, seed=5).offsets
    return int(np.searchsorted(offsets, hit, "right")) - 1


def test_pmt_id_out_of_range_names_file_event_and_field(tmp_path: Path) -> None:
    path = _write(tmp_path / "bad_pmt.raw", pmt_at=400, pmt=999_999)
    with pytest.raises(InvalidContentError) as info, RawReader(path) as reader:
        for _ in reader:
            pass
    err = info.value
    assert err.field == "pmt" and err.path == str(path) and err.event == _event_of_hit(400)
    assert "999999" in str(err) and "bad_pmt.raw" in str(err) and "PMT id" in str(err)
    assert isinstance(err, FormatError) and not isinstance(err, CorruptRecordError)


@pytest.mark.parametrize("field", ["charge", "time"])
def test_nan_values_are_refused(tmp_path: Path, field: str) -> None:
    path = _write(tmp_path / f"nan_{field}.raw", nan=field)
    with pytest.raises(InvalidContentError) as info, RawReader(path, salvage=True) as reader:
        for _ in reader:
            pass
    assert info.value.field == field and info.value.event == 30
    assert "not a finite number" in str(info.value)


def test_the_detector_in_the_metadata_sets_the_pmt_range(tmp_path: Path) -> None:
    meta = json.dumps({"n_pmt": 20_000})
    ok = _write(tmp_path / "ok.raw", pmt_at=10, pmt=19_999, metadata=meta)
    with RawReader(ok) as reader:
        assert sum(len(b) for b in reader) == 50
    small = json.dumps({"detector": {"params": {"n_pmt": 17_612}, "pmt_scale": 0.01}})
    bad = _write(tmp_path / "bad.raw", pmt_at=10, pmt=200, metadata=small)  # 176 PMTs
    with pytest.raises(InvalidContentError, match=r"has 176\)"), RawReader(bad) as reader:
        for _ in reader:
            pass


def test_a_simulated_run_is_valid(tmp_path: Path) -> None:
    from jaas.sim.run import simulate

    cfg = {"duration_s": 2.0, "mode": "hit", "pmt_scale": 0.05, "write_truth": False}
    summary = simulate({**cfg, "block_s": 2, "chunk_s": 2}, tmp_path / "s")
    raw = tmp_path / "s" / summary.files[0].path
    with RawReader(raw) as reader:
        assert json.loads(reader.header.metadata)["n_pmt"] == reader.n_pmt == 881
        assert sum(len(b) for b in reader) == summary.files[0].n_events


def test_convert_refuses_and_leaves_no_output(tmp_path: Path) -> None:
    path = _write(tmp_path / "run000001_0000.raw", nan="charge")
    with pytest.raises(InvalidContentError):
        convert_raw(path, tmp_path / "out.rtraw.root")
    assert not list(tmp_path.glob("*.root"))
    out = subprocess.run(
        [sys.executable, "-m", "jaas.cli.main", "convert", str(path), "-o", str(tmp_path / "o")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 1 and "Traceback" not in out.stderr
    (line,) = out.stderr.splitlines()
    assert "run000001_0000.raw" in line and "event 30" in line and "'charge'" in line
