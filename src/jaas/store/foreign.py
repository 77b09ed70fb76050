"""Ingest ROOT files written by other software: apply a schema mapping, write a jaas index.

The foreign file is registered as kind ``esd`` (meta ``{"foreign": true, "schema": ...}``)
and the index file made from it as its child of kind ``index``.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
import importlib.util
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import uproot

from jaas.errors import ConfigError, FormatError, JaasError, SelectionError
from jaas.formats.index import write_index
from jaas.formats.schema import INDEX_SCHEMA, EventClass
from jaas.store.catalog import Catalog
from jaas.store.inspect import tree_names
from jaas.store.mapping import UNITS, SchemaMapping, load_mapping
from jaas.store.records import FileRecord
from jaas.units import TIME_UNITS

__all__ = ["ForeignIngest", "ingest_foreign", "ingest_foreign_many", "read_mapped"]

_EXACT = 2**53  # float64 represents every integer below this exactly


@dataclasses.dataclass(frozen=True)
class ForeignIngest:
    """The catalog records of an ingested foreign file and of the index made from it."""

    esd: FileRecord
    index: FileRecord


def _expr_module() -> Any:
    """``jaas.engine.expr`` when the expression language is installed, else None."""
    try:
        if importlib.util.find_spec("jaas.engine.expr") is None:
            return None
    except ModuleNotFoundError:
        return None
    module = importlib.import_module("jaas.engine.expr")
    return module if hasattr(module, "parse") else None


def _parse_expr(mapping: SchemaMapping, col: str, text: str, branches: list[str]) -> Any:
    """Compile ``expr`` with the tree's branches as unitless columns (jaas.engine.expr)."""
    where = mapping.where("columns", col, "expr")
    module = _expr_module()
    if module is None:
        raise ConfigError(
            f"{where}: expressions need jaas.engine.expr, which this build lacks; use "
            "'branch:' with 'scale:'/'offset:', or the 'time:' forms"
        )
    try:
        return module.parse(text, dict.fromkeys(branches))
    except SelectionError as exc:
        hints = [
            f"{word!r}{_nearest(word, branches)}"
            for word in dict.fromkeys(re.findall(r"[A-Za-z_]\w*", text))
            if word not in branches and _nearest(word, branches)
        ]
        hint = f"\n  unknown names: {', '.join(hints)}" if hints else ""
        raise ConfigError(f"{where}: {exc}{hint}") from None


def _integral_literals(node: Any) -> Any:
    """A copy of an expression tree with integral float literals (``1e9``) made int, so
    that integer branches combine in exact int64 arithmetic."""
    if not dataclasses.is_dataclass(node) or isinstance(node, type):
        return node
    value = getattr(node, "value", None)
    if type(node).__name__ == "Num" and isinstance(value, float):
        if value.is_integer() and abs(value) < 2**63:
            return dataclasses.replace(node, value=int(value))
        return node
    changes: dict[str, Any] = {}
    for f in dataclasses.fields(node):
        value = getattr(node, f.name)
        if isinstance(value, tuple):
            new: Any = tuple(_integral_literals(v) for v in value)
        else:
            new = _integral_literals(value)
        if new is not value:
            changes[f.name] = new
    return dataclasses.replace(node, **changes) if changes else node


def _evaluate(expr: Any, arrays: dict[str, Any], exact: bool) -> npt.NDArray[Any]:
    if exact and all(np.asarray(arrays[c]).dtype.kind in "biu" for c in expr.columns):
        expr = dataclasses.replace(expr, node=_integral_literals(expr.node))
    return np.asarray(expr.evaluate({c: arrays[c] for c in expr.columns}))


def read_mapped(
    path: str | os.PathLike[str], mapping: SchemaMapping | str | os.PathLike[str]
) -> dict[str, npt.NDArray[Any]]:
    """Read a foreign ROOT file through a schema mapping into index columns.

    Returns every INDEX_SCHEMA column except ``file_id``, in internal units (t in int64 ns
    since the epoch, MeV, m), in file entry order, then the mapping's ``extra`` columns
    as read (integer branches stay exact unless scaled).

    Args:
        path: the ROOT file.
        mapping: a SchemaMapping or the path of its YAML file.

    Example:
        >>> cols = read_mapped("other.root", "other.yaml")   # doctest: +SKIP
        >>> cols["t"].dtype
        dtype('int64')
    """
    if not isinstance(mapping, SchemaMapping):
        mapping = load_mapping(mapping)
    name = os.fspath(path)
    refs = mapping.branches()
    try:
        f = uproot.open(name)
    except (OSError, ValueError) as exc:
        raise FormatError(f"not a readable ROOT file: {exc}", path=name) from exc
    with f:
        trees = tree_names(f)
        if mapping.tree not in trees:
            raise ConfigError(
                f"{mapping.where('tree')}: no tree {mapping.tree!r} in {name}"
                f"{_nearest(mapping.tree, trees)} (trees: {sorted(set(trees))})"
            )
        tree = f[mapping.tree]
        available = list(tree.keys())
        for loc, branch in refs.items():
            if branch not in available:
                raise ConfigError(
                    f"{mapping.where(*loc)}: no branch {branch!r} in tree {mapping.tree!r} of "
                    f"{name}{_nearest(branch, available)}"
                )
        exprs = {
            col: _parse_expr(mapping, col, spec.expr, available)
            for col, spec in mapping.columns.items()
            if spec.expr is not None
        }
        wanted = sorted(set(refs.values()).union(*(e.columns for e in exprs.values())))
        arrays = tree.arrays(wanted, library="np") if wanted else {}
        n = int(tree.num_entries)
    for branch, values in arrays.items():
        if values.dtype.kind not in "biuf":
            raise FormatError(
                f"branch {branch!r} of tree {mapping.tree!r} is not a flat numeric branch "
                f"(numpy dtype {values.dtype}); a schema mapping can only use those",
                path=name,
            )
    return _columns(mapping, arrays, exprs, n)


def _nearest(word: str, names: list[str]) -> str:
    close = difflib.get_close_matches(word, names, n=3, cutoff=0.4)
    return f" (nearest: {', '.join(map(repr, close))})" if close else ""


def _int_factor(unit: str) -> int | None:
    factor = TIME_UNITS[unit]
    return int(factor) if float(factor).is_integer() else None


def _to_ns(values: npt.NDArray[Any], unit: str, what: str) -> npt.NDArray[np.int64]:
    """Exact int64 ns for integer input and integral factors; rounded otherwise."""
    factor = _int_factor(unit)
    if values.dtype.kind in "biu" and factor is not None:
        return values.astype(np.int64) * np.int64(factor)
    scaled = values.astype(np.float64) * TIME_UNITS[unit]
    if scaled.size and np.nanmax(np.abs(scaled)) >= _EXACT:
        raise ConfigError(
            f"{what}: float values of {np.nanmax(np.abs(scaled)):.3e} ns cannot be converted "
            "exactly to int64 ns; use integer branches or the time: {seconds, nanoseconds} "
            "or {start, offset} forms"
        )
    return np.rint(scaled).astype(np.int64)


def _time(m: SchemaMapping, arrays: dict[str, Any], exprs: dict[str, Any]) -> npt.NDArray[Any]:
    spec = m.time
    if spec is None:  # columns: t:
        col = m.columns["t"]
        if col.expr is not None:
            values = _evaluate(exprs["t"], arrays, exact=True)
        else:
            values = np.asarray(arrays[str(col.branch)])
        if col.scale != 1.0 or col.offset != 0.0:
            integral = float(col.scale).is_integer() and float(col.offset).is_integer()
            if values.dtype.kind in "biu" and integral:
                values = values.astype(np.int64) * int(col.scale) + int(col.offset)
            else:
                values = values.astype(np.float64) * col.scale + col.offset
        return _to_ns(values, str(col.unit), m.where("columns", "t"))
    if spec.seconds is not None:
        sec = np.asarray(arrays[spec.seconds])
        if sec.dtype.kind == "f" and not np.all(np.floor(sec) == sec):
            raise ConfigError(
                f"{m.where('time', 'seconds')}: branch {spec.seconds!r} has fractional "
                "seconds; use time: {branch: ..., unit: s} for a float time"
            )
        t = sec.astype(np.int64) * np.int64(1_000_000_000)
        if spec.nanoseconds is not None:
            t += _to_ns(np.asarray(arrays[spec.nanoseconds]), "ns", m.where("time"))
        return t
    if spec.branch is not None:
        return _to_ns(np.asarray(arrays[spec.branch]), spec.unit, m.where("time", "branch"))
    assert spec.start is not None and spec.offset is not None
    start_values = arrays[spec.start] if isinstance(spec.start, str) else np.asarray(spec.start)
    start = _to_ns(np.asarray(start_values), spec.start_unit, m.where("time", "start"))
    offset = _to_ns(np.asarray(arrays[spec.offset]), spec.unit, m.where("time", "offset"))
    return start + offset


def _columns(
    m: SchemaMapping, arrays: dict[str, Any], exprs: dict[str, Any], n: int
) -> dict[str, npt.NDArray[Any]]:
    out: dict[str, npt.NDArray[Any]] = {"entry": np.arange(n, dtype=np.int64)}
    if m.run_branch is not None:
        out["run"] = np.asarray(arrays[m.run_branch]).astype(np.int32)
    else:
        out["run"] = np.full(n, m.run, dtype=np.int32)
    out["t"] = _time(m, arrays, exprs)
    for col, spec in m.columns.items():
        if col == "t":
            continue
        if spec.expr is not None:
            values = _evaluate(exprs[col], arrays, exact=False).astype(np.float64)
            values = np.broadcast_to(values, (n,))
        else:
            values = np.asarray(arrays[str(spec.branch)], dtype=np.float64)
        values = values * spec.scale + spec.offset
        if spec.unit is not None:
            values = values * UNITS[col][spec.unit]
        out[col] = values
    for col, value in m.defaults.items():
        out.setdefault(col, np.full(n, value))
    # Documented fallbacks (docs/schema-mapping.md) for what neither columns nor defaults set.
    if "r" not in out:
        out["r"] = np.sqrt(out["x"] ** 2 + out["y"] ** 2 + out["z"] ** 2)
    out.setdefault("cls", np.zeros(n, dtype=np.uint8))
    cls = np.asarray(out["cls"]).astype(np.uint8)
    out.setdefault("muon", np.isin(cls, [EventClass.MUON, EventClass.WP_ONLY]))
    out.setdefault("wp", cls == EventClass.WP_ONLY)
    for col in ("showering", "tracked"):
        out.setdefault(col, np.zeros(n, dtype=bool))
    out.setdefault("quality", np.zeros(n, dtype=np.uint8))
    for col in ("pe", "mx0", "my0", "mz0", "mx1", "my1", "mz1"):
        out.setdefault(col, np.full(n, np.nan))
    for col in ("cls", "quality"):
        out[col] = np.asarray(out[col]).astype(np.uint8)
    for col in ("muon", "wp", "showering", "tracked"):
        out[col] = np.asarray(out[col]).astype(bool)
    cols = {name: out[name] for name in INDEX_SCHEMA.names if name in out}
    for col, spec in m.extra.items():
        values = np.asarray(arrays[str(spec.branch)])
        if spec.scale != 1.0 or spec.offset != 0.0:
            values = values.astype(np.float64) * spec.scale + spec.offset
        cols[col] = values
    return cols


def ingest_foreign(
    catalog: Catalog,
    path: str | os.PathLike[str],
    mapping: SchemaMapping | str | os.PathLike[str],
    *,
    out_dir: str | os.PathLike[str] | None = None,
    software_version: str | None = None,
) -> ForeignIngest:
    """Register a foreign ROOT file and the jaas index file made from it through ``mapping``.

    Idempotent: ingesting the same file with the same mapping again returns the same
    records (the index bytes depend only on the content). A changed mapping writes a new
    index file (its name carries the mapping's digest).

    Args:
        catalog: the catalog to register both files in.
        path: the foreign ROOT file.
        mapping: a SchemaMapping or the path of its YAML file.
        out_dir: where to write the index (default ``catalog.data_dir / "index"``).
        software_version: recorded on the index file.

    Example:
        >>> res = ingest_foreign(Catalog.default(), "TEvent.root", "junosw.yaml")  # doctest: +SKIP
        >>> res.index.parent_ids == (res.esd.id,)
        True
    """
    done, failed = ingest_foreign_many(
        catalog, [path], mapping, out_dir=out_dir, software_version=software_version
    )
    if failed:
        raise failed[0][1]
    return done[0]


@dataclasses.dataclass
class _Mapped:
    path: str
    cols: dict[str, Any]
    run: int | None
    t_min: int | None
    t_max: int | None


def _read(path: str | os.PathLike[str], mapping: SchemaMapping) -> _Mapped:
    cols = read_mapped(path, mapping)
    n = len(cols["t"])
    runs = np.unique(cols["run"])
    return _Mapped(
        path=os.fspath(path),
        cols=cols,
        run=int(runs[0]) if len(runs) == 1 else None,
        t_min=int(cols["t"].min()) if n else None,
        t_max=int(cols["t"].max()) if n else None,
    )


def ingest_foreign_many(
    catalog: Catalog,
    paths: Sequence[str | os.PathLike[str]],
    mapping: SchemaMapping | str | os.PathLike[str],
    *,
    out_dir: str | os.PathLike[str] | None = None,
    software_version: str | None = None,
) -> tuple[list[ForeignIngest], list[tuple[str, JaasError]]]:
    """Ingest several foreign files: every readable one, in time order, contiguously.

    The foreign files are registered first, ordered by run and first event time (not by
    the order given), then their index files in the same order; so consecutive files of
    a run get consecutive catalog ids. A file that cannot be read or mapped is reported
    and the others go on.

    Returns:
        the ingested files (in time order) and ``(path, error)`` of each file refused.
    """
    if not isinstance(mapping, SchemaMapping):
        mapping = load_mapping(mapping)
    failed: list[tuple[str, JaasError]] = []
    ready: list[_Mapped] = []
    for path in paths:
        try:
            ready.append(_read(path, mapping))
        except JaasError as exc:
            failed.append((os.fspath(path), exc))
        except OSError as exc:
            failed.append((os.fspath(path), FormatError(str(exc.strerror), path=path)))
    big = 2**63
    ready.sort(key=lambda m: (m.run if m.run is not None else big, m.t_min or 0, m.path))
    schema = mapping.model_dump(mode="json")
    esds: list[tuple[_Mapped, FileRecord]] = []
    for m in ready:
        try:
            esd = catalog.add_file(
                m.path,
                kind="esd",
                run=m.run,
                n_events=len(m.cols["t"]),
                t_min=m.t_min,
                t_max=m.t_max,
                meta={"foreign": True, "schema": schema, "schema_file": mapping.source},
            )
        except JaasError as exc:
            failed.append((m.path, exc))
            continue
        esds.append((m, esd))
    folder = Path(out_dir) if out_dir is not None else catalog.data_dir / "index"
    done: list[ForeignIngest] = []
    for m, esd in esds:
        try:
            done.append(_index(catalog, m, esd, mapping, folder, software_version))
        except JaasError as exc:
            failed.append((m.path, exc))
        except OSError as exc:  # the index directory cannot be created or written
            where = exc.filename or folder
            failed.append(
                (m.path, ConfigError(f"cannot write the index in {where}: {exc.strerror}"))
            )
    return done, failed


def _index(
    catalog: Catalog,
    m: _Mapped,
    esd: FileRecord,
    mapping: SchemaMapping,
    folder: Path,
    software_version: str | None,
) -> ForeignIngest:
    cols = dict(m.cols)
    n = len(cols["t"])
    cols["file_id"] = np.full(n, esd.id, dtype=np.int32)
    out = folder / f"{Path(m.path).stem}.{mapping.digest()}.index.parquet"
    metadata = {"source": esd.path, "schema_digest": mapping.digest()}
    if m.run is not None:
        metadata["run"] = str(m.run)
    write_index(cols, out, metadata=metadata, extra_columns=list(mapping.extra))
    index = catalog.add_file(
        out,
        kind="index",
        run=m.run,
        parents=[esd.id],
        software_version=software_version,
        n_events=n,
        t_min=m.t_min,
        t_max=m.t_max,
        meta={"schema_digest": mapping.digest()},
    )
    return ForeignIngest(esd=esd, index=index)
