"""Skims for C++ frameworks: the candidates' full events as a ROOT file, plus entry lists.

``skim(res, path)`` follows the index redirect of every pair's prompt and delayed event
to its ESD row (and RTRAW hits), writes them to a ROOT TTree ``events`` (uproot; ROOT
itself reads it) and writes ``<path>.entries.json``: for every input ESD file the sorted
entries to process, so a SNiPER-style framework can run over just the candidates.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from jaas.engine.session.results import CoincidenceResult

__all__ = ["Skim", "skim"]


@dataclass(frozen=True)
class Skim:
    """What ``skim`` wrote: the ROOT file, the entry list file, and the entries per file."""

    root_path: Path
    entries_path: Path
    entries: dict[str, list[int]]
    n_events: int


def skim(
    res: CoincidenceResult,
    path: str | os.PathLike[str],
    *,
    catalog: Any = None,
    paths: Any = None,
    with_hits: bool = True,
) -> Skim:
    """Write the full events of ``res``'s pairs to the ROOT file ``path``.

    Branches: every ESD column, ``pair`` (pair number), ``role`` (0 prompt, 1 delayed),
    ``src_file_id``/``src_entry`` (the redirect) and, with hits, jagged ``hit_pmt``,
    ``hit_charge``, ``hit_time``. Files are written atomically.

    Raises:
        NotInCatalogError: a file id cannot be resolved (give ``catalog`` or ``paths``).
    """
    import awkward as ak
    import uproot

    from jaas.store.redirect import fetch_events, resolve_paths

    pairs = res.pairs
    n = len(pairs)
    file_id = np.concatenate([pairs["prompt_file_id"], pairs["delayed_file_id"]]).astype(np.int64)
    entry = np.concatenate([pairs["prompt_entry"], pairs["delayed_entry"]]).astype(np.int64)
    known = {int(k): v for k, v in (paths or {}).items()}
    missing = sorted(set(np.unique(file_id).tolist()) - set(known))
    if missing and catalog is not None:
        known.update(resolve_paths(missing, catalog, with_hits=with_hits))
    fetched = fetch_events(
        np.stack([file_id, entry], axis=1), paths=known, catalog=catalog, with_hits=with_hits
    )
    branches: dict[str, Any] = {
        str(c): fetched.esd[c].to_numpy()
        for c in fetched.esd.columns
        if c not in ("file_id", "entry")
    }
    branches["pair"] = np.concatenate([np.arange(n), np.arange(n)]).astype(np.int64)
    branches["role"] = np.repeat(np.array([0, 1], np.int8), n)
    branches["src_file_id"], branches["src_entry"] = file_id, entry
    if fetched.hits is not None:
        h = fetched.hits
        for name in ("pmt", "charge", "time"):
            flat = getattr(h, name)
            branches[f"hit_{name}"] = ak.unflatten(flat, np.diff(h.offsets))
    out = Path(path)
    tmp = out.with_name(out.name + ".tmp")
    with uproot.recreate(tmp) as f:
        f["events"] = branches
    tmp.replace(out)
    entries: dict[str, list[int]] = {}
    for fid in np.unique(file_id).tolist():
        esd_path = str(known[fid][0]) if fid in known else str(fid)
        entries[esd_path] = sorted(set(entry[file_id == fid].tolist()))
    entries_path = out.with_name(out.name.removesuffix(".root") + ".entries.json")
    tmp_json = entries_path.with_name(entries_path.name + ".tmp")
    tmp_json.write_text(json.dumps(entries, indent=1), encoding="utf-8")
    tmp_json.replace(entries_path)
    return Skim(out, entries_path, entries, 2 * n)
