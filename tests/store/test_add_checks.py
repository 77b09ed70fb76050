"""``jaas store add``: damaged files are not registered, bad files do not stop the batch,
``--schema`` refuses options it cannot honour, several foreign files stay contiguous."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import uproot
from click.testing import CliRunner

from jaas.cli.main import cli
from jaas.errors import ConfigError
from jaas.formats.raw import RawWriter
from jaas.store import Catalog
from tests.formats._rawdata import make_events

SEC0 = 1_735_689_600


def _store(db: str, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["store", "--catalog", db, *args])
    shown = "" if result.exception is None else f"\nerror: {result.exception}"  # as main() prints
    return result.exit_code, result.output + shown


def _raw(path: Path, seq: int) -> Path:
    ev = make_events(50, seed=seq)
    with RawWriter(path, run=7, file_seq=seq, start_time=int(ev.t[0])) as w:
        w.write_batch(ev)
    return path


def test_raw_with_a_crc_error_is_not_registered_and_the_good_ones_are(tmp_path, catalog_url):
    good0, bad, good2 = (_raw(tmp_path / f"run7.{i:03d}.raw", i) for i in range(3))
    data = bytearray(bad.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte inside an event record
    bad.write_bytes(bytes(data))
    db = catalog_url  # SQLite and PostgreSQL
    code, out = _store(db, "add", str(good0), str(bad), str(good2))
    assert code == 1
    assert f"error: {bad}: not registered:" in out and "CRC" in out.upper()
    assert "1 of 3 files not registered" in out
    with Catalog(db) as cat:
        assert [f.path for f in cat.files()] == [str(good0), str(good2)]


def _tree(path: Path, n: int, t0: int = SEC0, seed: int = 1) -> None:
    rng = np.random.default_rng(seed)
    with uproot.recreate(path) as f:
        f.mktree("TEvent", {
            "sec": np.uint32, "nanosec": np.uint32, "Erec": np.float32,
            "recx": np.float64, "recy": np.float64, "recz": np.float64, "evtID": np.int64,
        })  # fmt: skip
        f["TEvent"].extend(
            {
                "sec": (t0 + np.sort(rng.integers(0, 3600, n))).astype(np.uint32),
                "nanosec": rng.integers(0, 1_000_000_000, n).astype(np.uint32),
                "Erec": rng.uniform(0.5, 12.0, n).astype(np.float32),
                "recx": rng.uniform(-17000, 17000, n),
                "recy": rng.uniform(-17000, 17000, n),
                "recz": rng.uniform(-17000, 17000, n),
                "evtID": np.arange(n, dtype=np.int64),
            }
        )


def test_truncated_esd_given_as_kind_esd_is_not_registered(tmp_path, catalog_url):
    whole = tmp_path / "whole.esd.root"
    _tree(whole, 20_000)
    cut = tmp_path / "cut.esd.root"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    db = catalog_url  # SQLite and PostgreSQL
    code, out = _store(db, "add", "--kind", "esd", str(cut), str(whole))
    assert code == 1, out
    assert f"error: {cut}: not registered:" in out
    with Catalog(db) as cat:
        assert [f.path for f in cat.files()] == [str(whole)]


def test_file_names_with_newlines_stay_on_one_line(tmp_path):
    odd = tmp_path / "a\nb.raw"
    odd.write_bytes(b"not raw")
    code, out = _store(str(tmp_path / "c.db"), "add", str(odd))
    assert code == 1
    assert "a\\nb.raw: not registered" in out


MAPPING = """\
tree: TEvent
run: 1234
time: {seconds: sec, nanoseconds: nanosec}
columns:
  E: {branch: Erec, unit: MeV}
  x: {branch: recx, unit: mm}
  y: {branch: recy, unit: mm}
  z: {branch: recz, unit: mm}
defaults: {cls: 0, quality: 0}
"""


@pytest.mark.parametrize(
    "option", [["--run", "5"], ["--seq", "0"], ["--kind", "esd"], ["--parent", "1"]]
)
def test_schema_refuses_options_it_cannot_honour(tmp_path, option):
    (tmp_path / "m.yaml").write_text(MAPPING)
    _tree(tmp_path / "f.root", 10)
    db = str(tmp_path / "c.db")
    code, out = _store(
        db, "add", str(tmp_path / "f.root"), "--schema", str(tmp_path / "m.yaml"), *option
    )
    assert code == 2 and f"{option[0]} cannot be used with --schema" in out
    assert not Path(db).exists()  # refused before the catalog is opened


def test_several_foreign_files_get_contiguous_ids_in_time_order(tmp_path, catalog_url):
    (tmp_path / "m.yaml").write_text(MAPPING)
    paths = []
    for i in range(3):  # given latest first
        p = tmp_path / f"part{i}.root"
        _tree(p, 30, t0=SEC0 + 3600 * (2 - i), seed=i)
        paths.append(str(p))
    broken = tmp_path / "broken.root"
    broken.write_bytes(b"root but not really")
    db = catalog_url  # SQLite and PostgreSQL
    code, out = _store(
        db,
        "add",
        *paths,
        str(broken),
        "--schema",
        str(tmp_path / "m.yaml"),
        "--out",
        str(tmp_path / "idx"),
    )
    assert code == 1 and f"error: {broken}: not registered" in out, out
    with Catalog(db) as cat:
        esds = cat.files(kind="esd")
        indexes = cat.files(kind="index")
    in_time = list(reversed(paths))
    assert [(f.id, f.path) for f in esds] == list(zip([1, 2, 3], in_time, strict=True))
    assert [f.id for f in indexes] == [4, 5, 6]
    assert [f.parent_ids for f in indexes] == [(1,), (2,), (3,)]
    assert [f.t_min for f in esds] == sorted(f.t_min for f in esds)


@pytest.mark.parametrize("name", ["", "   ", "two\nlines", "tab\there", " padded"])
def test_empty_or_multi_line_dataset_names_are_refused(tmp_path, name):
    with Catalog(tmp_path / "c.db") as cat, pytest.raises(ConfigError, match="dataset name"):
        cat.create_dataset(name)
    with Catalog(tmp_path / "c.db") as cat, pytest.raises(ConfigError, match="dataset name"):
        cat.add_to_dataset(name, [])
    code, out = _store(str(tmp_path / "c.db"), "dataset", "create", name, "--file", "1")
    assert code == 1 and "dataset name" in out


@pytest.mark.parametrize("command", [["ls"], ["show", "1"], ["verify"], ["dataset", "ls"]])
def test_reading_commands_never_create_a_catalog(tmp_path, command):
    db = tmp_path / "none" / "catalog.db"
    code, out = _store(str(db), *command)
    assert code == 1 and "no database at" in out
    assert not db.parent.exists()


def test_catalog_option_works_after_the_subcommand_too(tmp_path):
    raw = _raw(tmp_path / "run7.000.raw", 0)
    db = str(tmp_path / "sub.db")
    result = CliRunner().invoke(cli, ["store", "add", str(raw), "--catalog", db])
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(cli, ["store", "ls", "--catalog", db])
    assert result.exit_code == 0 and str(raw) in result.output
    result = CliRunner().invoke(cli, ["store", "dataset", "ls", "--catalog", db])
    assert result.exit_code == 0


def test_unwritable_index_directory_is_a_one_line_error(tmp_path):
    (tmp_path / "m.yaml").write_text(MAPPING)
    _tree(tmp_path / "f.root", 10)
    blocker = tmp_path / "blocker"
    blocker.write_text("a file, not a directory")
    code, out = _store(
        str(tmp_path / "c.db"),
        "add",
        str(tmp_path / "f.root"),
        "--schema",
        str(tmp_path / "m.yaml"),
        "--out",
        str(blocker / "idx"),
    )
    assert code == 1 and "cannot write the index in" in out, out
    assert "Traceback" not in out
