"""Registering processing-step outputs in the catalog (shared by the CLI and keep-up stages)."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, OperationalError

from jaas._version import __version__
from jaas.errors import NotInCatalogError
from jaas.store.catalog import Catalog
from jaas.store.models import Dataset, DatasetFile, File
from jaas.store.records import DatasetRecord, FileRecord

__all__ = ["StepOutcome", "append_to_dataset", "register_step"]


class StepOutcome(Protocol):
    """What :func:`register_step` reads of a step result (``jaas.formats.rtraw.StepResult``)."""

    input: Any
    output: Any
    n_events: int
    t_min: int | None
    t_max: int | None
    meta: dict[str, Any]


def register_step(
    catalog: Catalog,
    res: StepOutcome,
    *,
    kind: str,
    input_kind: str,
    run: int | None = None,
    seq: int | None = None,
    parent: FileRecord | None = None,
    meta: dict[str, Any] | None = None,
) -> tuple[FileRecord, FileRecord]:
    """Register a step's input (unless ``parent`` is given) and its output as its child.

    Idempotent: both :meth:`Catalog.add_file` calls return the existing row for the same
    path and checksum, so a retried step (which finds its output up to date) adds nothing.

    Args:
        catalog: the catalog.
        res: the step's result (input, output, events, time range, metadata).
        kind: the output's file kind (``rtraw``, ``esd``, ``index``).
        input_kind: the input's file kind (``raw``, ``rtraw``, ``esd``).
        run, seq: run and file sequence number (default: ``res.meta['run'/'file_seq']``).
        parent: the input's catalog record when the caller already has it.
        meta: extra metadata of the output.

    Returns:
        ``(parent, child)`` catalog records.

    Example:
        >>> res = convert_raw("run1_0000.raw")                               # doctest: +SKIP
        >>> raw, rt = register_step(cat, res, kind="rtraw", input_kind="raw")  # doctest: +SKIP
    """
    run = run if run is not None else res.meta.get("run")
    seq = seq if seq is not None else res.meta.get("file_seq")
    if parent is None:
        parent = catalog.add_file(res.input, kind=input_kind, run=run, seq=seq)
    child = catalog.add_file(
        res.output,
        kind=kind,
        run=run,
        seq=seq,
        parents=[parent.id],
        software_version=__version__,
        n_events=res.n_events,
        t_min=res.t_min,
        t_max=res.t_max,
        meta=meta,
    )
    return parent, child


def append_to_dataset(
    catalog: Catalog,
    name: str,
    version: int,
    file_ids: Iterable[int],
    *,
    description: str = "",
) -> DatasetRecord:
    """Add files to a growing dataset version (created if missing); idempotent.

    This is for keep-up datasets (e.g. ``keepup`` version = run) that grow while a run
    is processed. Datasets made with :meth:`Catalog.create_dataset` are snapshots that
    never change; do not append to those.

    Raises:
        NotInCatalogError: a file id is unknown.
    """
    ids = sorted(set(file_ids))
    for attempt in range(20):  # concurrent publishers race on the same new version
        try:
            _append(catalog, name, version, ids, description)
            return catalog.dataset(name, version)
        except IntegrityError:
            pass
        except OperationalError as exc:
            if "locked" not in str(exc):
                raise
        time.sleep(0.02 * (attempt + 1))
    _append(catalog, name, version, ids, description)
    return catalog.dataset(name, version)


def _append(catalog: Catalog, name: str, version: int, ids: list[int], description: str) -> None:
    with catalog._tx() as s:
        known = set(s.scalars(select(File.id).where(File.id.in_(ids)))) if ids else set()
        missing = [i for i in ids if i not in known]
        if missing:
            raise NotInCatalogError(
                f"dataset {name!r} version {version}: file ids {missing[:20]} are not in "
                f"{catalog!r}"
            )
        row = s.scalars(
            select(Dataset).where(Dataset.name == name, Dataset.version == version)
        ).one_or_none()
        if row is None:
            row = Dataset(name=name, version=version, description=description)
            s.add(row)
            s.flush()
        have = set(s.scalars(select(DatasetFile.file_id).where(DatasetFile.dataset_id == row.id)))
        s.add_all(DatasetFile(dataset_id=row.id, file_id=i) for i in ids if i not in have)
