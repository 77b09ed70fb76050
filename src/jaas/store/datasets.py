"""Catalog concern: datasets (named, versioned sets of files; live and frozen versions)."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable

from sqlalchemy import select

from jaas import db
from jaas.errors import CatalogError, ConfigError, NotInCatalogError
from jaas.store._base import FILE_ORDER, CatalogBase, chunks, dataset_record, get_or_add
from jaas.store.models import Dataset, DatasetFile, File
from jaas.store.records import DatasetRecord, FileRecord

__all__ = ["Datasets", "check_dataset_name"]


_MAX_NAME = 200  # datasets.name is VARCHAR(200)


def check_dataset_name(name: str) -> str:
    """``name`` if it can name a dataset: not empty, one line, no control characters.

    Raises:
        ConfigError: the name is empty, blank, too long or has a newline/control character.
    """
    if not isinstance(name, str) or not name.strip():
        raise ConfigError("a dataset name must not be empty")
    bad = next((c for c in name if unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp")), None)
    if bad is not None:
        raise ConfigError(
            f"dataset name {name!r} contains the control character {bad!r}; use one line of "
            "printable text"
        )
    if name != name.strip():
        raise ConfigError(f"dataset name {name!r} starts or ends with blanks")
    if len(name) > _MAX_NAME:
        raise ConfigError(f"dataset name is {len(name)} characters long; at most {_MAX_NAME}")
    return name


class Datasets(CatalogBase):
    """Datasets of the catalog (mixed into :class:`jaas.store.Catalog`)."""

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
        name = check_dataset_name(name)
        ids = sorted(set(file_ids))
        # concurrent publishers race to create the version
        result: DatasetRecord = db.retry(
            lambda: self._add_to_dataset(name, version, ids, description),
            attempts=21,
            races=True,
            delay=0.02,
        )
        return result

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
            row = get_or_add(
                s, Dataset, {"name": name, "version": version}, description=description
            )
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
        name = check_dataset_name(name)
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
                    return dataset_record(row, have)
                known: set[int] = set()
                for chunk in chunks(ids, 500):
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
                return dataset_record(row, ids)

        result: DatasetRecord = self._retry(attempt)
        return result

    def datasets(self) -> list[DatasetRecord]:
        """All dataset versions, by name then version."""
        with self._tx() as s:
            rows = s.scalars(select(Dataset).order_by(Dataset.name, Dataset.version)).all()
            return [dataset_record(r, self._dataset_ids(s, r.id)) for r in rows]

    def dataset(self, name: str, version: int | None = None) -> DatasetRecord:
        """One dataset version (the latest by default)."""
        with self._tx() as s:
            row = self._dataset_row(s, name, version)
            return dataset_record(row, self._dataset_ids(s, row.id))

    def dataset_files(self, name: str, version: int | None = None) -> list[FileRecord]:
        """The files of a dataset version (latest by default), ordered by run, seq, id."""
        with self._tx() as s:
            row = self._dataset_row(s, name, version)
            query = (
                select(File)
                .join(DatasetFile, DatasetFile.file_id == File.id)
                .where(DatasetFile.dataset_id == row.id)
                .order_by(*FILE_ORDER)
            )
            return self._records(s, s.scalars(query).all())


# END
