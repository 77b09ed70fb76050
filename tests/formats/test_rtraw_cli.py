"""``jaas convert`` and ``jaas index``: outputs, catalog registration with parents, errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from jaas.cli.main import cli, main
from jaas.formats.esd import write_esd
from jaas.formats.index import read_index
from jaas.formats.rtraw import read_meta, read_rtraw
from tests.formats.test_esd import make_esd, meta
from tests.formats.test_rtraw import make_hits, write_raw


def test_convert_then_index_with_catalog(tmp_path: Path) -> None:
    store = pytest.importorskip("jaas.store")
    raws = [
        write_raw(
            tmp_path / f"run000002_{k:04d}.raw",
            make_hits(100, seed=k, first_id=100 * k),
            run=2,
            file_seq=k,
        )
        for k in range(2)
    ]
    db = tmp_path / "cat.db"
    out = tmp_path / "rtraw"
    args = ["convert", *map(str, raws), "-o", str(out), "--compression", "lz4:2"]
    res = CliRunner().invoke(cli, [*args, "--catalog", str(db)])
    assert res.exit_code == 0, res.output
    assert "run000002_0001.raw ->" in res.output and "100 events" in res.output
    rt = out / "run000002_0001.rtraw.root"
    assert len(read_rtraw(rt)) == 100 and read_meta(rt)["compression"] == "lz4:2"

    again = CliRunner().invoke(cli, [*args, "--catalog", str(db)])
    assert again.exit_code == 0 and again.output.count("up to date") == 2

    cat = store.Catalog(db)
    rec = cat.get_file(str(rt))
    assert (rec.kind, rec.run, rec.seq, rec.n_events) == ("rtraw", 2, 1, 100)
    assert [p.kind for p in cat.parents(rec.id)] == ["raw"]
    assert len(cat.files()) == 4  # no duplicates after the re-run

    esd = tmp_path / "run000002_0001.esd.root"
    write_esd(make_esd(100, seed=3), esd, meta=meta(run=2, file_seq=1, parent=rt.name))
    res = CliRunner().invoke(cli, ["index", str(esd), "--format", "hdf5", "--catalog", str(db)])
    assert res.exit_code == 0, res.output
    esd_rec = cat.get_file(str(esd))
    idx = tmp_path / "run000002_0001.index.h5"
    assert set(read_index(idx).column("file_id").to_pylist()) == {esd_rec.id}
    idx_rec = cat.get_file(str(idx))
    assert idx_rec.kind == "index" and idx_rec.parent_ids == (esd_rec.id,)
    cat.close()


def test_index_without_catalog_uses_file_seq_or_file_id(tmp_path: Path) -> None:
    esd = tmp_path / "run000002_0005.esd.root"
    write_esd(make_esd(30, seed=4), esd, meta=meta(run=2, file_seq=5))
    res = CliRunner().invoke(cli, ["index", str(esd), "-o", str(tmp_path / "idx")])
    assert res.exit_code == 0, res.output
    table = read_index(tmp_path / "idx" / "run000002_0005.index.parquet")
    assert set(table.column("file_id").to_pylist()) == {5}
    res = CliRunner().invoke(cli, ["index", str(esd), "--file-id", "77", "--force"])
    assert res.exit_code == 0, res.output
    table = read_index(tmp_path / "run000002_0005.index.parquet")
    assert set(table.column("file_id").to_pylist()) == {77}


def test_bad_compression_is_one_clear_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    raw = write_raw(tmp_path / "run000001_0000.raw", make_hits(5))
    with pytest.raises(SystemExit) as info:
        main(["convert", str(raw), "--compression", "gzip"])
    assert info.value.code == 1
    assert "unknown compression 'gzip'" in capsys.readouterr().err
    assert not (tmp_path / "run000001_0000.rtraw.root").exists()
