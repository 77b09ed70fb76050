"""The analysis layer on a hand-built dataset whose answer is known pair by pair."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

import jaas
from jaas.engine.session.analysis import IBDSelection, quantity, veto
from jaas.engine.session.cache import ColumnCache
from jaas.errors import ConfigError, SelectionError
from jaas.formats.index import write_index
from jaas.formats.schema import INDEX_SCHEMA, EventClass

T0 = 1_767_225_600_000_000_000
US = 1_000
S = 1_000_000_000


def _event(t: int, E: float, x: float = 0.0, *, muon: bool = False) -> dict[str, float]:
    return {"t": t, "E": E, "x": x, "muon": muon}


# (prompt, delayed) pairs the standard IBD selection must find, and traps it must not.
GOOD = [
    (_event(T0 + 2 * S, 3.0), _event(T0 + 2 * S + 200 * US, 2.2, 0.5)),
    # across the file boundary at T0 + 10 s: found exactly once
    (_event(T0 + 10 * S - 100 * US, 5.0), _event(T0 + 10 * S + 100 * US, 2.3, -0.4)),
    (_event(T0 + 25 * S, 1.0), _event(T0 + 25 * S + 900 * US, 2.0, 1.0)),
]
TRAPS = [
    # 1 ms after a muon: vetoed
    _event(T0 + 5 * S, 20_000.0, muon=True),
    _event(T0 + 5 * S + 500 * US, 3.0),
    _event(T0 + 5 * S + 900 * US, 2.2),
    # too far apart (2 m)
    _event(T0 + 15 * S, 3.0),
    _event(T0 + 15 * S + 100 * US, 2.2, 2.0),
    # two prompts in the window: not exactly one
    _event(T0 + 20 * S, 3.0),
    _event(T0 + 20 * S + 100 * US, 4.0, 0.2),
    _event(T0 + 20 * S + 300 * US, 2.2, 0.1),
    # dt too long (1.2 ms)
    _event(T0 + 27 * S, 3.0),
    _event(T0 + 27 * S + 1200 * US, 2.2),
]


@pytest.fixture
def dataset(tmp_path: Path) -> jaas.Dataset:
    events = [e for pair in GOOD for e in pair] + TRAPS
    events.sort(key=lambda e: e["t"])
    (tmp_path / "index").mkdir()
    for seq in range(3):
        lo, hi = T0 + seq * 10 * S, T0 + (seq + 1) * 10 * S
        chunk = [e for e in events if lo <= e["t"] < hi]
        n = len(chunk)
        cols = {f.name: np.zeros(n, dtype=f.type.to_pandas_dtype()) for f in INDEX_SCHEMA}
        cols["t"] = np.array([e["t"] for e in chunk], np.int64)
        cols["E"] = np.array([e["E"] for e in chunk], np.float32)
        cols["x"] = np.array([e["x"] for e in chunk], np.float32)
        cols["r"] = np.abs(cols["x"])
        cols["muon"] = np.array([e["muon"] for e in chunk], bool)
        cols["cls"] = np.where(cols["muon"], EventClass.MUON, EventClass.POINT).astype(np.uint8)
        cols["tracked"] = cols["muon"]
        for c in ("mx0", "my0", "mz0", "mx1", "my1", "mz1"):
            cols[c] = np.full(n, np.nan, np.float32)
        cols.update(run=np.full(n, 7), file_id=np.full(n, seq), entry=np.arange(n))
        write_index(cols, tmp_path / "index" / f"run000007_{seq:04d}.parquet",
                    metadata={"file_seq": str(seq)})  # fmt: skip
    meta = {"run": 7, "start_ns": T0, "end_ns": T0 + 30 * S}
    (tmp_path / "run000007.json").write_text(json.dumps(meta))
    return jaas.open(tmp_path, cache=ColumnCache())


def test_standard_ibd_finds_exactly_the_good_pairs(dataset: jaas.Dataset) -> None:
    res = dataset.ibd(offtime=None)
    pairs = res.pairs
    assert res.n_pairs == len(GOOD)
    np.testing.assert_array_equal(pairs["prompt_t"], [p["t"] for p, _ in GOOD])
    np.testing.assert_array_equal(pairs["delayed_t"], [d["t"] for _, d in GOOD])
    np.testing.assert_allclose(pairs["dt_us"], [200, 200, 900])
    np.testing.assert_allclose(pairs["dr_m"], [0.5, 0.4, 1.0], rtol=1e-6)
    # the boundary pair: prompt from file 0, delayed from file 1
    assert pairs["prompt_file_id"].tolist()[1] == 0
    assert pairs["delayed_file_id"].tolist()[1] == 1


def test_exposure_counts_muon_veto_and_whole_run(dataset: jaas.Dataset) -> None:
    res = dataset.ibd(offtime=None)
    exp = res.exposure
    assert exp.good_ns == 30 * S
    # one muon: 1.5 ms veto (the gap veto at run start adds the longest window, 1.2 s)
    assert exp.veto_ns == 1_500_000 + 1_200_000_000
    assert exp.livetime_ns == exp.good_ns - exp.veto_ns
    rate, err = res.rate_per_day()
    assert rate == pytest.approx(3 / (30 / 86400))
    assert err == pytest.approx(np.sqrt(3) / (30 / 86400))


def test_changing_one_cut(dataset: jaas.Dataset) -> None:
    # a 2.5 m distance cut admits the 2 m trap pair; 'all' mode admits both ambiguous prompts
    assert dataset.ibd(offtime=None, dr_max="2.5 m").n_pairs == len(GOOD) + 1
    assert dataset.ibd(offtime=None, mode="all").n_pairs == len(GOOD) + 2
    assert dataset.ibd(offtime=None, dt_max="1.5 ms").n_pairs == len(GOOD) + 1
    with pytest.raises(ConfigError, match="unknown IBD selection parameter"):
        dataset.ibd(dr_maximum="1 m")


def test_generic_coincidence_and_vetoes(dataset: jaas.Dataset) -> None:
    res = dataset.coincidence(
        prompt="0.7 MeV < E < 12 MeV",
        delayed="1.9 MeV < E < 2.5 MeV",
        dt="1 ms",
        dr="1.5 m",
        mode="all",
        vetoes=[veto("detector", "muon", "1.5 ms")],
    )
    assert res.n_pairs == len(GOOD) + 2
    no_veto = dataset.coincidence(
        prompt="0.7 MeV < E < 12 MeV", delayed="1.9 MeV < E < 2.5 MeV", dt="1 ms", mode="all"
    )
    assert no_veto.n_pairs > res.n_pairs  # the vetoed pair is back


def test_provenance_and_outputs(dataset: jaas.Dataset, tmp_path: Path) -> None:
    res = dataset.ibd()
    prov = res.provenance
    assert prov["software"] == f"jaas {jaas.__version__}"
    assert "1.9 MeV < E < 2.5 MeV" in prov["selection"]["delayed"]
    files = res.save(tmp_path / "out")
    table = pq.read_table(files["pairs"])
    assert table.num_rows == len(GOOD)
    meta = json.loads(table.schema.metadata[b"jaas.provenance"])
    assert meta["selection"]["dr"] == "dR < 1.5 m"
    assert files["plot"].stat().st_size > 10_000  # a real PNG
    assert "pairs" in files["summary"].read_text()


def test_quantities_and_hostile_text() -> None:
    assert quantity("1.5 ms", "time") == 1_500_000
    assert quantity("170 cm", "length") == pytest.approx(1.7)
    with pytest.raises(SelectionError, match="expected a time"):
        quantity("3 m", "time")
    with pytest.raises(SelectionError):
        quantity("__import__('os')", "time")


def test_bad_selection_names_position_and_suggestion(dataset: jaas.Dataset) -> None:
    with pytest.raises(SelectionError, match="did you mean 'E'") as info:
        dataset.coincidence(prompt="Energy > 1 MeV", delayed="E > 1 MeV", dt="1 ms")
    assert info.value.position == 0
    with pytest.raises(SelectionError):
        dataset.select("E.__class__")


def test_select_and_second_query_does_no_io(dataset: jaas.Dataset) -> None:
    sel = dataset.select("E > 1.5 MeV and not muon")
    assert sel.n == sum(1 for p in GOOD for e in p if e["E"] > 1.5) + sum(
        1 for e in TRAPS if e["E"] > 1.5 and not e["muon"]
    )
    dataset.ibd(dr_max="1 m", offtime=None)  # cold: reads the columns
    warm = dataset.cache.stats()
    assert warm.bytes_read > 0
    dataset.ibd(dr_max="3 m", offtime=None)
    after = dataset.cache.stats()
    assert after.bytes_read == warm.bytes_read  # warm: no I/O
    assert after.hits > warm.hits


def test_ibd_selection_defaults_match_physics_reference() -> None:
    sel = IBDSelection()
    assert sel.fiducial == "r < 17.2 m"
    assert quantity(sel.dt_max, "time") == 1_000_000
    assert quantity(sel.dr_max, "length") == 1.5  # type: ignore[arg-type]
    assert sel.mode == "exactly_one"


def test_result_label_is_never_a_path(dataset: jaas.Dataset, tmp_path: Path) -> None:
    res = dataset.coincidence(prompt="E > 1 MeV", delayed="E > 1 MeV", dt="1 ms", label="../x")
    with pytest.raises(ConfigError, match="not a plain name"):
        res.save(tmp_path / "out")
    assert not (tmp_path / "out").exists() and not (tmp_path / "x_pairs.parquet").exists()
