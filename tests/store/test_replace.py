"""A product rebuilt at the same path (new calibration) replaces its row: lineage kept, audited."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from jaas._io import adler32_file
from jaas.errors import CatalogError, NotInCatalogError
from jaas.store.register import register_step


@dataclass
class _Step:
    input: Path
    output: Path
    n_events: int = 5
    t_min: int | None = 10
    t_max: int | None = 20
    meta: dict[str, Any] = field(default_factory=lambda: {"run": 3, "file_seq": 0})


def test_rebuilt_product_replaces_its_row_with_lineage_kept(catalog, tmp_path):
    raw = tmp_path / "run3.000.raw"
    raw.write_bytes(b"raw bytes")
    esd = tmp_path / "run3.000.esd.root"
    esd.write_bytes(b"esd calib v1")
    idx = tmp_path / "run3.000.index.parquet"
    idx.write_bytes(b"index")
    r = catalog.add_file(raw, kind="raw", run=3, seq=0)
    e = catalog.add_file(esd, kind="esd", run=3, seq=0, parents=[r.id], meta={"calib": "v1"})
    i = catalog.add_file(idx, kind="index", run=3, seq=0, parents=[e.id])
    catalog.create_dataset("physics", file_ids=[r.id, e.id])
    rep = catalog.add_replica(e.id, "root://eos//run3.000.esd.root", endpoint="eos")
    catalog.mark_replica_verified(rep.id)

    esd.write_bytes(b"esd calib v2, longer")
    with pytest.raises(CatalogError, match="replace_file"):
        catalog.add_file(esd, kind="esd", run=3, seq=0, parents=[r.id])
    new = catalog.replace_file(
        esd, who="op", reason="new calibration v2", n_events=9, meta={"calib": "v2"}
    )
    assert new.id == e.id and new.adler32 == adler32_file(esd) != e.adler32
    assert (new.size, new.n_events, new.meta) == (esd.stat().st_size, 9, {"calib": "v2"})
    assert [f.id for f in catalog.lineage(e.id)] == [r.id]
    assert [f.id for f in catalog.children(e.id)] == [i.id]
    assert [f.id for f in catalog.dataset_files("physics")] == [r.id, e.id]
    assert [x.verified for x in catalog.replicas(e.id)] == [None]  # old bytes over there
    assert catalog.verify([e.id]) == []
    (entry,) = catalog.audit_log(esd)
    assert (entry["who"], entry["action"], entry["note"]) == ("op", "replace", "new calibration v2")
    assert (entry["old_adler32"], entry["new_adler32"]) == (e.adler32, new.adler32)
    assert (entry["old_size"], entry["new_size"]) == (e.size, new.size)

    again = catalog.replace_file(esd, who="op", reason="same bytes")
    assert again.adler32 == new.adler32 and len(catalog.audit_log()) == 1
    (tmp_path / "other.root").write_bytes(b"x")
    with pytest.raises(NotInCatalogError):
        catalog.replace_file(tmp_path / "other.root", who="op", reason="x")


def test_register_step_replaces_a_rebuilt_output_when_told(catalog, tmp_path):
    raw = tmp_path / "run3.000.raw"
    raw.write_bytes(b"raw")
    out = tmp_path / "run3.000.rtraw.root"
    out.write_bytes(b"first build")
    parent, child = register_step(catalog, _Step(raw, out), kind="rtraw", input_kind="raw")
    out.write_bytes(b"second build")
    with pytest.raises(CatalogError, match="must not change"):
        register_step(catalog, _Step(raw, out), kind="rtraw", input_kind="raw")
    p2, c2 = register_step(
        catalog, _Step(raw, out), kind="rtraw", input_kind="raw", rebuilt="kup reset", who="kup"
    )
    assert (p2.id, c2.id) == (parent.id, child.id) and c2.parent_ids == (parent.id,)
    assert c2.adler32 == adler32_file(out)
    assert [(a["who"], a["note"]) for a in catalog.audit_log(child.id)] == [("kup", "kup reset")]
