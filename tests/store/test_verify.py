"""Filesystem verification works without a database; the catalog delegates to it."""

from __future__ import annotations

from jaas._io import adler32_file
from jaas.store import Catalog
from jaas.store.verify import ExpectedFile, check_files


def test_check_files_reports_missing_resized_and_changed_files(tmp_path):
    good = tmp_path / "good.raw"
    good.write_bytes(b"abcd")
    changed = tmp_path / "changed.raw"
    changed.write_bytes(b"abcd")
    expected = [
        ExpectedFile(1, str(good), 4, adler32_file(good)),
        ExpectedFile(2, str(changed), 4, adler32_file(changed)),
        ExpectedFile(3, str(tmp_path / "gone.raw"), 1, "00000001"),
    ]
    changed.write_bytes(b"abcdef")
    problems = check_files(expected)
    found = [(p.file_id, p.problem) for p in problems]
    assert found == [(2, "size"), (2, "checksum"), (3, "missing")]


def test_catalog_verify_uses_the_filesystem_check(tmp_path):
    f = tmp_path / "run1.000.raw"
    f.write_bytes(b"x" * 10)
    with Catalog(tmp_path / "c.db") as cat:
        rec = cat.add_file(f, kind="raw", run=1, seq=0)
        assert cat.verify() == []
        f.write_bytes(b"y" * 10)
        assert [(p.file_id, p.problem) for p in cat.verify([rec.id])] == [(rec.id, "checksum")]
