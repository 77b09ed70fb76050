"""Live data quality: rates per hour of the published keep-up dataset through the engine."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from jaas.formats.index import write_index
from jaas.formats.schema import INDEX_SCHEMA
from jaas.store import Catalog

HOUR = 3600 * 10**9
T0 = 1_780_000_000 // 3600 * 3600 * 10**9  # an hour boundary


def _index(path: Path, seq: int, events: list[tuple[float, float, int]]) -> Path:
    """An index file of (seconds after T0, energy MeV, class) events, all at r = 5 m."""
    n = len(events)
    cols = {f.name: np.zeros(n, dtype=f.type.to_pandas_dtype()) for f in INDEX_SCHEMA}
    cols["run"][:] = 1
    cols["file_id"][:] = seq
    cols["entry"] = np.arange(n)
    cols["t"] = np.array([T0 + int(s * 1e9) for s, _, _ in events], dtype=np.int64)
    cols["E"] = np.array([e for _, e, _ in events], dtype=np.float32)
    cols["x"][:] = 5.0
    cols["r"][:] = 5.0
    cols["cls"] = np.array([c for _, _, c in events], dtype=np.uint8)
    cols["muon"] = cols["cls"] == 1
    write_index(cols, path, metadata={"run": "1", "file_seq": str(seq)})
    return path


def _ibd(at: float) -> list[tuple[float, float, int]]:
    return [(at, 3.0, 0), (at + 200e-6, 2.2, 0)]


def _publish(url: str, path: Path, seq: int) -> None:
    with Catalog(url) as cat:
        rec = cat.add_file(path, kind="index", run=1, seq=seq)
        cat.add_to_dataset("keepup", [rec.id], version=1)


def test_rates_per_hour_follow_the_published_dataset(client, ledger, tmp_path):
    r = client.get("/api/quality")
    assert r.status_code == 200 and r.json()["available"] is False, r.text
    first = [(1.0, 500.0, 1), (2.0, 500.0, 1), (3.0, 500.0, 1), *_ibd(100.0)]
    first += [(3601.0, 500.0, 1), *_ibd(3700.0), *_ibd(3800.0), (3900.0, 8.0, 0)]
    _publish(ledger.url, _index(tmp_path / "a.index.parquet", 0, first), 0)
    q = client.get("/api/quality").json()
    assert q["available"] is True and q["files"] == 1
    assert q["hours"] == [T0 / 1e9, T0 / 1e9 + 3600]
    assert q["triggers"] == [5, 6]
    assert q["muons"] == [3, 1]
    assert q["ibd"] == [1, 2]
    # seconds of data per hour from the file's span (1 s .. 3900 s): rates need them
    assert q["covered_s"] == [3599.0, 300.0]
    # a newly published file: the cache sees the dataset changed
    later = [(2 * 3600.0 + 10, 500.0, 1), *_ibd(2 * 3600.0 + 100)]
    _publish(ledger.url, _index(tmp_path / "b.index.parquet", 1, later), 1)
    q = client.get("/api/quality").json()
    assert q["files"] == 2 and q["muons"] == [3, 1, 1] and q["ibd"] == [1, 2, 1]
    assert q["covered_s"] == [3599.0, 300.0, 90.0]  # 7210 s .. 7300.0002 s
    r = client.get("/api/quality", params={"dataset": ""})
    assert r.status_code == 422 and "dataset" in r.json()["detail"]
