"""``res.events()`` reads foreign ESD through its schema mapping (issue 15, item 12).

Files written by other software are ingested with a mapping (``store add --schema``);
the full-event redirect then reads the foreign tree at the candidates' entries and
returns the mapped columns, the mapping's extra columns included.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import uproot

import jaas
from jaas.engine.session.analysis import IBDSelection
from jaas.engine.session.cache import ColumnCache
from jaas.errors import FormatError, NotInCatalogError
from jaas.store import Catalog
from jaas.store.foreign import ingest_foreign, ingest_foreign_many
from jaas.store.mapping import parse_mapping
from jaas.store.redirect import fetch_events
from tests.engine.test_foreign_dataset import MAPPING as BASE_MAPPING
from tests.store.test_foreign import ZMUMU, _zmumu

SEC0 = 1_767_225_600
S, US = 1_000_000_000, 1_000
# the mapping of the foreign-dataset test, with the file's own event id carried along
MAPPING = BASE_MAPPING + "extra:\n  evt: {branch: EvtID}\n"


def _write(path: Path, times_ns: list[int], energies_mev: list[float], first_id: int) -> None:
    t = np.array(times_ns, np.int64)
    n = len(t)
    data = {
        "sec": (t // S).astype(np.uint32),
        "nanosec": (t % S).astype(np.uint32),
        "recx": np.zeros(n),
        "recy": np.full(n, 250.0),
        "recz": np.full(n, 100.0),
        "Erec": (np.array(energies_mev) / 1000).astype(np.float32),
        "EvtID": np.arange(first_id, first_id + n, dtype=np.int64),
    }
    with uproot.recreate(path) as f:
        f.mktree("TEvent", {k: v.dtype for k, v in data.items()}).extend(data)


def test_pairs_of_foreign_files_come_back_with_mapped_columns(tmp_path: Path) -> None:
    t0 = SEC0 * S
    # a pair inside file 0, and one straddling the boundary at t0 + 10 s
    _write(tmp_path / "f0.root", [t0, t0 + 2 * S, t0 + 2 * S + 50 * US, t0 + 10 * S - 80 * US],
           [1.0, 3.0, 2.2, 4.0], first_id=100)  # fmt: skip
    _write(tmp_path / "f1.root", [t0 + 10 * S + 20 * US, t0 + 15 * S], [2.2, 1.0], first_id=200)
    (tmp_path / "map.yaml").write_text(MAPPING)
    url = f"sqlite:///{tmp_path / 'catalog.db'}"
    with Catalog(url) as cat:
        done, failed = ingest_foreign_many(
            cat, [tmp_path / "f0.root", tmp_path / "f1.root"], tmp_path / "map.yaml",
            out_dir=tmp_path / "index",
        )  # fmt: skip
        assert failed == []
        cat.create_dataset("foreign", file_ids=[d.index.id for d in done])
        esd_ids = [d.esd.id for d in done]
    res = jaas.open(url, dataset="foreign", cache=ColumnCache()).ibd(
        IBDSelection(vetoes=(), offtime=None)
    )
    assert len(res.pairs) == 2
    with Catalog(url) as cat:
        ev = res.events(catalog=cat)  # the default with_hits=True: foreign files have none
    assert ev.hits is None and len(ev) == 4
    frame = ev.esd
    # prompts first, then delayed; the foreign file's own event id comes along
    assert frame["evt"].tolist() == [101, 103, 102, 200]
    assert frame["file_id"].tolist() == [esd_ids[0], esd_ids[0], esd_ids[0], esd_ids[1]]
    assert frame["entry"].tolist() == [1, 3, 2, 0]
    np.testing.assert_allclose(frame["E"], [3.0, 4.0, 2.2, 2.2], rtol=1e-6)
    np.testing.assert_allclose(frame["y"], 0.25)  # mm -> m through the mapping
    assert frame["t"].tolist() == [
        t0 + 2 * S, t0 + 10 * S - 80 * US, t0 + 2 * S + 50 * US, t0 + 10 * S + 20 * US
    ]  # fmt: skip
    assert "event_id" not in frame.columns  # jaas ESD columns are not made up


def test_skhep_zmumu_entries_through_the_mapping(tmp_path: Path) -> None:
    src = _zmumu()
    direct = uproot.open(src)["events"].arrays(["E1", "Q1", "Event"], library="np")
    with Catalog(tmp_path / "catalog.db") as cat:
        fid = ingest_foreign(cat, src, parse_mapping(ZMUMU, "zmumu.yaml")).esd.id
        entries = [17, 0, 5]
        got = fetch_events([(fid, e) for e in entries], catalog=cat, with_hits=False).esd
        np.testing.assert_allclose(got["E"], direct["E1"][entries] * 1000, rtol=1e-6)
        np.testing.assert_array_equal(got["quality"], direct["Q1"][entries] + 1)
        expected_t = 1_700_000_000 * S + direct["Event"][entries].astype(np.int64) * 10**6
        np.testing.assert_array_equal(got["t"], expected_t)
        only = fetch_events([(fid, 3)], catalog=cat, columns=["E"]).esd
        assert list(only.columns) == ["file_id", "entry", "E"]
        with pytest.raises(FormatError, match="entry 99999 out of range"):
            fetch_events([(fid, 99_999)], catalog=cat)
        with pytest.raises(FormatError, match=r"no column \['charge'\]"):
            fetch_events([(fid, 3)], catalog=cat, columns=["charge"])


def test_foreign_and_jaas_files_with_hits_are_refused_clearly(tmp_path: Path) -> None:
    _write(tmp_path / "f0.root", [SEC0 * S + S], [3.0], first_id=1)
    (tmp_path / "map.yaml").write_text(MAPPING)
    with Catalog(tmp_path / "catalog.db") as cat:
        fid = ingest_foreign(cat, tmp_path / "f0.root", tmp_path / "map.yaml").esd.id
        with pytest.raises(NotInCatalogError, match="with_hits=False"):
            fetch_events([(fid, 0), (fid + 1000, 0)], catalog=cat, paths={fid + 1000: ("x", None)})
