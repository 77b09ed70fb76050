"""A schema mapping carries extra columns of any name into the index, usable in selections."""

from __future__ import annotations

import numpy as np
import pytest

import jaas
from jaas.errors import ConfigError
from jaas.formats.index import index_column_names, read_index
from jaas.store import Catalog
from jaas.store.foreign import ingest_foreign
from jaas.store.mapping import parse_mapping
from tests.store.test_add_checks import MAPPING, _tree

EXTRA = MAPPING + "extra:\n  evt: {branch: evtID}\n  Eraw_x2: {branch: Erec, scale: 2}\n"


def test_extra_columns_reach_the_index_exactly(tmp_path):
    src = tmp_path / "foreign.root"
    _tree(src, 200)
    (tmp_path / "m.yaml").write_text(EXTRA)
    with Catalog(tmp_path / "c.db") as cat:
        res = ingest_foreign(cat, src, tmp_path / "m.yaml", out_dir=tmp_path / "idx")
    names = index_column_names(res.index.path)
    assert names[-2:] == ["evt", "Eraw_x2"]
    table = read_index(res.index.path, ["entry", "evt", "E", "Eraw_x2"])
    entry = table.column("entry").to_numpy()
    assert table.column("evt").type == "int64"
    assert np.array_equal(table.column("evt").to_numpy(), entry)  # evtID == entry in _tree
    assert np.allclose(table.column("Eraw_x2").to_numpy(), 2 * table.column("E").to_numpy())
    ds = jaas.open(tmp_path / "idx")  # the dataset offers them like any index column
    assert {"evt", "Eraw_x2"} <= set(ds.columns)
    loaded = ds.load(["evt"])
    assert sorted(loaded["evt"].tolist()) == list(range(200))
    sel = ds.select("evt < 50 and Eraw_x2 > 0")  # usable in selections like index columns
    assert int(sel.mask.sum()) == int(((entry < 50) & (table.column("E").to_numpy() > 0)).sum())


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("  1bad: {branch: evtID}\n", "usable in selections"),
        ("  E: {branch: Erec}\n", "is an index column"),
        ("  evt: {branch: evtID, unit: mm}\n", "no 'expr' or 'unit'"),
        ("  evt: {brnch: evtID}\n", "did you mean 'branch'"),
    ],
)
def test_bad_extra_columns_are_refused_with_their_line(extra, message):
    with pytest.raises(ConfigError, match=message) as err:
        parse_mapping(MAPPING + "extra:\n" + extra, source="m.yaml")
    assert "m.yaml line 11" in str(err.value)
