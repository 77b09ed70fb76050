"""Catalog records: frozen dataclasses detached from database sessions."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

__all__ = ["DatasetRecord", "FileRecord", "ReplicaRecord", "RunRecord", "VerifyProblem"]


@dataclasses.dataclass(frozen=True)
class RunRecord:
    """A run: times in ns since the Unix epoch (None when unknown)."""

    run: int
    start: int | None
    end: int | None
    status: str
    meta: dict[str, Any]


@dataclasses.dataclass(frozen=True)
class FileRecord:
    """A catalogued file; ``adler32`` is 8 lower-case hex digits, times in ns."""

    id: int
    path: str
    kind: str
    run: int | None
    seq: int | None
    size: int | None
    adler32: str | None
    n_events: int | None
    t_min: int | None
    t_max: int | None
    software_version: str | None
    created: dt.datetime
    status: str
    status_reason: str
    meta: dict[str, Any]
    parent_ids: tuple[int, ...] = ()

    @property
    def checksum(self) -> str | None:
        """Alias of ``adler32``."""
        return self.adler32


@dataclasses.dataclass(frozen=True)
class DatasetRecord:
    """A dataset version and the ids of its files (sorted)."""

    id: int
    name: str
    version: int
    description: str
    created: dt.datetime
    file_ids: tuple[int, ...]


@dataclasses.dataclass(frozen=True)
class ReplicaRecord:
    """A copy of a file at a storage endpoint."""

    id: int
    file_id: int
    endpoint: str
    url: str
    verified: dt.datetime | None


@dataclasses.dataclass(frozen=True)
class VerifyProblem:
    """A file whose bytes no longer match the catalog.

    ``problem`` is ``"missing"``, ``"size"`` or ``"checksum"``; ``expected`` is the
    catalog's value, ``actual`` what is on disk now.
    """

    file_id: int
    path: str
    problem: str
    expected: str
    actual: str

    def __str__(self) -> str:
        return (
            f"file {self.file_id} {self.path}: {self.problem} "
            f"(expected {self.expected}, actual {self.actual})"
        )
