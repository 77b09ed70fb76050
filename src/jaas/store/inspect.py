"""Infer catalog fields (kind, run, sequence, events, time range) from a file's content."""

from __future__ import annotations

import importlib
import importlib.util
import os
from typing import Any

from jaas.errors import ConfigError, FormatError

# TTree and its subclasses that uproot reads as trees (ROOT's TNtuple, TNtupleD)
_TREE_CLASSES = ("TTree", "TNtuple", "TNtupleD")


def tree_names(f: Any) -> list[str]:
    """Names of the trees in an open uproot file (cycle numbers removed)."""
    return [k.split(";")[0] for k, c in f.classnames().items() if c in _TREE_CLASSES]


__all__ = ["describe_file", "tree_names"]

_ROOT_SUFFIXES = (".root",)
_PARQUET_SUFFIXES = (".parquet", ".pq")
_RAW_SUFFIXES = (".raw",)


def _optional(module: str) -> Any:
    try:
        if importlib.util.find_spec(module) is None:
            return None
    except ModuleNotFoundError:
        return None
    return importlib.import_module(module)


def describe_file(path: str | os.PathLike[str], kind: str | None = None) -> dict[str, Any]:
    """What can be read cheaply from a file: ``kind``, ``run``, ``seq``, ``n_events``,
    ``t_min``, ``t_max`` (only the keys that could be inferred).

    RAW files through ``jaas.formats.raw.raw_info`` (header and footer only), Parquet
    index/truth files through their footer and ``t`` column, ROOT files through uproot
    (entries of the main tree and the ``jaas_meta`` record when present).

    Args:
        path: the file.
        kind: the kind given by the user, if any (it wins over the inferred one).

    Raises:
        ConfigError: the kind cannot be inferred and was not given.
    """
    name = os.fspath(path)
    lower = name.lower()
    info: dict[str, Any] = {}
    if kind == "raw" or (kind is None and lower.endswith(_RAW_SUFFIXES)):
        info = _raw(name)
    elif lower.endswith(_PARQUET_SUFFIXES):
        info = _parquet(name)
    elif lower.endswith(_ROOT_SUFFIXES):
        info = _root(name)
    if kind is not None:
        info["kind"] = kind
    if "kind" not in info:
        raise ConfigError(f"{name}: cannot infer the kind of this file; pass --kind")
    return info


def _raw(name: str) -> dict[str, Any]:
    module = _optional("jaas.formats.raw")
    if module is None or not hasattr(module, "raw_info"):
        return {"kind": "raw"}
    raw = module.raw_info(name)
    out = {"kind": "raw", "run": raw.get("run"), "seq": raw.get("file_seq")}
    out["n_events"] = raw.get("n_events")
    out["t_min"] = raw.get("t_first")
    out["t_max"] = raw.get("t_last")
    return {k: v for k, v in out.items() if v is not None}


def _parquet(name: str) -> dict[str, Any]:
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(name)
    except Exception as exc:  # pyarrow raises several types for a bad footer
        raise FormatError(f"not a readable Parquet file: {exc}", path=name) from exc
    with pf:
        names = pf.schema_arrow.names
        out: dict[str, Any] = {"n_events": pf.metadata.num_rows}
        out["kind"] = "truth" if "source" in names and "role" in names else "index"
        if "t" in names and pf.metadata.num_rows:
            t = pf.read(columns=["t"]).column("t")
            bounds = pc.min_max(t).as_py()
            out["t_min"], out["t_max"] = int(bounds["min"]), int(bounds["max"])
        if "run" in names and pf.metadata.num_rows:
            runs = pc.unique(pf.read(columns=["run"]).column("run")).to_pylist()
            if len(runs) == 1:
                out["run"] = int(runs[0])
        meta = pf.schema_arrow.metadata or {}
        if "run" not in out and b"run" in meta:
            out["run"] = int(meta[b"run"])
    return out


def _root(name: str) -> dict[str, Any]:
    import uproot

    try:
        f = uproot.open(name)
    except (OSError, ValueError) as exc:
        raise FormatError(f"not a readable ROOT file: {exc}", path=name) from exc
    out: dict[str, Any] = {}
    with f:
        trees = tree_names(f)
        rtraw = _optional("jaas.formats.rtraw")
        meta: dict[str, Any] = {}
        if rtraw is not None and hasattr(rtraw, "read_meta") and "jaas_meta" in f:
            try:
                meta = rtraw.read_meta(name, file=f)
            except FormatError:
                meta = {}
        if meta.get("format") in ("rtraw", "esd"):
            out["kind"] = meta["format"]
        for key, field in (("run", "run"), ("seq", "file_seq")):
            if isinstance(meta.get(field), int):
                out[key] = meta[field]
        tree = out.get("kind") if out.get("kind") in trees else (trees[0] if trees else None)
        if tree is not None:
            ttree = f[tree]
            out["n_events"] = int(ttree.num_entries)
            if meta and "t" in ttree and out["n_events"]:  # jaas ESD: int64 ns times
                t = ttree["t"].array(library="np")
                out["t_min"], out["t_max"] = int(t.min()), int(t.max())
    return out
