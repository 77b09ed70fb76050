"""Redirect through the catalog on SQLite and PostgreSQL: verified replicas stand in for a
missing primary copy; index-only datasets and missing RTRAW parents get clear messages."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from jaas.errors import NotInCatalogError
from jaas.store import Catalog
from jaas.store.redirect import fetch_events
from tests.store.test_redirect import N, files  # noqa: F401  (fixture)


def _register(cat: Catalog, paths: dict[int, tuple[str, str | None]]) -> dict[int, int]:
    ids = {}
    for fid, (esd_path, rtraw_path) in paths.items():
        rt = cat.add_file(rtraw_path, kind="rtraw", run=1)  # type: ignore[arg-type]
        ids[fid] = cat.add_file(esd_path, kind="esd", run=1, parents=[rt.id]).id
    return ids


def test_missing_primary_is_read_from_a_verified_replica(
    catalog: Catalog,
    files: dict[str, Any],  # noqa: F811
    tmp_path: Path,
) -> None:
    ids = _register(catalog, files["paths"])
    esd_path, rtraw_path = files["paths"][11]
    copies = tmp_path / "eos"
    copies.mkdir()
    esd_copy = shutil.copy(esd_path, copies / Path(esd_path).name)
    rt_copy = shutil.copy(rtraw_path, copies / Path(rtraw_path).name)
    Path(esd_path).unlink()
    Path(rtraw_path).unlink()
    esd_rep = catalog.add_replica(ids[11], f"file://{esd_copy}", endpoint="eos")
    rt_id = catalog.parents(ids[11])[0].id
    rt_rep = catalog.add_replica(rt_id, str(rt_copy), endpoint="eos")
    with pytest.raises(NotInCatalogError, match=r"missing.*1 replica\(s\) are not verified"):
        fetch_events([(ids[11], 3)], catalog=catalog)
    catalog.mark_replica_verified(esd_rep.id)
    catalog.mark_replica_verified(rt_rep.id)
    got = fetch_events([(ids[11], 3), (ids[10], 2)], catalog=catalog)
    assert got.esd["t"].tolist() == [files["esd"][11]["t"][3], files["esd"][10]["t"][2]]
    assert got.hits is not None and got.hits.event_id.tolist() == [N + 3, 2]
    Path(esd_copy).unlink()
    with pytest.raises(NotInCatalogError, match="no verified replica can be read"):
        fetch_events([(ids[11], 3)], catalog=catalog, with_hits=False)


def test_index_only_and_hitless_datasets_say_what_is_available(
    catalog: Catalog,
    files: dict[str, Any],  # noqa: F811
    tmp_path: Path,
) -> None:
    index = tmp_path / "run1.index.parquet"
    index.write_bytes(b"index-only")
    idx = catalog.add_file(index, kind="index", run=1)
    with pytest.raises(NotInCatalogError, match=r"index-only.*not available"):
        fetch_events([(idx.id, 0)], catalog=catalog)
    esd_path, _ = files["paths"][12]
    esd = catalog.add_file(esd_path, kind="esd", run=1)
    with pytest.raises(NotInCatalogError, match="with_hits=False"):
        fetch_events([(esd.id, 0)], catalog=catalog)
    got = fetch_events([(esd.id, 1)], catalog=catalog, with_hits=False)
    assert got.esd["t"].tolist() == [files["esd"][12]["t"][1]] and got.hits is None
