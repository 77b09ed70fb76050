"""``jaas store`` through click's CliRunner with a temporary SQLite catalog."""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from jaas.cli.main import cli
from jaas.formats.index import write_index
from jaas.formats.schema import INDEX_SCHEMA
from jaas.store import Catalog


@pytest.fixture
def run(catalog_url: str):  # type: ignore[no-untyped-def]
    db = catalog_url  # every store CLI test runs on SQLite and on PostgreSQL

    def invoke(*args: str, code: int = 0) -> str:
        result = CliRunner().invoke(cli, ["store", "--catalog", db, *args])
        assert result.exit_code == code, result.output + repr(result.exception)
        return result.output

    invoke.db = db  # type: ignore[attr-defined]
    return invoke


def _index(path: Path, n: int, run: int = 77) -> np.ndarray:
    rng = np.random.default_rng(5)
    cols = {f.name: np.zeros(n, dtype=f.type.to_pandas_dtype()) for f in INDEX_SCHEMA}
    cols["run"][:] = run
    cols["t"] = 10**18 + rng.integers(0, 10**12, n)
    cols["entry"] = np.arange(n)
    write_index(cols, path)
    return cols["t"]


def test_add_infers_index_fields_and_ls_shows_them(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    t = _index(tmp_path / "a.parquet", 40)
    out = run("add", str(tmp_path / "a.parquet"))
    assert out.split("\t")[:2] == ["1", "index"]
    with Catalog(run.db) as cat:
        rec = cat.get_file(1)
    assert (rec.kind, rec.run, rec.n_events) == ("index", 77, 40)
    assert (rec.t_min, rec.t_max) == (int(t.min()), int(t.max()))
    table = run("ls")
    header, row = table.splitlines()
    assert header.split() == [
        "id",
        "kind",
        "run",
        "seq",
        "events",
        "size",
        "adler32",
        "status",
        "path",
    ]
    assert row.split()[:5] == ["1", "index", "77", "-", "40"]
    assert rec.adler32 in row
    assert run("ls", "--kind", "raw").strip() == "no files"


def test_add_with_parent_show_lists_relations(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "x.esd").write_bytes(b"esd")
    run("add", str(tmp_path / "x.esd"), "--kind", "esd", "--run", "3")
    _index(tmp_path / "i.parquet", 5)
    run("add", str(tmp_path / "i.parquet"), "--parent", "1")
    shown = run("show", "2")
    assert "parents:\n  1\tesd\t" in shown
    assert "kind:      index" in shown
    by_path = run("show", str(tmp_path / "x.esd"))
    assert "children:\n  2\tindex\t" in by_path
    assert "run:       3" in by_path


def test_add_without_inferable_kind_fails_with_hint(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "blob.bin").write_bytes(b"?")
    result = CliRunner().invoke(
        cli, ["store", "--catalog", run.db, "add", str(tmp_path / "blob.bin")]
    )
    assert result.exit_code == 1
    assert "not registered" in result.output and "pass --kind" in result.output


def test_verify_exit_code_and_lines(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    f = tmp_path / "m.json"
    f.write_bytes(b"{}")
    run("add", str(f), "--kind", "meta")
    run("verify")
    f.write_bytes(b"[]")
    out = run("verify", "1", code=1)
    expected = f"{zlib.adler32(b'{}') & 0xFFFFFFFF:08x}"
    actual = f"{zlib.adler32(b'[]') & 0xFFFFFFFF:08x}"
    assert out.strip() == f"file 1 {f}: checksum (expected {expected}, actual {actual})"


def test_dataset_create_and_ls(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    for name in ("a", "b"):
        _index(tmp_path / f"{name}.parquet", 3)
        run("add", str(tmp_path / f"{name}.parquet"))
    assert "ibd v1: 2 files" in run("dataset", "create", "ibd", "--file", "1", "--file", "2")
    listing = run("dataset", "ls")
    assert listing.splitlines()[1].split()[:3] == ["ibd", "1", "2"]
    assert [r.split()[0] for r in run("ls", "--dataset", "ibd").splitlines()[1:]] == ["1", "2"]


def test_status_command(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "e").write_bytes(b"e")
    run("add", str(tmp_path / "e"), "--kind", "esd")
    run("status", "1", "bad", "--reason", "reco crashed")
    assert "status:    bad (reco crashed)" in run("show", "1")


def test_add_with_schema(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    skhep_testdata = pytest.importorskip("skhep_testdata")
    try:
        src = skhep_testdata.data_path("uproot-Zmumu.root")
    except Exception as exc:
        pytest.skip(f"uproot-Zmumu.root not available: {exc}")
    mapping = tmp_path / "z.yaml"
    mapping.write_text(
        "tree: events\nrun: 5\ntime: {branch: Event, unit: s}\n"
        "columns:\n  E: {branch: E1, unit: GeV}\n  x: {branch: px1, unit: m}\n"
        "  y: {branch: py1, unit: m}\n  z: {branch: pz1, unit: m}\n"
    )
    out = run("add", src, "--schema", str(mapping), "--out", str(tmp_path / "idx"))
    lines = out.splitlines()
    assert lines[0].startswith("1\tesd\t")
    assert lines[1].startswith("2\tindex\t" + str(tmp_path / "idx"))
    assert "parents:\n  1\tesd" in run("show", "2")
