"""The ESD -> index step: one time-sorted index file (Parquet or HDF5) per ESD file."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

from jaas._io import adler32_file
from jaas._version import __version__
from jaas.errors import ConfigError, FormatError
from jaas.formats.esd import esd_meta, read_esd
from jaas.formats.index import index_metadata, write_index
from jaas.formats.outputs import StepCheck, commit_step, kept_output
from jaas.formats.rtraw import StepResult
from jaas.formats.schema import EventClass

__all__ = ["StepResult", "build_index", "default_index_path", "index_columns"]

_SOURCE = ("source", "source_adler32")  # the input's name and checksum in the output's metadata

_SUFFIX = {"parquet": ".index.parquet", "hdf5": ".index.h5"}
_MUON_CLASSES = (int(EventClass.MUON), int(EventClass.WP_ONLY))


def default_index_path(
    esd_path: str | os.PathLike[str],
    outdir: str | os.PathLike[str] | None = None,
    fmt: str = "parquet",
) -> Path:
    """``run000001_0000.esd.root`` -> ``run000001_0000.index.parquet`` (or ``.index.h5``)."""
    if fmt not in _SUFFIX:
        raise ConfigError(f"unknown index format {fmt!r}; use one of {list(_SUFFIX)}")
    src = Path(esd_path)
    name = src.name
    for suffix in (".esd.root", ".root"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    return (Path(outdir) if outdir is not None else src.parent) / f"{name}{_SUFFIX[fmt]}"


def index_columns(esd: dict[str, np.ndarray], *, file_id: int, run: int) -> dict[str, np.ndarray]:
    """INDEX_SCHEMA columns from ESD columns (in ESD entry order, not yet time-sorted).

    ``r`` is the vertex radius, ``muon`` is ``cls`` in (MUON, WP_ONLY), ``entry`` the ESD
    entry and ``file_id`` the ESD file's catalog id.
    """
    n = len(esd["t"])
    x, y, z = (esd[c].astype(np.float64) for c in ("x", "y", "z"))
    cols = {c: esd[c] for c in esd if c not in ("event_id", "nhit")}
    cols["run"] = np.full(n, run, dtype=np.int32)
    cols["file_id"] = np.full(n, file_id, dtype=np.int32)
    cols["entry"] = np.arange(n, dtype=np.int64)
    cols["r"] = np.sqrt(x * x + y * y + z * z).astype(np.float32)
    cols["muon"] = np.isin(esd["cls"], _MUON_CLASSES)
    return cols


def build_index(
    esd_path: str | os.PathLike[str],
    out_path: str | os.PathLike[str] | None = None,
    *,
    file_id: int,
    run: int | None = None,
    fmt: str = "parquet",
    force: bool = False,
    overwrite: bool = False,
    check: StepCheck | None = None,
) -> StepResult:
    """Build the index file of one ESD file: INDEX_SCHEMA rows, time-sorted; idempotent.

    Args:
        esd_path: the ``.esd.root`` file.
        out_path: output path; default ``default_index_path(esd_path, fmt=fmt)``.
        file_id: the ESD file's catalog id (stored in every row: (file_id, entry) -> event).
        run: run number; default the ESD's metadata ``run``.
        fmt: ``"parquet"`` or ``"hdf5"``.
        force: rebuild even if an up-to-date index exists (same ESD checksum, file id and
            software version).
        overwrite: replace an existing index made from another ESD
            (refused otherwise, see ``jaas.formats.outputs``).
        check: called with the result and the staged file before it replaces the output
            (e.g. catalog registration); raising keeps the old output.

    Raises:
        FormatError: the ESD file is unreadable or lacks a column (file named).
        ConfigError: the output exists with other content (and not ``overwrite``).

    Example:
        >>> res = build_index("run000001_0000.esd.root", file_id=42)  # doctest: +SKIP
        >>> res.output.name
        'run000001_0000.index.parquet'
    """
    t0 = time.perf_counter()
    src = Path(esd_path)
    out = Path(out_path) if out_path is not None else default_index_path(src, fmt=fmt)
    if fmt not in _SUFFIX:
        raise ConfigError(f"unknown index format {fmt!r}; use one of {list(_SUFFIX)}")
    meta = esd_meta(src)
    if run is None:
        if meta.get("run") is None:
            raise FormatError("ESD metadata has no 'run'; pass run=...", path=src)
        run = int(meta["run"])
    expect = {
        "source": src.name,
        "source_adler32": adler32_file(src),
        "software_version": __version__,
        "file_id": str(int(file_id)),
        "run": str(int(run)),
        "format": fmt,
    }
    found = _output_meta(out)
    if kept := kept_output(src, out, expect, found, _SOURCE, t0, force, overwrite, check):
        return kept
    esd = read_esd(src)
    assert isinstance(esd, dict)
    cols = index_columns(esd, file_id=int(file_id), run=int(run))
    n = len(cols["t"])
    t_min = int(cols["t"].min()) if n else None
    t_max = int(cols["t"].max()) if n else None
    stored = {
        **expect,
        "file_seq": str(meta.get("file_seq", "")),
        "n_events": str(n),
        "t_min": "" if t_min is None else str(t_min),
        "t_max": "" if t_max is None else str(t_max),
    }

    def write() -> StepResult:
        write_index(cols, out, metadata=stored, fmt=fmt)
        return StepResult.from_meta(src, out, dict(stored), t0)

    return commit_step(write, check)


def _output_meta(out: Path) -> dict[str, str] | None:
    if not out.exists():
        return None
    try:
        return index_metadata(out)
    except (FormatError, OSError):
        return None
