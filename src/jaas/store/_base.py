"""The catalog's shared session and helpers, under the concerns (files, datasets, replicas)."""

from __future__ import annotations

import datetime as dt
import difflib
import os
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from jaas import db
from jaas._closing import Closing
from jaas.errors import ConfigError, NotInCatalogError
from jaas.settings import settings
from jaas.store.models import Base, Dataset, DatasetFile, File, Parentage, Replica, Run
from jaas.store.records import DatasetRecord, FileRecord, ReplicaRecord, RunRecord

__all__ = ["FILE_ORDER", "CatalogBase", "default_url", "normalize_path"]

# Files by run, sequence number, id; files without run or seq last on every backend.
FILE_ORDER = (File.run.asc().nulls_last(), File.seq.asc().nulls_last(), File.id)
_T = TypeVar("_T")
_Row = TypeVar("_Row", bound=Base)


def is_url(path: str) -> bool:
    return "://" in path


def normalize_path(path: str | os.PathLike[str]) -> str:
    """The catalog's key for a file: an absolute local path (symlinks kept) or a URL as is."""
    text = os.fspath(path)
    if is_url(text) and not text.startswith("file://"):
        return text
    if text.startswith("file://"):
        text = text[len("file://") :]
    return os.path.abspath(os.path.expanduser(text))


def aware(value: dt.datetime) -> dt.datetime:
    # SQLite returns naive datetimes; everything is stored in UTC.
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


def get_or_add(s: Session, model: type[_Row], key: dict[str, Any], **extra: Any) -> _Row:
    """The row of ``model`` whose columns equal ``key``; added (with ``extra``) if none."""
    row = s.scalars(select(model).filter_by(**key)).one_or_none()
    if row is None:
        row = model(**key, **extra)
        s.add(row)
        s.flush()
    return row


def run_record(row: Run) -> RunRecord:
    return RunRecord(row.run, row.start_ns, row.end_ns, row.status, dict(row.meta or {}))


def file_record(row: File, parent_ids: Iterable[int] = ()) -> FileRecord:
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
        created=aware(row.created),
        status=row.status,
        status_reason=row.status_reason,
        meta=dict(row.meta or {}),
        parent_ids=tuple(sorted(parent_ids)),
    )


def dataset_record(row: Dataset, ids: Sequence[int]) -> DatasetRecord:
    return DatasetRecord(
        row.id, row.name, row.version, row.description, aware(row.created), tuple(ids)
    )


def replica_record(row: Replica) -> ReplicaRecord:
    verified = None if row.verified is None else aware(row.verified)
    return ReplicaRecord(row.id, row.file_id, row.endpoint, row.url, verified)


def check_adler32(value: str, path: str) -> str:
    text = value.strip().lower()
    if len(text) != 8 or any(c not in "0123456789abcdef" for c in text):
        raise ConfigError(f"{path}: checksum {value!r} is not an adler32 of 8 hex digits")
    return text


def chunks(items: list[_T], n: int) -> Iterator[list[_T]]:
    for i in range(0, len(items), n):
        yield items[i : i + n]


def data_home() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or os.path.join("~", ".local", "share")
    return Path(base).expanduser() / "jaas"


def default_url() -> str:
    """``$JAAS_CATALOG``, else the SQLite file ``$XDG_DATA_HOME/jaas/catalog.db``."""
    return settings().catalog or str(data_home() / "catalog.db")


class CatalogBase(Closing):
    """The database, its sessions and the lookups every concern of the catalog shares."""

    def __init__(self, url: str | os.PathLike[str], *, readonly: bool = False) -> None:
        self.url = db.database_url(url)
        self.readonly = readonly
        self.engine = db.make_engine(self.url, readonly=readonly)
        try:
            db.ensure_schema(self.engine, readonly=readonly)
        except BaseException:
            self.engine.dispose()
            raise
        self._session = sessionmaker(self.engine, expire_on_commit=False)

    def close(self) -> None:
        """Release the database connections."""
        self.engine.dispose()

    def __repr__(self) -> str:
        return f"Catalog({make_url(self.url).render_as_string(hide_password=True)!r})"

    @property
    def data_dir(self) -> Path:
        """Where jaas writes files it creates for the catalog: ``$JAAS_DATA_DIR``, else
        ``data/`` beside a SQLite catalog file, else ``~/.local/share/jaas/data``."""
        env = settings().data_dir
        if env:
            return Path(env).expanduser()
        url = make_url(self.url)
        if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
            return Path(str(url.database)).parent / "data"
        return data_home() / "data"

    # ----------------------------------------------------------------- sessions

    @contextmanager
    def _tx(self) -> Iterator[Session]:
        with self._session() as session, session.begin():
            yield session

    def _retry(self, attempt: Any) -> Any:
        """Run ``attempt()`` (one transaction); retry when a concurrent writer won a race."""
        return db.retry(attempt, races=True)

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
        for chunk in chunks(list(ids), 500):
            for child, parent in s.execute(
                select(Parentage.child_id, Parentage.parent_id).where(Parentage.child_id.in_(chunk))
            ):
                out[child].append(parent)
        return out

    def _records(self, s: Session, rows: Sequence[File]) -> list[FileRecord]:
        parents = self._parent_ids(s, [r.id for r in rows])
        return [file_record(r, parents[r.id]) for r in rows]

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
