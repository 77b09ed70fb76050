"""``jaas convert`` and ``jaas index``: outputs, catalog registration with parents, errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

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


def _out(res: Any) -> str:
    """What a CliRunner call printed, and the error the ``jaas`` entry point would print."""
    return str(res.output) + ("" if res.exception is None else str(res.exception))


@pytest.fixture
def same_named(tmp_path: Path) -> tuple[Path, Path]:
    """Two different RAW files with the same base name, in two directories."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = write_raw(tmp_path / "a" / "run000001_0000.raw", make_hits(20, seed=1), run=1)
    b = write_raw(tmp_path / "b" / "run000001_0000.raw", make_hits(30, seed=2), run=1)
    return a, b


def test_convert_refuses_two_inputs_with_one_output_before_writing(
    tmp_path: Path, same_named: tuple[Path, Path]
) -> None:
    a, b = same_named
    out = tmp_path / "out"
    res = CliRunner().invoke(cli, ["convert", str(a), str(b), "-o", str(out)])
    assert res.exit_code == 1
    assert str(a) in _out(res) and str(b) in _out(res) and "same base name" in _out(res)
    assert not out.exists() or not any(out.iterdir())  # nothing written, nothing replaced
    # beside their inputs the two do not collide, and the same file twice is done once
    res = CliRunner().invoke(cli, ["convert", str(a), str(b), str(a)])
    assert res.exit_code == 0, res.output
    assert len(read_rtraw(a.with_name("run000001_0000.rtraw.root"))) == 20
    assert len(read_rtraw(b.with_name("run000001_0000.rtraw.root"))) == 30
    assert res.output.count(" -> ") == 2


def test_index_refuses_two_inputs_with_one_output(tmp_path: Path) -> None:
    esds = []
    for d in ("a", "b"):
        (tmp_path / d).mkdir()
        esd = tmp_path / d / "run000002_0001.esd.root"
        write_esd(make_esd(10, seed=1), esd, meta=meta(run=2, file_seq=1))
        esds.append(str(esd))
    res = CliRunner().invoke(cli, ["index", *esds, "-o", str(tmp_path / "idx")])
    assert res.exit_code == 1 and "same base name" in _out(res)
    assert esds[0] in _out(res) and esds[1] in _out(res)
    assert not (tmp_path / "idx").exists() or not any((tmp_path / "idx").iterdir())


def test_convert_reports_every_bad_file_and_converts_the_good_ones(tmp_path: Path) -> None:
    good = [
        write_raw(tmp_path / f"run000003_{k:04d}.raw", make_hits(15, seed=k), run=3, file_seq=k)
        for k in range(3)
    ]
    bad1 = tmp_path / "run000003_0007.raw"
    bad1.write_bytes(b"not a raw file at all" * 10)
    bad2 = tmp_path / "run000003_0008.raw"
    bad2.write_bytes(good[0].read_bytes()[:200])  # truncated
    files = [str(good[0]), str(bad1), str(good[1]), str(bad2), str(good[2])]
    out = tmp_path / "out"
    res = CliRunner().invoke(cli, ["convert", *files, "-o", str(out)])
    assert res.exit_code == 1
    assert f"{bad1}: error:" in _out(res) and f"{bad2}: error:" in _out(res)
    assert "2 of 5 files failed" in _out(res)
    assert "Traceback" not in _out(res)
    for k, raw in enumerate(good):
        assert len(read_rtraw(out / raw.name.replace(".raw", ".rtraw.root"))) == 15, k
    assert sorted(p.name for p in out.iterdir()) == [
        f"run000003_{k:04d}.rtraw.root" for k in range(3)
    ]


def test_file_names_with_newlines_stay_on_one_row(tmp_path: Path) -> None:
    raw = write_raw(tmp_path / "evil\nname.raw", make_hits(5), run=1)
    res = CliRunner().invoke(cli, ["convert", str(raw), "-o", str(tmp_path / "o")])
    assert res.exit_code == 0, res.output
    rows = [line for line in _out(res).splitlines() if "->" in line]
    assert len(rows) == 1 and "evil\\nname" in rows[0]


def test_catalog_on_the_group_or_the_subcommand(tmp_path: Path) -> None:
    store = pytest.importorskip("jaas.store")
    raw = write_raw(tmp_path / "run000004_0000.raw", make_hits(8), run=4)
    db1, db2 = tmp_path / "group.db", tmp_path / "sub.db"
    res = CliRunner().invoke(cli, ["--catalog", str(db1), "convert", str(raw)])
    assert res.exit_code == 0, res.output
    res = CliRunner().invoke(cli, ["convert", str(raw), "--catalog", str(db2)])
    assert res.exit_code == 0, res.output
    for db in (db1, db2):
        cat = store.Catalog(db)
        assert sorted(f.kind for f in cat.files()) == ["raw", "rtraw"]
        cat.close()


def test_catalog_that_is_a_directory_is_refused_clearly(tmp_path: Path) -> None:
    raw = write_raw(tmp_path / "run000004_0000.raw", make_hits(8), run=4)
    res = CliRunner().invoke(cli, ["convert", str(raw), "--catalog", str(tmp_path)])
    assert res.exit_code == 1 and "is a directory" in _out(res)
    assert not (tmp_path / "run000004_0000.rtraw.root").exists()
