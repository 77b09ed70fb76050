"""The event store: catalog database (runs, files, checksums, parentage, datasets)."""

from __future__ import annotations

from jaas.store.catalog import Catalog, default_url, normalize_path
from jaas.store.records import (
    DatasetRecord,
    FileRecord,
    ReplicaRecord,
    RunRecord,
    VerifyProblem,
)

__all__ = [
    "Catalog",
    "DatasetRecord",
    "FileRecord",
    "ReplicaRecord",
    "RunRecord",
    "VerifyProblem",
    "default_url",
    "normalize_path",
]
