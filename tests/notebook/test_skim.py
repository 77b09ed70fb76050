"""res.skim(path): the candidates' full events through the index redirect, as a ROOT
file uproot reads back, and an entry list per input ESD file."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import uproot

import jaas
from jaas.engine.session.cache import ColumnCache
from jaas.formats.esd import write_esd
from jaas.formats.indexing import build_index
from jaas.formats.rtraw import write_rtraw
from tests.formats.test_esd import make_esd, meta
from tests.formats.test_rtraw import make_hits


def test_skim_writes_full_events_and_entry_lists(tmp_path: Path) -> None:
    paths: dict[int, tuple[str, str]] = {}
    esd_cols = {}
    data = tmp_path / "data"
    data.mkdir()
    for k, fid in enumerate((7, 8)):
        h = make_hits(300, seed=fid, first_id=k * 300)
        h.t[:] += k * 10**12  # the second file follows the first in time
        rt = tmp_path / f"run000001_{k:04d}.rtraw.root"
        write_rtraw([h], rt, meta={"run": 1, "file_seq": k})
        cols = make_esd(300, seed=100 + fid, event_ids=h.event_id)
        cols["t"] = h.t
        es = tmp_path / f"run000001_{k:04d}.esd.root"
        write_esd(cols, es, meta=meta(file_seq=k, parent=rt.name))
        build_index(es, data / f"run000001_{k:04d}.index.parquet", file_id=fid)
        paths[fid], esd_cols[fid] = (str(es), str(rt)), cols
    ds = jaas.open(data, cache=ColumnCache())
    res = ds.coincidence(prompt="E > 0.5", delayed="E > 0.5", dt="1 ms", mode="all")
    assert res.n_pairs > 3
    out = res.skim(tmp_path / "cands.root", paths=paths)
    assert out.n_events == 2 * res.n_pairs
    with uproot.open(out.root_path) as f:
        tree = f["events"]
        arrays = tree.arrays(library="np")
        assert tree.num_entries == 2 * res.n_pairs
        jagged = tree["hit_pmt"].array()
    pairs = res.pairs
    prompt = arrays["role"] == 0
    np.testing.assert_array_equal(arrays["src_entry"][prompt], pairs["prompt_entry"])
    for i in range(len(arrays["E"])):  # every row is the ESD event the redirect names
        fid, ent = int(arrays["src_file_id"][i]), int(arrays["src_entry"][i])
        assert arrays["E"][i] == np.float32(esd_cols[fid]["E"][ent])
        assert arrays["event_id"][i] == esd_cols[fid]["event_id"][ent]
    assert len(jagged) == 2 * res.n_pairs
    lists = json.loads(out.entries_path.read_text())
    assert set(lists) <= {paths[7][0], paths[8][0]}
    for esd_path, entries in lists.items():
        fid = next(f for f, p in paths.items() if p[0] == esd_path)
        want = set(arrays["src_entry"][arrays["src_file_id"] == fid].tolist())
        assert entries == sorted(want)
