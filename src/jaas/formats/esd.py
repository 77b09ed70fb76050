"""ESD files (ROOT): reconstructed quantities, one entry per trigger, in RTRAW order.

Layout (written with uproot, readable by ROOT itself):

- TTree ``esd``, one entry per event, entry ``i`` is entry ``i`` of the parent RTRAW file:
  ``event_id`` (uint64), ``t`` (int64, ns since the Unix epoch), ``E`` (float32, MeV),
  ``x``, ``y``, ``z`` (float32, m), ``pe`` (float32, PE), ``nhit`` (int32), ``cls`` (uint8,
  EventClass), ``wp``, ``showering``, ``tracked`` (bool), ``mx0``, ``my0``, ``mz0`` /
  ``mx1``, ``my1``, ``mz1`` (float32, m: muon track entry / exit point, NaN if none),
  ``quality`` (uint8, 0 = good).
- TObjString ``jaas_meta``: JSON with ``format`` ("esd"), ``run``, ``file_seq``,
  ``parent`` (RTRAW file name), ``calib_version``, ``software_version``, ``n_events``,
  ``t_min``, ``t_max`` and whatever else the writer passes.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from jaas._version import __version__
from jaas.errors import FormatError
from jaas.formats.rtraw import (
    META_KEY,
    _codec,
    open_tree,
    parse_compression,
    read_columns,
    read_entries,
    read_meta,
    root_writer,
    write_meta,
)

__all__ = [
    "COMPRESSION",
    "ESD_COLUMNS",
    "TREE",
    "default_esd_path",
    "esd_meta",
    "read_esd",
    "write_esd",
]

TREE = "esd"
BASKET_EVENTS = 8192  # entries per basket: 32 kB per float32 branch (ROOT's default size)
# ESD baskets are stored uncompressed by default: ~75 bytes per event (~38 with zstd:5,
# ~50 with lz4), a few per mille of the RTRAW hits of the same events, and an entry read
# (the index -> event redirect reads one row of each of 19 branches per candidate) then
# decompresses nothing: 50 rows of 7 files cost 0.8 ms instead of 5.3 ms with zstd:5.
COMPRESSION = "none"

# column -> dtype, in file order
ESD_COLUMNS: dict[str, np.dtype[Any]] = {
    name: np.dtype(dt)
    for name, dt in [
        ("event_id", np.uint64),
        ("t", np.int64),
        ("E", np.float32),
        ("x", np.float32),
        ("y", np.float32),
        ("z", np.float32),
        ("pe", np.float32),
        ("nhit", np.int32),
        ("cls", np.uint8),
        ("wp", np.bool_),
        ("showering", np.bool_),
        ("tracked", np.bool_),
        ("mx0", np.float32),
        ("my0", np.float32),
        ("mz0", np.float32),
        ("mx1", np.float32),
        ("my1", np.float32),
        ("mz1", np.float32),
        ("quality", np.uint8),
    ]
}


def default_esd_path(
    rtraw_path: str | os.PathLike[str], outdir: str | os.PathLike[str] | None = None
) -> Path:
    """``run000001_0000.rtraw.root`` -> ``run000001_0000.esd.root`` (beside it or in ``outdir``)."""
    src = Path(rtraw_path)
    name = src.name
    for suffix in (".rtraw.root", ".root"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    return (Path(outdir) if outdir is not None else src.parent) / f"{name}.esd.root"


def _columns(data: dict[str, npt.ArrayLike] | pa.Table, path: Any) -> dict[str, np.ndarray]:
    names = data.column_names if isinstance(data, pa.Table) else list(data)
    missing = [c for c in ESD_COLUMNS if c not in names]
    if missing:
        raise FormatError(
            f"ESD columns {missing} missing (expected {list(ESD_COLUMNS)})", path=path
        )
    out: dict[str, np.ndarray] = {}
    for name, dtype in ESD_COLUMNS.items():
        col = data.column(name).to_numpy() if isinstance(data, pa.Table) else data[name]
        out[name] = np.ascontiguousarray(np.asarray(col), dtype=dtype)
    lengths = {len(v) for v in out.values()}
    if len(lengths) > 1:
        sizes = {k: len(v) for k, v in out.items()}
        raise FormatError(f"ESD columns have different lengths: {sizes}", path=path)
    return out


def write_esd(
    columns: dict[str, npt.ArrayLike] | pa.Table,
    path: str | os.PathLike[str],
    *,
    meta: dict[str, Any],
    compression: str = COMPRESSION,
    level: int | None = None,
    basket_events: int = BASKET_EVENTS,
) -> dict[str, Any]:
    """Write an ESD file atomically; returns the metadata stored in it.

    Args:
        columns: every column of ``ESD_COLUMNS`` (extra ones are ignored), cast to its type.
        path: output ``.esd.root`` file.
        meta: file metadata: ``run``, ``file_seq``, ``parent`` (RTRAW name),
            ``calib_version`` ...; ``software_version``, ``n_events``, ``t_min``, ``t_max``
            are filled in.
        compression: ``zstd``, ``lz4``, ``zlib`` or ``none`` (the default, see
            ``COMPRESSION``), optionally ``codec:level``.
        level: compression level (overrides one given in ``compression``).
        basket_events: entries per basket.

    Raises:
        FormatError: a column is missing or the lengths differ (nothing is written).

    Example:
        >>> write_esd(cols, "run000001_0000.esd.root",
        ...           meta={"run": 1, "file_seq": 0, "parent": "run000001_0000.rtraw.root",
        ...                 "calib_version": "v0"})  # doctest: +SKIP
    """
    cols = _columns(columns, path)
    codec, lvl = parse_compression(compression, level)
    n = len(cols["t"])
    meta = {"software_version": __version__, **meta, "format": "esd", "n_events": n}
    meta["t_min"] = int(cols["t"].min()) if n else None
    meta["t_max"] = int(cols["t"].max()) if n else None
    seed = f"esd:{meta.get('parent')}:{meta['software_version']}:{meta['t_min']}:{n}"
    created = meta.get("start_time", meta["t_min"])
    with root_writer(path, compression=_codec(codec, lvl), created_ns=created, uuid_seed=seed) as f:
        tree = f.mktree(TREE, dict(ESD_COLUMNS))
        for start in range(0, n, basket_events):
            tree.extend({k: v[start : start + basket_events] for k, v in cols.items()})
        write_meta(f, meta)
    return meta


def read_esd(
    path: str | os.PathLike[str],
    entries: npt.ArrayLike | None = None,
    columns: list[str] | None = None,
    *,
    library: Literal["np", "pa"] = "np",
) -> dict[str, np.ndarray] | pa.Table:
    """Read an ESD file, all entries or only ``entries`` (in the order given).

    Only the baskets holding the requested entries are read.

    Args:
        path: the ``.esd.root`` file.
        entries: entry numbers (any order, repeats allowed); None reads all.
        columns: columns to read (default all of ``ESD_COLUMNS``).
        library: ``"np"`` for a dict of numpy arrays, ``"pa"`` for an Arrow table.

    Raises:
        FormatError: not an ESD file, unknown column, or entry out of range (all named).

    Example:
        >>> esd = read_esd("run000001_0000.esd.root", entries=[3, 1], columns=["t", "E"])
        ...     # doctest: +SKIP
    """
    names = list(ESD_COLUMNS) if columns is None else list(columns)
    unknown = [c for c in names if c not in ESD_COLUMNS]
    if unknown:
        raise FormatError(f"unknown ESD columns {unknown}; known: {list(ESD_COLUMNS)}", path=path)
    direct = None if entries is None else read_columns(path, TREE, names, entries)
    if direct is None:
        with open_tree(path, TREE, keep=entries is not None) as tree:
            arr, inverse = read_entries(tree, names, entries, path)
            out = {c: np.asarray(arr[c].to_numpy(), dtype=ESD_COLUMNS[c]) for c in names}
    else:
        cols, inverse = direct
        out = {c: cols[c].values.astype(ESD_COLUMNS[c], copy=False) for c in names}
    rows = len(next(iter(out.values()))) if out else len(inverse)
    if entries is not None and not np.array_equal(inverse, np.arange(rows)):
        out = {c: v[inverse] for c, v in out.items()}
    if library == "pa":
        return pa.table(out)
    return out


def esd_meta(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The ``jaas_meta`` metadata of an ESD file (run, file_seq, parent, versions, ...)."""
    meta = read_meta(path)
    if meta.get("format") != "esd":
        raise FormatError(
            f"'{META_KEY}' says format {meta.get('format')!r}, expected 'esd'", path=path
        )
    return meta
