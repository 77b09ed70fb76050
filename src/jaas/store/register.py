"""Registering processing-step outputs in the catalog (shared by the CLI and keep-up stages)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Protocol

from jaas._io import adler32_file
from jaas._version import __version__
from jaas.store.catalog import Catalog
from jaas.store.records import FileRecord

__all__ = ["StepOutcome", "register_step"]


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
    rebuilt: str | None = None,
    who: str = "jaas",
    staged: str | os.PathLike[str] | None = None,
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
        rebuilt: why the output was made again (e.g. ``"keep-up reset: new calibration"``):
            an output already catalogued with other bytes is then replaced in place
            (:meth:`Catalog.replace_file`, lineage kept, audited) instead of refused.
        who: the operator or process recorded in the audit of a replacement.
        staged: where the output's bytes are now, when not yet renamed onto
            ``res.output`` (a step's ``check``): size and checksum are taken from it, so
            a refusal comes before the old output is replaced.

    Returns:
        ``(parent, child)`` catalog records.

    Example:
        >>> res = convert_raw("run1_0000.raw")                               # doctest: +SKIP
        >>> raw, rt = register_step(cat, res, kind="rtraw", input_kind="raw")  # doctest: +SKIP
    """
    run = run if run is not None else res.meta.get("run")
    seq = seq if seq is not None else res.meta.get("file_seq")
    if parent is None:
        # every step maps events 1:1, so the output's counts describe the input too
        parent = catalog.add_file(
            res.input, kind=input_kind, run=run, seq=seq, n_events=res.n_events,
            t_min=res.t_min, t_max=res.t_max,
        )  # fmt: skip
    fields: dict[str, Any] = {"software_version": __version__}
    if staged is not None and Path(staged) != Path(res.output):
        fields.update(size=os.path.getsize(staged), checksum=adler32_file(staged))
    fields |= {
        "n_events": res.n_events,
        "t_min": res.t_min,
        "t_max": res.t_max,
        "meta": meta,
    }
    if rebuilt is not None and catalog.has_file(res.output):
        child = catalog.replace_file(
            res.output, who=who, reason=rebuilt, parents=[parent.id], **fields
        )
        return parent, child
    child = catalog.add_file(res.output, kind=kind, run=run, seq=seq, parents=[parent.id], **fields)
    return parent, child
