"""The event catalog: runs, files with checksums, parentage, datasets (SQLite or PostgreSQL)."""

from __future__ import annotations

import datetime as dt
import difflib
import os
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Engine, create_engine, event, func, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool

from jaas._io import adler32_file
from jaas.errors import CatalogError, ConfigError, NotInCatalogError
from jaas.settings import settings
from jaas.store.models import (
    FILE_KINDS,
    FILE_STATUSES,
    SCHEMA_VERSION,
    Base,
    Dataset,
    DatasetFile,
    File,
    Parentage,
    Replica,
    Run,
    SchemaVersion,
)
from jaas.store.records import (
    DatasetRecord,
    FileRecord,
    ReplicaRecord,
    RunRecord,
    VerifyProblem,
)

__all__ = ["Catalog", "default_url", "normalize_path"]

_RETRIES = 5
_SCHEMA_LOCK = 0x6A616173  # "jaas": PostgreSQL advisory lock key held while creating tables
# Files by run, sequence number, id; files without run or seq last on every backend.
_FILE_ORDER = (File.run.asc().nulls_last(), File.seq.asc().nulls_last(), File.id)
_T = TypeVar("_T")


def _is_url(path: str) -> bool:
    return "://" in path


def normalize_path(path: str | os.PathLike[str]) -> str:
    """The catalog's key for a file: an absolute local path (symlinks kept) or a URL as is."""
    text = os.fspath(path)
    if _is_url(text) and not text.startswith("file://"):
        return text
    if text.startswith("file://"):
        text = text[len("file://") :]
    return os.path.abspath(os.path.expanduser(text))


def _aware(value: dt.datetime) -> dt.datetime:
    # SQLite returns naive datetimes; everything is stored in UTC.
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


def _run_record(row: Run) -> RunRecord:
    return RunRecord(row.run, row.start_ns, row.end_ns, row.status, dict(row.meta or {}))


def _file_record(row: File, parent_ids: Iterable[int] = ()) -> FileRecord:
    return FileRecord(
        id=row.id,
        path=row.path,
        kind=row.kind,
        run=row.run,
        seq=row.seq,
        size=row.size,
        adler32=row.adler32,
        n_events=row.n_events,
        t_min=row.t_min,
        t_max=row.t_max,
        software_version=row.software_version,
        created=_aware(row.created),
        status=row.status,
        status_reason=row.status_reason,
        meta=dict(row.meta or {}),
        parent_ids=tuple(sorted(parent_ids)),
    )


class Catalog:
    """The event catalog database.

    Args:
        url: a SQLAlchemy URL (``sqlite:///catalog.db``, ``postgresql+psycopg://user@host/db``)
            or a plain path, which means a SQLite file. Tables are created if missing.

    Example:
        >>> cat = Catalog(tmp_path / "catalog.db")             # doctest: +SKIP
        >>> raw = cat.add_file("run1234.000.raw", kind="raw", run=1234, seq=0)
        >>> esd = cat.add_file("run1234.000.esd.root", kind="esd", parents=[raw.id])
        >>> [f.kind for f in cat.lineage(esd.id)]
        ['raw']
    """

    def __init__(self, url: str | os.PathLike[str]) -> None:
        text = os.fspath(url)
        if "://" not in text:
            path = Path(text).expanduser()
            path.parent.mkdir(parents=True, exist_ok=True)
            text = f"sqlite:///{path.absolute()}"
        self.url = text
        self.engine = _make_engine(text)
        self._session = sessionmaker(self.engine, expire_on_commit=False)
        self._create_schema()

    @classmethod
    def default(cls) -> Catalog:
        """The user's catalog: ``$JAAS_CATALOG`` (URL or path), else a SQLite file at
        ``$XDG_DATA_HOME/jaas/catalog.db`` (``~/.local/share/jaas/catalog.db``)."""
        return cls(default_url())

    def close(self) -> None:
        """Release the database connections."""
        self.engine.dispose()

    def __enter__(self) -> Catalog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Catalog({make_url(self.url).render_as_string(hide_password=True)!r})"

    @property
    def data_dir(self) -> Path:
        """Where jaas writes files it creates for the catalog: ``$JAAS_DATA_DIR``, else
        ``data/`` beside a SQLite catalog file, else ``~/.local/share/jaas/data``."""
        env = settings().data_dir
        if env:
            return env
        url = make_url(self.url)
        if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
            return Path(str(url.database)).parent / "data"
        return _data_home() / "data"

    # ----------------------------------------------------------------- sessions

    @contextmanager
    def _tx(self) -> Iterator[Session]:
        with self._session() as session, session.begin():
            yield session

    def _retry(self, attempt: Any) -> Any:
        """Run ``attempt()`` (one transaction); retry when a concurrent writer won a race."""
        for i in range(_RETRIES):
            try:
                return attempt()
            except IntegrityError:
                if i == _RETRIES - 1:
                    raise
            except OperationalError as exc:  # SQLite "database is locked" under contention
                if "locked" not in str(exc) or i == _RETRIES - 1:
                    raise
            time.sleep(0.01 * (i + 1))
        raise AssertionError("unreachable")

    def _create_schema(self) -> None:
        def attempt() -> None:
            with self.engine.begin() as conn:
                if conn.dialect.name == "postgresql":  # serialise concurrent creators
                    conn.execute(select(func.pg_advisory_xact_lock(_SCHEMA_LOCK)))
                Base.metadata.create_all(conn)
            with self._tx() as s:
                found = s.scalars(select(SchemaVersion.version)).all()
                if not found:
                    s.add(SchemaVersion(version=SCHEMA_VERSION))
                elif max(found) > SCHEMA_VERSION:
                    raise CatalogError(
                        f"{self!r}: catalog schema version {max(found)} is newer than this "
                        f"jaas understands ({SCHEMA_VERSION}); upgrade jaas"
                    )

        for i in range(_RETRIES):  # two processes creating the same new catalog at once
            try:
                attempt()
                return
            except DBAPIError:  # duplicate table/type or row from a concurrent creator
                if i == _RETRIES - 1:
                    raise
                time.sleep(0.05 * (i + 1))

    # --------------------------------------------------------------------- runs

    def add_run(
        self,
        run: int,
        *,
        start: int | None = None,
        end: int | None = None,
        meta: dict[str, Any] | None = None,
    ) -> RunRecord:
        """Create a run or update the fields given (``meta`` is merged); idempotent.

        Args:
            run: run number.
            start, end: first/last trigger time, ns since the Unix epoch.
            meta: JSON-serialisable metadata merged into the run's.
        """

        def attempt() -> RunRecord:
            with self._tx() as s:
                row = s.get(Run, run)
                if row is None:
                    row = Run(run=run, start_ns=start, end_ns=end, status="open", meta=meta or {})
                    s.add(row)
                else:
                    if start is not None:
                        row.start_ns = start
                    if end is not None:
                        row.end_ns = end
                    if meta:
                        row.meta = {**(row.meta or {}), **meta}
                s.flush()
                return _run_record(row)

        result: RunRecord = self._retry(attempt)
        return result

    def runs(self) -> list[RunRecord]:
        """All runs, by run number."""
        with self._tx() as s:
            return [_run_record(r) for r in s.scalars(select(Run).order_by(Run.run))]

    def get_run(self, run: int) -> RunRecord:
        """One run; NotInCatalogError when unknown."""
        with self._tx() as s:
            row = s.get(Run, run)
            if row is None:
                raise NotInCatalogError(f"run {run} is not in {self!r}")
            return _run_record(row)

    # -------------------------------------------------------------------- files

    def add_file(
        self,
        path: str | os.PathLike[str],
        *,
        kind: str,
        run: int | None = None,
        seq: int | None = None,
        parents: Sequence[int] = (),
        software_version: str | None = None,
        n_events: int | None = None,
        t_min: int | None = None,
        t_max: int | None = None,
        checksum: str | None = None,
        size: int | None = None,
        meta: dict[str, Any] | None = None,
    ) -> FileRecord:
        """Register a file; idempotent for the same path and checksum.

        Size and adler32 are computed from the local file unless given (a URL needs
        ``checksum``). Registering a path again with a different checksum raises
        CatalogError: a catalogued file never changes silently. Two processes registering
        the same file at once end with one row.

        Args:
            path: local path (stored absolute) or URL.
            kind: one of raw, rtraw, esd, index, truth, meta.
            run, seq: run number (created if new) and file sequence number in the run.
            parents: catalog ids of the files this one was made from.
            software_version: version of the software that wrote the file.
            n_events, t_min, t_max: entries and time range (ns since the Unix epoch).
            checksum: adler32 as 8 hex digits, when already known.
            size: size in bytes, when already known.
            meta: JSON-serialisable metadata.

        Example:
            >>> rec = catalog.add_file("run7.000.raw", kind="raw", run=7, seq=0)  # doctest: +SKIP
        """
        if kind not in FILE_KINDS:
            raise ConfigError(f"unknown file kind {kind!r}; expected one of {list(FILE_KINDS)}")
        key = normalize_path(path)
        if checksum is not None:
            checksum = _check_adler32(checksum, key)
        if not _is_url(key):
            if not os.path.isfile(key):
                raise CatalogError(f"{key}: no such file; cannot register it")
            if size is None:
                size = os.path.getsize(key)
            if checksum is None:
                checksum = adler32_file(key)
        elif checksum is None:
            raise CatalogError(f"{key}: a remote file needs its adler32 checksum to be registered")
        parent_ids = sorted(set(parents))

        def attempt() -> FileRecord:
            with self._tx() as s:
                existing = s.scalars(select(File).where(File.path == key)).one_or_none()
                if existing is not None:
                    return self._same_file(s, existing, checksum)
                if parent_ids:
                    known = set(s.scalars(select(File.id).where(File.id.in_(parent_ids))))
                    missing = [p for p in parent_ids if p not in known]
                    if missing:
                        raise NotInCatalogError(
                            f"{key}: parent file ids {missing} are not in the catalog"
                        )
                if run is not None and s.get(Run, run) is None:
                    s.add(Run(run=run, status="open", meta={}))
                    s.flush()
                row = File(
                    path=key,
                    kind=kind,
                    run=run,
                    seq=seq,
                    size=size,
                    adler32=checksum,
                    n_events=n_events,
                    t_min=t_min,
                    t_max=t_max,
                    software_version=software_version,
                    status="good",
                    status_reason="",
                    meta=meta or {},
                )
                s.add(row)
                s.flush()
                s.add_all(Parentage(child_id=row.id, parent_id=p) for p in parent_ids)
                return _file_record(row, parent_ids)

        result: FileRecord = self._retry(attempt)
        return result

    def _same_file(self, s: Session, existing: File, checksum: str | None) -> FileRecord:
        if existing.adler32 != checksum:
            raise CatalogError(
                f"{existing.path} is already catalogued as file {existing.id} with adler32 "
                f"{existing.adler32}, but it now has adler32 {checksum}: a catalogued file "
                "must not change; write the new content under a new name, or mark the old "
                f"one bad (jaas store status {existing.id} bad --reason ...)"
            )
        return _file_record(existing, self._parent_ids(s, [existing.id])[existing.id])

    def get_file(self, file: int | str | os.PathLike[str]) -> FileRecord:
        """A file by catalog id or path; NotInCatalogError names the closest paths."""
        with self._tx() as s:
            return _file_record(*self._get_row(s, file))

    def _get_row(self, s: Session, file: int | str | os.PathLike[str]) -> tuple[File, list[int]]:
        if isinstance(file, int):
            row = s.get(File, file)
            if row is None:
                top = s.scalars(select(File.id).order_by(File.id.desc()).limit(1)).first()
                hint = f" (ids go up to {top})" if top is not None else " (the catalog is empty)"
                raise NotInCatalogError(f"file id {file} is not in {self!r}{hint}")
        else:
            key = normalize_path(file)
            row = s.scalars(select(File).where(File.path == key)).one_or_none()
            if row is None:
                raise NotInCatalogError(f"{key} is not in {self!r}{self._did_you_mean(s, key)}")
        return row, self._parent_ids(s, [row.id])[row.id]

    @staticmethod
    def _did_you_mean(s: Session, key: str) -> str:
        name = os.path.basename(key)
        folder = os.path.dirname(key)
        candidates = set(
            s.scalars(select(File.path).where(File.path.endswith(name, autoescape=True)).limit(50))
        )
        candidates.update(
            s.scalars(
                select(File.path).where(File.path.startswith(folder, autoescape=True)).limit(500)
            )
        )
        close = difflib.get_close_matches(key, sorted(candidates), n=3, cutoff=0.6)
        return f"; did you mean {' or '.join(map(repr, close))}?" if close else ""

    @staticmethod
    def _parent_ids(s: Session, ids: Sequence[int]) -> dict[int, list[int]]:
        out: dict[int, list[int]] = {i: [] for i in ids}
        for chunk in _chunks(list(ids), 500):
            for child, parent in s.execute(
                select(Parentage.child_id, Parentage.parent_id).where(Parentage.child_id.in_(chunk))
            ):
                out[child].append(parent)
        return out

    def _records(self, s: Session, rows: Sequence[File]) -> list[FileRecord]:
        parents = self._parent_ids(s, [r.id for r in rows])
        return [_file_record(r, parents[r.id]) for r in rows]

    def files(
        self,
        *,
        kind: str | None = None,
        run: int | None = None,
        dataset: str | None = None,
        status: str | None = None,
    ) -> list[FileRecord]:
        """Files matching all the filters given, ordered by run, sequence number, id.

        ``dataset`` means the latest version of that dataset.
        """
        query = select(File)
        if kind is not None:
            query = query.where(File.kind == kind)
        if run is not None:
            query = query.where(File.run == run)
        if status is not None:
            query = query.where(File.status == status)
        with self._tx() as s:
            if dataset is not None:
                ds = self._dataset_row(s, dataset, None)
                query = query.join(DatasetFile, DatasetFile.file_id == File.id).where(
                    DatasetFile.dataset_id == ds.id
                )
            query = query.order_by(
                File.run.asc().nulls_last(), File.seq.asc().nulls_last(), File.id
            )
            return self._records(s, s.scalars(query).all())

    def parents(self, file_id: int) -> list[FileRecord]:
        """The files ``file_id`` was made from, by id."""
        with self._tx() as s:
            self._get_row(s, file_id)
            query = (
                select(File)
                .join(Parentage, Parentage.parent_id == File.id)
                .where(Parentage.child_id == file_id)
                .order_by(File.id)
            )
            return self._records(s, s.scalars(query).all())

    def children(self, file_id: int) -> list[FileRecord]:
        """The files made from ``file_id``, by id."""
        with self._tx() as s:
            self._get_row(s, file_id)
            query = (
                select(File)
                .join(Parentage, Parentage.child_id == File.id)
                .where(Parentage.parent_id == file_id)
                .order_by(File.id)
            )
            return self._records(s, s.scalars(query).all())

    def lineage(self, file_id: int) -> list[FileRecord]:
        """All ancestors of ``file_id`` (not itself), nearest generation first.

        For an index file this is ``[esd, rtraw, raw]``.
        """
        with self._tx() as s:
            self._get_row(s, file_id)
            seen = {file_id}
            order: list[int] = []
            frontier = [file_id]
            while frontier:
                parents = self._parent_ids(s, frontier)
                nxt = sorted({p for ps in parents.values() for p in ps} - seen)
                seen.update(nxt)
                order.extend(nxt)
                frontier = nxt
            rows = {r.id: r for r in s.scalars(select(File).where(File.id.in_(order)))}
            return self._records(s, [rows[i] for i in order])

    def set_status(self, file_id: int, status: str, reason: str = "") -> None:
        """Mark a file good, bad or quarantined, with the reason shown to operators."""
        if status not in FILE_STATUSES:
            raise ConfigError(f"unknown status {status!r}; expected one of {list(FILE_STATUSES)}")
        with self._tx() as s:
            row, _ = self._get_row(s, file_id)
            row.status = status
            row.status_reason = reason

    def verify(self, file_ids: Iterable[int] | None = None) -> list[VerifyProblem]:
        """Recompute size and adler32 of local files; return what no longer matches.

        Remote (URL) files are skipped; their replicas are verified by the transfer layer.
        """
        with self._tx() as s:
            if file_ids is None:
                rows = list(s.scalars(select(File).order_by(File.id)))
            else:
                rows = [self._get_row(s, i)[0] for i in file_ids]
            todo = [(r.id, r.path, r.size, r.adler32) for r in rows if not _is_url(r.path)]
        problems: list[VerifyProblem] = []
        for fid, path, size, checksum in todo:
            if not os.path.isfile(path):
                problems.append(VerifyProblem(fid, path, "missing", "a file", "no such file"))
                continue
            actual_size = os.path.getsize(path)
            if size is not None and actual_size != size:
                problems.append(
                    VerifyProblem(fid, path, "size", f"{size} bytes", f"{actual_size} bytes")
                )
            actual = adler32_file(path)
            if checksum is not None and actual != checksum:
                problems.append(VerifyProblem(fid, path, "checksum", checksum, actual))
        return problems

    # ----------------------------------------------------------------- datasets

    def add_to_dataset(
        self,
        name: str,
        file_ids: Iterable[int],
        *,
        version: int = 1,
        description: str = "",
    ) -> DatasetRecord:
        """Add files to a LIVE dataset version (created if missing); idempotent.

        For datasets that grow as keep-up production publishes (``keepup``). Datasets
        made with :meth:`create_dataset` are snapshots: freeze a live dataset for an
        analysis with ``create_dataset(name, version=N, file_ids=...)``.

        Raises:
            NotInCatalogError: a file id is unknown.
        """
        ids = sorted(set(file_ids))
        for attempt in range(20):  # concurrent publishers race to create the version
            try:
                return self._add_to_dataset(name, version, ids, description)
            except IntegrityError:
                pass
            except OperationalError as exc:
                if "locked" not in str(exc):
                    raise
            time.sleep(0.02 * (attempt + 1))
        return self._add_to_dataset(name, version, ids, description)

    def _add_to_dataset(
        self, name: str, version: int, ids: list[int], description: str
    ) -> DatasetRecord:
        with self._tx() as s:
            known = set(s.scalars(select(File.id).where(File.id.in_(ids)))) if ids else set()
            missing = [i for i in ids if i not in known]
            if missing:
                raise NotInCatalogError(
                    f"dataset {name!r} version {version}: file ids {missing[:20]} are not in "
                    f"{self!r}"
                )
            row = s.scalars(
                select(Dataset).where(Dataset.name == name, Dataset.version == version)
            ).one_or_none()
            if row is None:
                row = Dataset(name=name, version=version, description=description)
                s.add(row)
                s.flush()
            have = set(
                s.scalars(select(DatasetFile.file_id).where(DatasetFile.dataset_id == row.id))
            )
            s.add_all(DatasetFile(dataset_id=row.id, file_id=i) for i in ids if i not in have)
        return self.dataset(name, version)

    def create_dataset(
        self,
        name: str,
        *,
        version: int = 1,
        file_ids: Iterable[int] = (),
        description: str = "",
    ) -> DatasetRecord:
        """Create dataset ``name`` version ``version`` with the given files.

        Idempotent when the same version is created again with the same files; a different
        file list for an existing (name, version) raises CatalogError: create a new version.
        """
        ids = sorted(set(file_ids))

        def attempt() -> DatasetRecord:
            with self._tx() as s:
                row = s.scalars(
                    select(Dataset).where(Dataset.name == name, Dataset.version == version)
                ).one_or_none()
                if row is not None:
                    have = self._dataset_ids(s, row.id)
                    if have != ids:
                        added = sorted(set(ids) - set(have))
                        removed = sorted(set(have) - set(ids))
                        raise CatalogError(
                            f"dataset {name!r} version {version} already exists with different "
                            f"files (new: {added[:10]}, absent: {removed[:10]}); a dataset "
                            f"version never changes: create version {version + 1} instead"
                        )
                    return _dataset_record(row, have)
                known: set[int] = set()
                for chunk in _chunks(ids, 500):
                    known.update(s.scalars(select(File.id).where(File.id.in_(chunk))))
                missing = [i for i in ids if i not in known]
                if missing:
                    raise NotInCatalogError(
                        f"dataset {name!r}: file ids {missing[:20]} are not in the catalog"
                    )
                row = Dataset(name=name, version=version, description=description)
                s.add(row)
                s.flush()
                s.add_all(DatasetFile(dataset_id=row.id, file_id=i) for i in ids)
                s.flush()
                return _dataset_record(row, ids)

        result: DatasetRecord = self._retry(attempt)
        return result

    def datasets(self) -> list[DatasetRecord]:
        """All dataset versions, by name then version."""
        with self._tx() as s:
            rows = s.scalars(select(Dataset).order_by(Dataset.name, Dataset.version)).all()
            return [_dataset_record(r, self._dataset_ids(s, r.id)) for r in rows]

    def dataset(self, name: str, version: int | None = None) -> DatasetRecord:
        """One dataset version (the latest by default)."""
        with self._tx() as s:
            row = self._dataset_row(s, name, version)
            return _dataset_record(row, self._dataset_ids(s, row.id))

    def dataset_files(self, name: str, version: int | None = None) -> list[FileRecord]:
        """The files of a dataset version (latest by default), ordered by run, seq, id."""
        with self._tx() as s:
            row = self._dataset_row(s, name, version)
            query = (
                select(File)
                .join(DatasetFile, DatasetFile.file_id == File.id)
                .where(DatasetFile.dataset_id == row.id)
                .order_by(*_FILE_ORDER)
            )
            return self._records(s, s.scalars(query).all())

    def _dataset_row(self, s: Session, name: str, version: int | None) -> Dataset:
        query = select(Dataset).where(Dataset.name == name)
        if version is not None:
            query = query.where(Dataset.version == version)
        row = s.scalars(query.order_by(Dataset.version.desc()).limit(1)).first()
        if row is None:
            names = sorted(set(s.scalars(select(Dataset.name))))
            if name in names:
                versions = list(s.scalars(select(Dataset.version).where(Dataset.name == name)))
                raise NotInCatalogError(
                    f"dataset {name!r} has no version {version} (versions: {sorted(versions)})"
                )
            close = difflib.get_close_matches(name, names, n=3)
            hint = f"; did you mean {' or '.join(map(repr, close))}?" if close else ""
            raise NotInCatalogError(f"dataset {name!r} is not in {self!r}{hint}")
        return row

    @staticmethod
    def _dataset_ids(s: Session, dataset_id: int) -> list[int]:
        return sorted(
            s.scalars(select(DatasetFile.file_id).where(DatasetFile.dataset_id == dataset_id))
        )

    # ----------------------------------------------------------------- replicas

    def add_replica(self, file_id: int, url: str, *, endpoint: str = "") -> ReplicaRecord:
        """Record a copy of a file (idempotent for the same url)."""

        def attempt() -> ReplicaRecord:
            with self._tx() as s:
                self._get_row(s, file_id)
                row = s.scalars(
                    select(Replica).where(Replica.file_id == file_id, Replica.url == url)
                ).one_or_none()
                if row is None:
                    row = Replica(file_id=file_id, url=url, endpoint=endpoint)
                    s.add(row)
                    s.flush()
                return _replica_record(row)

        result: ReplicaRecord = self._retry(attempt)
        return result

    def replicas(self, file_id: int) -> list[ReplicaRecord]:
        """The known copies of a file."""
        with self._tx() as s:
            rows = s.scalars(select(Replica).where(Replica.file_id == file_id).order_by(Replica.id))
            return [_replica_record(r) for r in rows]

    def mark_replica_verified(self, replica_id: int, when: dt.datetime | None = None) -> None:
        """Record that a replica's checksum was verified (now by default)."""
        with self._tx() as s:
            row = s.get(Replica, replica_id)
            if row is None:
                raise NotInCatalogError(f"replica {replica_id} is not in {self!r}")
            row.verified = when or dt.datetime.now(dt.UTC)


def _dataset_record(row: Dataset, ids: Sequence[int]) -> DatasetRecord:
    return DatasetRecord(
        row.id, row.name, row.version, row.description, _aware(row.created), tuple(ids)
    )


def _replica_record(row: Replica) -> ReplicaRecord:
    verified = None if row.verified is None else _aware(row.verified)
    return ReplicaRecord(row.id, row.file_id, row.endpoint, row.url, verified)


def _check_adler32(value: str, path: str) -> str:
    text = value.strip().lower()
    if len(text) != 8 or any(c not in "0123456789abcdef" for c in text):
        raise ConfigError(f"{path}: checksum {value!r} is not an adler32 of 8 hex digits")
    return text


def _chunks(items: list[_T], n: int) -> Iterator[list[_T]]:
    for i in range(0, len(items), n):
        yield items[i : i + n]


def _data_home() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or os.path.join("~", ".local", "share")
    return Path(base).expanduser() / "jaas"


def default_url() -> str:
    """``$JAAS_CATALOG``, else the SQLite file ``$XDG_DATA_HOME/jaas/catalog.db``."""
    return settings().catalog or str(_data_home() / "catalog.db")


def _make_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    memory = parsed.database in (None, "", ":memory:")
    kwargs: dict[str, Any] = {"connect_args": {"timeout": 60, "check_same_thread": False}}
    if memory:
        kwargs["poolclass"] = StaticPool
    engine = create_engine(url, **kwargs)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # SQLAlchemy emits BEGIN itself (below)
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # Take the write lock at BEGIN so that concurrent writers wait (busy timeout)
        # instead of failing when a read transaction tries to become a write one.
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine
