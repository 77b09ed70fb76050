"""Index -> full event redirect: fetch ESD rows and RTRAW hits for (file_id, entry) pairs.

Files written by other software (``store add --schema``, catalog meta ``foreign``) are
read through the schema mapping stored with them: their events come back with the
mapped columns (the index quantities in jaas units and the mapping's ``extra`` columns),
read from the foreign tree at the candidates' entries. They have no hits.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa

from jaas.errors import FormatError, NotInCatalogError
from jaas.formats.esd import ESD_COLUMNS, read_esd
from jaas.formats.events import HitEvents
from jaas.formats.rtraw import read_rtraw, take_hits

if TYPE_CHECKING:
    from jaas.store.catalog import Catalog
    from jaas.store.mapping import SchemaMapping
    from jaas.store.records import FileRecord

__all__ = ["FetchedEvents", "fetch_events", "readable_copy", "resolve_paths"]

PathPair = tuple[str, str | None]


@dataclass
class FetchedEvents:
    """Full events for (file_id, entry) pairs, in the caller's order.

    Attributes:
        esd: one row per requested pair: ``file_id``, ``entry`` and every ESD column
            (for files written by other software: their mapped columns).
        hits: the RTRAW hits of the same events, in the same order (None if not asked,
            or when every file was written by other software: those have no hits).
    """

    esd: pd.DataFrame
    hits: HitEvents | None

    def __len__(self) -> int:
        return len(self.esd)

    def event(self, i: int) -> dict[str, Any]:
        """Event ``i``: its ESD quantities and, if fetched, its hit arrays."""
        out: dict[str, Any] = {str(k): v for k, v in self.esd.iloc[i].items()}
        if self.hits is not None:
            h = self.hits.event(i)
            out.update(pmt=h["pmt"], charge=h["charge"], time=h["time"], trigger=h["trigger"])
        return out


def _pairs_array(pairs: Any) -> npt.NDArray[np.int64]:
    if isinstance(pairs, pd.DataFrame):
        return pairs[["file_id", "entry"]].to_numpy(dtype=np.int64)
    if isinstance(pairs, pa.Table):
        cols = [pairs.column(c).to_numpy() for c in ("file_id", "entry")]
        return np.stack(cols, axis=1).astype(np.int64)
    arr = np.asarray(list(pairs) if not isinstance(pairs, np.ndarray) else pairs, dtype=np.int64)
    if arr.size == 0:
        return np.zeros((0, 2), dtype=np.int64)
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise ValueError(f"pairs must be (file_id, entry) pairs, got shape {arr.shape}")
    return arr


def resolve_paths(
    file_ids: Iterable[int], catalog: Catalog, *, with_hits: bool = True
) -> dict[int, PathPair]:
    """{file_id: (esd_path, rtraw_path)} from the catalog (RTRAW = the ESD's rtraw parent).

    A file whose primary copy is missing is read from a verified replica (a local copy
    first, then a remote URL); unverified replicas are never used.

    Raises:
        NotInCatalogError: an id is unknown, is an index file of an index-only dataset
            (no full events exist), is not an ESD file, has no RTRAW parent (with hits),
            or has neither its primary copy nor a verified replica.
    """
    out: dict[int, PathPair] = {}
    for fid in file_ids:
        rec = catalog.get_file(int(fid))
        if rec.kind == "index":
            raise NotInCatalogError(
                f"file id {fid} ({rec.path}) is an index file: this dataset is index-only, "
                "so only its index columns (time, energy, vertex, ...) exist; full ESD "
                "events and hits are not available. Register the ESD files and build the "
                "index from them to read full events"
            )
        if rec.kind != "esd":
            raise NotInCatalogError(
                f"file id {fid} ({rec.path}) is a {rec.kind!r} file, not an ESD file"
            )
        if rec.meta.get("foreign"):
            raise NotInCatalogError(
                f"file id {fid} ({rec.path}) was written by other software: it has no "
                "jaas ESD/RTRAW paths; fetch_events (res.events()) reads its events "
                "through its schema mapping"
            )
        rtraw = None
        if with_hits:
            parents = [p for p in catalog.parents(int(fid)) if p.kind == "rtraw"]
            if not parents:
                raise NotInCatalogError(
                    f"file id {fid} ({rec.path}) has no RTRAW parent in the catalog, so its "
                    "hits are not available (its ESD quantities are: pass with_hits=False); "
                    "or register the RTRAW file and the ESD with parents=[rtraw id]"
                )
            rtraw = readable_copy(catalog, parents[0])
        out[int(fid)] = (readable_copy(catalog, rec), rtraw)
    return out


def _local(url: str) -> str | None:
    if url.startswith("file://"):
        return url[len("file://") :]
    return None if "://" in url else url


def readable_copy(catalog: Catalog, rec: FileRecord) -> str:
    """The primary path of ``rec`` when it is there, else its best verified replica.

    Raises:
        NotInCatalogError: the primary copy is missing and no verified replica is usable.
    """
    primary = _local(rec.path)
    if primary is None or os.path.isfile(primary):
        return rec.path
    replicas = catalog.replicas(rec.id)
    verified = [r for r in replicas if r.verified is not None]
    verified.sort(key=lambda r: r.verified or 0, reverse=True)  # newest verification first
    for r in verified:
        local = _local(r.url)
        if local is not None and os.path.isfile(local):
            return local
    for r in verified:
        if _local(r.url) is None:
            return r.url
    unverified = len(replicas) - len(verified)
    hint = (
        f"; {unverified} replica(s) are not verified (verify them before use)"
        if unverified
        else "; no replica is known"
    )
    raise NotInCatalogError(
        f"file id {rec.id}: the primary copy {rec.path} is missing and no verified replica "
        f"can be read{hint}"
    )


def fetch_events(
    pairs: Iterable[tuple[int, int]] | npt.ArrayLike | pd.DataFrame | pa.Table,
    *,
    catalog: Catalog | None = None,
    paths: Mapping[int, PathPair] | None = None,
    with_hits: bool = True,
    columns: list[str] | None = None,
) -> FetchedEvents:
    """Read the full events of (file_id, entry) pairs: ESD rows and RTRAW hits.

    Pairs are grouped by file; each ESD and RTRAW file is opened once and only the baskets
    holding the requested entries are read. The result keeps the caller's order.

    Args:
        pairs: (file_id, entry) pairs, an (n, 2) array, or a table with ``file_id`` and
            ``entry`` columns (e.g. candidates selected on the index).
        catalog: resolves file ids to ESD paths and ESD -> RTRAW parents.
        paths: explicit {file_id: (esd_path, rtraw_path or None)}; used before the catalog.
        with_hits: also read the hits from the RTRAW files.
        columns: ESD columns to return (default all).

    Raises:
        NotInCatalogError: a file id is in neither ``paths`` nor the catalog.
        FormatError: an entry is out of range or the ESD and RTRAW events disagree
            (file id, path and entry named).

    Example:
        >>> cands = engine.ibd(...).candidates                      # doctest: +SKIP
        >>> ev = fetch_events(cands[["file_id", "entry"]], catalog=Catalog.default())
        >>> ev.esd[["t", "E"]], ev.hits.nhits
    """
    want = _pairs_array(pairs)
    file_ids = np.unique(want[:, 0]).tolist()
    known: dict[int, PathPair] = {int(k): v for k, v in (paths or {}).items()}
    unknown = [f for f in file_ids if f not in known]
    foreign: dict[int, tuple[str, SchemaMapping]] = {}
    if unknown:
        if catalog is None:
            raise NotInCatalogError(
                f"file ids {unknown} are not in the given paths and no catalog was given"
            )
        foreign = _foreign_files(unknown, catalog)
        rest = [f for f in unknown if f not in foreign]
        known.update(resolve_paths(rest, catalog, with_hits=with_hits))
    if not foreign:
        return _fetch_jaas(want, known, with_hits, columns)
    mine = np.isin(want[:, 0], list(foreign))
    if with_hits and not mine.all():
        some = sorted(foreign)[:3]
        raise NotInCatalogError(
            f"file ids {some} were written by other software and have no hits, while the "
            "other files do: fetch them with with_hits=False (or the two kinds apart)"
        )
    parts = [_fetch_foreign(want[mine], foreign, columns)]
    parts[0].index = pd.Index(np.flatnonzero(mine))
    if not mine.all():
        parts.append(_fetch_jaas(want[~mine], known, False, columns).esd)
        parts[1].index = pd.Index(np.flatnonzero(~mine))
    frame = pd.concat(parts).sort_index().reset_index(drop=True)
    return FetchedEvents(esd=frame, hits=None)


def _foreign_files(file_ids: list[int], catalog: Catalog) -> dict[int, tuple[str, SchemaMapping]]:
    """{file_id: (readable path, schema mapping)} of the ids written by other software."""
    from jaas.store.mapping import SchemaMapping

    out: dict[int, tuple[str, SchemaMapping]] = {}
    for fid in file_ids:
        rec = catalog.get_file(int(fid))
        if rec.kind != "esd" or not rec.meta.get("foreign"):
            continue
        try:
            mapping = SchemaMapping.model_validate(rec.meta.get("schema") or {})
        except ValueError as exc:
            first = str(exc).splitlines()[0]
            raise NotInCatalogError(
                f"file id {fid} ({rec.path}) was written by other software, but the schema "
                f"mapping stored with it cannot be read ({first}); ingest it again with "
                "`jaas store add --schema`"
            ) from exc
        out[int(fid)] = (readable_copy(catalog, rec), mapping)
    return out


def _fetch_foreign(
    want: npt.NDArray[np.int64],
    files: Mapping[int, tuple[str, SchemaMapping]],
    columns: list[str] | None,
) -> pd.DataFrame:
    """The mapped columns of foreign files at the requested entries (in ``want``'s order)."""
    from jaas.store.foreign import read_mapped

    parts = []
    for fid in np.unique(want[:, 0]).tolist():
        rows = np.flatnonzero(want[:, 0] == fid)
        entries = want[rows, 1]
        path, mapping = files[fid]
        cols = read_mapped(path, mapping)
        names = [c for c in cols if c != "entry"] if columns is None else list(columns)
        missing = [c for c in names if c not in cols]
        if missing:
            raise FormatError(
                f"file id {fid}: no column {missing} through its schema mapping "
                f"(it has {[c for c in cols if c != 'entry']})",
                path=path,
            )
        n = len(cols["t"])
        bad = entries[(entries < 0) | (entries >= n)]
        if len(bad):
            raise FormatError(
                f"file id {fid}: entry {int(bad[0])} out of range (tree {mapping.tree!r} "
                f"has {n} entries)",
                path=path,
            )
        data = {"file_id": np.full(len(rows), fid, np.int64), "entry": entries}
        data |= {c: np.asarray(cols[c])[entries] for c in names}
        parts.append(pd.DataFrame(data, index=rows))
    return pd.concat(parts).sort_index().reset_index(drop=True)


def _fetch_jaas(
    want: npt.NDArray[np.int64],
    known: Mapping[int, PathPair],
    with_hits: bool,
    columns: list[str] | None,
) -> FetchedEvents:
    """ESD rows (and RTRAW hits) of jaas files at the requested pairs, in their order."""
    names = list(ESD_COLUMNS) if columns is None else list(columns)
    read_names = names if "event_id" in names else [*names, "event_id"]
    file_ids = np.unique(want[:, 0]).tolist()
    n = len(want)
    esd_cols: dict[str, np.ndarray] = {
        c: np.zeros(n, dtype=ESD_COLUMNS[c]) for c in read_names if c in ESD_COLUMNS
    }
    hit_parts: list[HitEvents] = []
    hit_rows: list[np.ndarray] = []
    for fid in file_ids:
        rows = np.flatnonzero(want[:, 0] == fid)
        rows = rows[np.argsort(want[rows, 1], kind="stable")]  # in file order: no reordering
        entries = want[rows, 1]
        esd_path, rtraw_path = known[fid]
        esd = _read(read_esd, esd_path, entries, fid, columns=read_names)
        for c in esd_cols:
            esd_cols[c][rows] = esd[c]
        if not with_hits:
            continue
        if rtraw_path is None:
            raise NotInCatalogError(f"file id {fid} ({esd_path}): no RTRAW file to read hits from")
        hits = _read(read_rtraw, rtraw_path, entries, fid)
        bad = np.flatnonzero(hits.event_id != esd["event_id"])
        if len(bad):
            k = int(bad[0])
            raise FormatError(
                f"file id {fid}: ESD entry {int(entries[k])} has event_id "
                f"{int(esd['event_id'][k])} but RTRAW {rtraw_path} has {int(hits.event_id[k])}: "
                "the ESD was not made from this RTRAW file",
                path=esd_path,
            )
        hit_parts.append(hits)
        hit_rows.append(rows)

    frame = pd.DataFrame(
        {"file_id": want[:, 0], "entry": want[:, 1], **{c: esd_cols[c] for c in names}}
    )
    hits_out = None
    if with_hits:
        joined = HitEvents.concatenate(hit_parts)
        order = np.empty(n, dtype=np.int64)
        order[np.concatenate(hit_rows) if hit_rows else np.zeros(0, np.int64)] = np.arange(n)
        hits_out = take_hits(joined, order)
    return FetchedEvents(esd=frame, hits=hits_out)


def _read(
    reader: Any, path: str | os.PathLike[str], entries: np.ndarray, fid: int, **kw: Any
) -> Any:
    try:
        return reader(path, entries, **kw)
    except FileNotFoundError as exc:
        raise FormatError(f"file id {fid}: file not found", path=path) from exc
    except FormatError as exc:
        raise FormatError(f"file id {fid}: {exc.reason}", path=exc.path or path) from exc
