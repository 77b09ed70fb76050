"""Filesystem verification of catalogued files: size and adler32 against the catalog."""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import NamedTuple

from jaas._io import adler32_file
from jaas.store.records import VerifyProblem

__all__ = ["ExpectedFile", "check_files"]


class ExpectedFile(NamedTuple):
    """What the catalog says of a local file: id, path, size and adler32 (when known)."""

    id: int
    path: str
    size: int | None
    adler32: str | None


def check_files(files: Iterable[ExpectedFile]) -> list[VerifyProblem]:
    """Recompute size and adler32 of each local file; return what no longer matches."""
    problems: list[VerifyProblem] = []
    for fid, path, size, checksum in files:
        if not os.path.isfile(path):
            problems.append(VerifyProblem(fid, path, "missing", "a file", "no such file"))
            continue
        actual_size = os.path.getsize(path)
        if size is not None and actual_size != size:
            problems.append(
                VerifyProblem(fid, path, "size", f"{size} bytes", f"{actual_size} bytes")
            )
        actual = adler32_file(path)
        if checksum is not None and actual != checksum:
            problems.append(VerifyProblem(fid, path, "checksum", checksum, actual))
    return problems
