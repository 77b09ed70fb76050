"""No step replaces an earlier invocation's output by accident (issue 15, item 2).

convert/index name their output after the input; a second run with ANOTHER input of the
same base name into the same directory is refused before anything is written, the same
rerun stays idempotent, and a replacement the catalog refuses leaves the old file and row.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from jaas._io import adler32_file, atomic_path, held_writes
from jaas.cli.main import main
from jaas.formats.esd import write_esd
from jaas.formats.index import index_metadata
from jaas.formats.rtraw import read_meta, read_rtraw
from jaas.store import Catalog
from tests.formats.test_esd import make_esd, meta
from tests.formats.test_rtraw import make_hits, write_raw

NAME = "run000003_0000.raw"


def _two_raws(tmp_path: Path) -> tuple[Path, Path]:
    """Two different RAW files with the same base name, in two directories."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = write_raw(tmp_path / "a" / NAME, make_hits(30, seed=1), run=3)
    b = write_raw(tmp_path / "b" / NAME, make_hits(40, seed=2, first_id=500), run=3)
    return a, b


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str]) -> Callable[..., tuple[int, str]]:
    """``jaas ARGS`` as a user runs it: (exit code, stdout + stderr)."""

    def invoke(*args: str) -> tuple[int, str]:
        try:
            main(list(args))
            code = 0
        except SystemExit as exc:
            code = int(exc.code or 0)
        out = capsys.readouterr()
        return code, out.out + out.err

    return invoke


def test_earlier_output_of_another_input_is_refused(
    tmp_path: Path, run: Callable[..., tuple[int, str]]
) -> None:
    a, b = _two_raws(tmp_path)
    out = tmp_path / "out"
    code, text = run("convert", str(a), "-o", str(out))
    assert code == 0, text
    rt = out / "run000003_0000.rtraw.root"
    first = adler32_file(rt)

    code, text = run("convert", str(b), "-o", str(out))
    assert code == 1
    assert "already exists and was made from another input" in text
    assert str(rt) in text and "--overwrite" in text and "Traceback" not in text
    assert adler32_file(rt) == first and len(read_rtraw(rt)) == 30
    assert [p.name for p in out.iterdir()] == [rt.name]  # no temporary file left

    # the identical rerun stays idempotent
    code, text = run("convert", str(a), "-o", str(out))
    assert code == 0 and "up to date" in text

    # a deliberate replacement
    code, text = run("convert", str(b), "-o", str(out), "--overwrite")
    assert code == 0, text
    assert len(read_rtraw(rt)) == 40 and read_meta(rt)["source_adler32"] == adler32_file(b)


def test_catalog_refusal_keeps_old_file_and_row(
    tmp_path: Path, run: Callable[..., tuple[int, str]]
) -> None:
    a, _ = _two_raws(tmp_path)
    out, db = tmp_path / "out", tmp_path / "cat.db"
    code, text = run("convert", str(a), "-o", str(out), "--catalog", str(db))
    assert code == 0, text
    rt = out / "run000003_0000.rtraw.root"
    first = adler32_file(rt)

    # same input, other settings: rebuilt, but the catalogued row refuses the new bytes
    args = ["convert", str(a), "-o", str(out), "--catalog", str(db), "--compression", "lz4"]
    code, text = run(*args)
    assert code == 1
    assert "--rebuilt REASON" in text and "old file and its row are kept" in text
    assert adler32_file(rt) == first and read_meta(rt)["compression"] == "zstd:5"
    with Catalog(db) as cat:
        assert cat.get_file(rt).adler32 == first
    assert [p.name for p in out.iterdir()] == [rt.name]

    code, text = run(*args, "--rebuilt", "new compression")
    assert code == 0, text
    assert read_meta(rt)["compression"] == "lz4:4"
    with Catalog(db) as cat:
        rec = cat.get_file(rt)
        assert rec.adler32 == adler32_file(rt) != first
        assert [p.path for p in cat.parents(rec.id)] == [str(a.resolve())]
        (audit,) = cat.audit_log(rt)
        assert (audit["old_adler32"], audit["note"]) == (first, "new compression")


def test_index_of_another_esd_is_refused(
    tmp_path: Path, run: Callable[..., tuple[int, str]]
) -> None:
    out = tmp_path / "idx"
    esds = []
    for k, sub in enumerate("ab"):
        (tmp_path / sub).mkdir()
        esd = tmp_path / sub / "run000003_0000.esd.root"
        write_esd(make_esd(20 + k, seed=k), esd, meta=meta(run=3))
        esds.append(esd)
    code, text = run("index", str(esds[0]), "-o", str(out), "--file-id", "7")
    assert code == 0, text
    idx = out / "run000003_0000.index.parquet"
    first = adler32_file(idx)
    code, text = run("index", str(esds[1]), "-o", str(out), "--file-id", "7")
    assert code == 1 and "made from another input" in text and str(idx) in text
    assert adler32_file(idx) == first
    assert index_metadata(idx)["n_events"] == "20"
    code, text = run("index", str(esds[1]), "-o", str(out), "--file-id", "7", "--overwrite")
    assert code == 0, text
    assert index_metadata(idx)["n_events"] == "21"


def test_a_foreign_file_at_the_output_path_is_refused(
    tmp_path: Path, run: Callable[..., tuple[int, str]]
) -> None:
    a, _ = _two_raws(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    (out / "run000003_0000.rtraw.root").write_text("someone else's notes\n")
    code, text = run("convert", str(a), "-o", str(out))
    assert code == 1 and "is not a readable output of this step" in text
    assert (out / "run000003_0000.rtraw.root").read_text() == "someone else's notes\n"


def test_held_writes_rename_only_after_the_block(tmp_path: Path) -> None:
    target = tmp_path / "x.txt"
    target.write_text("old")
    seen: list[str] = []

    def refuse() -> None:
        with held_writes() as held:
            with atomic_path(target) as tmp:
                tmp.write_text("new")
            seen.extend([target.read_text(), held[0][0].read_text()])
            raise RuntimeError("refused")

    with pytest.raises(RuntimeError, match="refused"):
        refuse()
    assert seen == ["old", "new"]
    assert target.read_text() == "old" and sorted(tmp_path.iterdir()) == [target]
    with held_writes(), atomic_path(target) as tmp:
        tmp.write_text("new")
    assert target.read_text() == "new" and sorted(tmp_path.iterdir()) == [target]
