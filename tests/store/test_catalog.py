"""Catalog API on SQLite and PostgreSQL: idempotency, races, checksums, lineage, datasets."""

from __future__ import annotations

import threading
import zlib
from pathlib import Path

import pytest

from jaas.errors import CatalogError, ConfigError, NotInCatalogError
from jaas.store import Catalog


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_add_file_computes_size_and_adler32(catalog: Catalog, tmp_path: Path) -> None:
    data = b"RAW\x00" * 1000
    path = _write(tmp_path / "run1.000.raw", data)
    rec = catalog.add_file(path, kind="raw", run=1, seq=0, n_events=10, t_min=5, t_max=9)
    assert rec.size == len(data)
    assert rec.adler32 == f"{zlib.adler32(data) & 0xFFFFFFFF:08x}"
    assert rec.path == str(path.resolve())
    assert [r.run for r in catalog.runs()] == [1]  # the run was created
    again = catalog.get_file(rec.id)
    assert again == rec
    assert catalog.get_file(path) == rec


def test_add_same_file_twice_is_idempotent(catalog: Catalog, tmp_path: Path) -> None:
    path = _write(tmp_path / "a.raw", b"abc")
    first = catalog.add_file(path, kind="raw", run=3)
    second = catalog.add_file(path, kind="raw", run=3)
    assert second.id == first.id
    assert len(catalog.files()) == 1


def test_changed_checksum_refused_naming_both(catalog: Catalog, tmp_path: Path) -> None:
    path = _write(tmp_path / "a.raw", b"abc")
    old = catalog.add_file(path, kind="raw")
    _write(path, b"abd")
    new = f"{zlib.adler32(b'abd') & 0xFFFFFFFF:08x}"
    with pytest.raises(CatalogError, match=rf"{old.adler32}.*{new}"):
        catalog.add_file(path, kind="raw")
    assert len(catalog.files()) == 1


def test_concurrent_add_from_threads_gives_one_row(catalog_url: str, tmp_path: Path) -> None:
    path = _write(tmp_path / "race.raw", b"x" * 4096)
    ids: list[int] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def register() -> None:
        try:  # a separate engine per thread, like separate processes, on a new database
            with Catalog(catalog_url) as cat:
                barrier.wait(timeout=60)
                ids.append(cat.add_file(path, kind="raw", run=42, seq=0).id)
        except BaseException as exc:  # reported below
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=register) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    assert len(set(ids)) == 1
    with Catalog(catalog_url) as cat:
        assert len(cat.files()) == 1
        assert [r.run for r in cat.runs()] == [42]


def test_lineage_parents_children(catalog: Catalog, tmp_path: Path) -> None:
    raw = catalog.add_file(_write(tmp_path / "r.raw", b"1"), kind="raw", run=1, seq=0)
    rtraw = catalog.add_file(_write(tmp_path / "r.root", b"2"), kind="rtraw", parents=[raw.id])
    esd = catalog.add_file(_write(tmp_path / "e.root", b"3"), kind="esd", parents=[rtraw.id])
    idx = catalog.add_file(_write(tmp_path / "i.parquet", b"4"), kind="index", parents=[esd.id])
    assert [f.id for f in catalog.lineage(idx.id)] == [esd.id, rtraw.id, raw.id]
    assert [f.id for f in catalog.parents(esd.id)] == [rtraw.id]
    assert [f.id for f in catalog.children(raw.id)] == [rtraw.id]
    assert catalog.get_file(idx.id).parent_ids == (esd.id,)
    assert catalog.lineage(raw.id) == []


def test_unknown_parent_refused(catalog: Catalog, tmp_path: Path) -> None:
    with pytest.raises(NotInCatalogError, match=r"\[99\]"):
        catalog.add_file(_write(tmp_path / "e.root", b"3"), kind="esd", parents=[99])
    assert catalog.files() == []


def test_files_filters_and_order(catalog: Catalog, tmp_path: Path) -> None:
    for run, seq in [(2, 1), (1, 1), (2, 0), (1, 0)]:
        catalog.add_file(
            _write(tmp_path / f"{run}.{seq}.raw", b"%d%d" % (run, seq)),
            kind="raw",
            run=run,
            seq=seq,
        )
    catalog.add_file(_write(tmp_path / "x.parquet", b"i"), kind="index", run=1, seq=0)
    assert [(f.run, f.seq) for f in catalog.files(kind="raw")] == [(1, 0), (1, 1), (2, 0), (2, 1)]
    assert [f.kind for f in catalog.files(run=1)] == ["raw", "index", "raw"]


def test_get_file_unknown_path_suggests(catalog: Catalog, tmp_path: Path) -> None:
    catalog.add_file(_write(tmp_path / "run0042.003.raw", b"z"), kind="raw")
    with pytest.raises(NotInCatalogError, match=r"did you mean .*run0042\.003\.raw"):
        catalog.get_file(tmp_path / "run0042.004.raw")
    with pytest.raises(NotInCatalogError, match="file id 7"):
        catalog.get_file(7)


def test_verify_detects_modified_and_missing(catalog: Catalog, tmp_path: Path) -> None:
    good = catalog.add_file(_write(tmp_path / "good", b"good"), kind="meta")
    mod = catalog.add_file(_write(tmp_path / "mod", b"abcd"), kind="meta")
    gone = catalog.add_file(_write(tmp_path / "gone", b"gone"), kind="meta")
    assert catalog.verify() == []
    _write(tmp_path / "mod", b"abce")  # same size, other bytes
    (tmp_path / "gone").unlink()
    problems = catalog.verify()
    assert {(p.file_id, p.problem) for p in problems} == {
        (mod.id, "checksum"),
        (gone.id, "missing"),
    }
    bad = next(p for p in problems if p.problem == "checksum")
    assert bad.expected == mod.adler32
    assert bad.actual == f"{zlib.adler32(b'abce') & 0xFFFFFFFF:08x}"
    _write(tmp_path / "good", b"longer")
    sizes = [p for p in catalog.verify([good.id]) if p.problem == "size"]
    assert sizes[0].expected == "4 bytes"
    assert sizes[0].actual == "6 bytes"


def test_status(catalog: Catalog, tmp_path: Path) -> None:
    rec = catalog.add_file(_write(tmp_path / "f", b"f"), kind="esd")
    catalog.set_status(rec.id, "quarantined", "checksum mismatch after transfer")
    got = catalog.get_file(rec.id)
    assert (got.status, got.status_reason) == ("quarantined", "checksum mismatch after transfer")
    assert catalog.files(status="good") == []
    with pytest.raises(ConfigError, match="unknown status 'broken'"):
        catalog.set_status(rec.id, "broken", "")


def test_datasets(catalog: Catalog, tmp_path: Path) -> None:
    a = catalog.add_file(_write(tmp_path / "a", b"a"), kind="index", run=1, seq=1)
    b = catalog.add_file(_write(tmp_path / "b", b"b"), kind="index", run=1, seq=0)
    v1 = catalog.create_dataset("ibd-2025", file_ids=[a.id], description="first")
    assert catalog.create_dataset("ibd-2025", file_ids=[a.id]) == v1  # identical: idempotent
    with pytest.raises(CatalogError, match="version 2"):
        catalog.create_dataset("ibd-2025", file_ids=[a.id, b.id])
    catalog.create_dataset("ibd-2025", version=2, file_ids=[a.id, b.id])
    assert [f.id for f in catalog.dataset_files("ibd-2025")] == [b.id, a.id]  # latest, by seq
    assert [f.id for f in catalog.dataset_files("ibd-2025", 1)] == [a.id]
    assert [f.id for f in catalog.files(dataset="ibd-2025")] == [b.id, a.id]
    with pytest.raises(NotInCatalogError, match="did you mean 'ibd-2025'"):
        catalog.dataset_files("ibd-2024")
    assert [(d.name, d.version) for d in catalog.datasets()] == [("ibd-2025", 1), ("ibd-2025", 2)]


def test_add_run_upsert(catalog: Catalog) -> None:
    catalog.add_run(7, start=100, meta={"shift": "A"})
    rec = catalog.add_run(7, end=200, meta={"trigger": "cd"})
    assert (rec.start, rec.end) == (100, 200)
    assert rec.meta == {"shift": "A", "trigger": "cd"}
    assert len(catalog.runs()) == 1


def test_replicas(catalog: Catalog, tmp_path: Path) -> None:
    rec = catalog.add_file(_write(tmp_path / "f", b"f"), kind="raw")
    rep = catalog.add_replica(rec.id, "root://eos.example//f", endpoint="EOS")
    assert catalog.add_replica(rec.id, "root://eos.example//f", endpoint="EOS") == rep
    catalog.mark_replica_verified(rep.id)
    assert catalog.replicas(rec.id)[0].verified is not None


def test_remote_file_needs_checksum(catalog: Catalog) -> None:
    with pytest.raises(CatalogError, match="adler32"):
        catalog.add_file("root://eos.example//x.root", kind="esd")
    rec = catalog.add_file("root://eos.example//x.root", kind="esd", checksum="0A0B0C0D", size=9)
    assert rec.adler32 == "0a0b0c0d"


def test_plain_path_means_sqlite_and_persists(tmp_path: Path) -> None:
    db = tmp_path / "sub" / "cat.db"
    with Catalog(db) as cat:
        cat.add_run(1)
    with Catalog(db) as cat:
        assert [r.run for r in cat.runs()] == [1]
        assert cat.data_dir == tmp_path / "sub" / "data"


def test_default_uses_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JAAS_CATALOG", str(tmp_path / "env.db"))
    with Catalog.default() as cat:
        cat.add_run(3)
    assert (tmp_path / "env.db").exists()
