"""Catalog concern: runs and files (registration, lookup, lineage, status, verification)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from jaas._io import adler32_file
from jaas.errors import CatalogError, ConfigError, NotInCatalogError
from jaas.store._base import (
    CatalogBase,
    aware,
    check_adler32,
    file_record,
    is_url,
    normalize_path,
    run_record,
)
from jaas.store.models import (
    FILE_KINDS,
    FILE_STATUSES,
    CatalogAudit,
    DatasetFile,
    File,
    Parentage,
    Replica,
    Run,
)
from jaas.store.records import FileRecord, RunRecord, VerifyProblem
from jaas.store.verify import ExpectedFile, check_files

__all__ = ["RunsAndFiles"]


class RunsAndFiles(CatalogBase):
    """Runs and files of the catalog (mixed into :class:`jaas.store.Catalog`)."""

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
                return run_record(row)

        result: RunRecord = self._retry(attempt)
        return result

    def runs(self) -> list[RunRecord]:
        """All runs, by run number."""
        with self._tx() as s:
            return [run_record(r) for r in s.scalars(select(Run).order_by(Run.run))]

    def get_run(self, run: int) -> RunRecord:
        """One run; NotInCatalogError when unknown."""
        with self._tx() as s:
            row = s.get(Run, run)
            if row is None:
                raise NotInCatalogError(f"run {run} is not in {self!r}")
            return run_record(row)

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
        size, checksum = _local_sums(key, size, checksum)
        parent_ids = sorted(set(parents))

        def attempt() -> FileRecord:
            with self._tx() as s:
                existing = s.scalars(select(File).where(File.path == key)).one_or_none()
                if existing is not None:
                    return self._same_file(s, existing, checksum)
                if parent_ids:
                    self._check_parents(s, key, parent_ids)
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
                return file_record(row, parent_ids)

        result: FileRecord = self._retry(attempt)
        return result

    def _same_file(self, s: Session, existing: File, checksum: str | None) -> FileRecord:
        if existing.adler32 != checksum:
            raise CatalogError(
                f"{existing.path} is already catalogued as file {existing.id} with adler32 "
                f"{existing.adler32}, but it now has adler32 {checksum}: a catalogued file "
                "must not change; write the new content under a new name, mark the old "
                f"one bad (jaas store status {existing.id} bad --reason ...), or record a "
                "rebuilt product with Catalog.replace_file"
            )
        return file_record(existing, self._parent_ids(s, [existing.id])[existing.id])

    def replace_file(
        self,
        path: str | os.PathLike[str],
        *,
        who: str,
        reason: str,
        parents: Sequence[int] | None = None,
        software_version: str | None = None,
        n_events: int | None = None,
        t_min: int | None = None,
        t_max: int | None = None,
        checksum: str | None = None,
        size: int | None = None,
        meta: dict[str, Any] | None = None,
    ) -> FileRecord:
        """Record new bytes of a catalogued product rebuilt at the same path.

        For a product made again on purpose (a new calibration, a keep-up reset). The row
        keeps its id, so its parents (unless ``parents`` is given), children, dataset
        memberships and status history stay; size, checksum and the fields given are
        replaced; its replicas hold the old bytes and lose their verification time; old
        and new size/adler32 go to the catalog audit (:meth:`audit_log`). Idempotent:
        the same bytes again change nothing and write no audit row.

        Args:
            path: the catalogued local path or URL.
            who: the operator or process (written to the audit).
            reason: why the product was rebuilt (written to the audit).
            parents: new parent ids, when the product was made from other files.
            software_version, n_events, t_min, t_max, meta: the new product's fields.
            checksum, size: adler32 and size, when already known (required for a URL).

        Raises:
            NotInCatalogError: the path (or a parent id) is not catalogued.
        """
        key = normalize_path(path)
        size, checksum = _local_sums(key, size, checksum)
        parent_ids = None if parents is None else sorted(set(parents))

        def attempt() -> FileRecord:
            with self._tx() as s:
                row, old_parents = self._get_row(s, key)
                if row.adler32 == checksum and (row.size == size or size is None):
                    return file_record(row, old_parents)
                if parent_ids is not None:
                    self._check_parents(s, key, parent_ids)
                s.add(
                    CatalogAudit(
                        who=who,
                        action="replace",
                        file_id=row.id,
                        path=row.path,
                        old_size=row.size,
                        new_size=size,
                        old_adler32=row.adler32,
                        new_adler32=checksum,
                        note=reason,
                    )
                )
                row.size, row.adler32 = size, checksum
                for name, value in (
                    ("software_version", software_version),
                    ("n_events", n_events),
                    ("t_min", t_min),
                    ("t_max", t_max),
                    ("meta", meta),
                ):
                    if value is not None:
                        setattr(row, name, value)
                row.status, row.status_reason = "good", ""
                for replica in s.scalars(select(Replica).where(Replica.file_id == row.id)):
                    replica.verified = None
                if parent_ids is not None and parent_ids != old_parents:
                    s.execute(delete(Parentage).where(Parentage.child_id == row.id))
                    s.add_all(Parentage(child_id=row.id, parent_id=p) for p in parent_ids)
                s.flush()
                return file_record(row, old_parents if parent_ids is None else parent_ids)

        result: FileRecord = self._retry(attempt)
        return result

    def audit_log(self, file: int | str | os.PathLike[str] | None = None) -> list[dict[str, Any]]:
        """Changes made to catalogued files after registration (oldest first)."""
        query = select(CatalogAudit).order_by(CatalogAudit.id)
        with self._tx() as s:
            if file is not None:
                row, _ = self._get_row(s, file)
                query = query.where(CatalogAudit.file_id == row.id)
            return [
                {
                    "at": aware(a.at),
                    "who": a.who,
                    "action": a.action,
                    "file_id": a.file_id,
                    "path": a.path,
                    "old_size": a.old_size,
                    "new_size": a.new_size,
                    "old_adler32": a.old_adler32,
                    "new_adler32": a.new_adler32,
                    "note": a.note,
                }
                for a in s.scalars(query)
            ]

    @staticmethod
    def _check_parents(s: Session, key: str, parent_ids: Sequence[int]) -> None:
        known = set(s.scalars(select(File.id).where(File.id.in_(parent_ids))))
        missing = [p for p in parent_ids if p not in known]
        if missing:
            raise NotInCatalogError(f"{key}: parent file ids {missing} are not in the catalog")

    def has_file(self, file: int | str | os.PathLike[str]) -> bool:
        """Whether a file (by catalog id or path) is catalogued."""
        try:
            self.get_file(file)
        except NotInCatalogError:
            return False
        return True

    def get_file(self, file: int | str | os.PathLike[str]) -> FileRecord:
        """A file by catalog id or path; NotInCatalogError names the closest paths."""
        with self._tx() as s:
            return file_record(*self._get_row(s, file))

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
        return self._related(file_id, Parentage.parent_id, Parentage.child_id)

    def children(self, file_id: int) -> list[FileRecord]:
        """The files made from ``file_id``, by id."""
        return self._related(file_id, Parentage.child_id, Parentage.parent_id)

    def _related(self, file_id: int, other: Any, this: Any) -> list[FileRecord]:
        """Files linked to ``file_id`` by parentage: ``other`` is their side of the link."""
        with self._tx() as s:
            self._get_row(s, file_id)
            query = select(File).join(Parentage, other == File.id).where(this == file_id)
            return self._records(s, s.scalars(query.order_by(File.id)).all())

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

    # END

    def verify(self, file_ids: Iterable[int] | None = None) -> list[VerifyProblem]:
        """Recompute size and adler32 of local files; return what no longer matches.

        Remote (URL) files are skipped; their replicas are verified by the transfer layer.
        The filesystem checks are :func:`jaas.store.verify.check_files`.
        """
        with self._tx() as s:
            if file_ids is None:
                rows = list(s.scalars(select(File).order_by(File.id)))
            else:
                rows = [self._get_row(s, i)[0] for i in file_ids]
            todo = [
                ExpectedFile(r.id, r.path, r.size, r.adler32) for r in rows if not is_url(r.path)
            ]
        return check_files(todo)


def _local_sums(key: str, size: int | None, checksum: str | None) -> tuple[int | None, str]:
    """Size and adler32 of a file to register: computed for a local file unless given.

    A local file must exist unless both are given (a step's output still at its temporary
    name, registered before its rename so that a refusal keeps the old file)."""
    if checksum is not None:
        checksum = check_adler32(checksum, key)
    if not is_url(key):
        if (size is None or checksum is None) and not os.path.isfile(key):
            raise CatalogError(f"{key}: no such file; cannot register it")
        if size is None:
            size = os.path.getsize(key)
        if checksum is None:
            checksum = adler32_file(key)
    elif checksum is None:
        raise CatalogError(f"{key}: a remote file needs its adler32 checksum to be registered")
    return size, checksum
