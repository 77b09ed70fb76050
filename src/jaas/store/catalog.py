"""The event catalog: runs, files with checksums, parentage, datasets (SQLite or PostgreSQL).

:class:`Catalog` is one object over one database session factory; its methods come from
one module per concern: :mod:`jaas.store.files` (runs and files), :mod:`jaas.store.datasets`
and :mod:`jaas.store.replicas`. The filesystem checks are in :mod:`jaas.store.verify`.
"""

from __future__ import annotations

from jaas.store._base import default_url, normalize_path
from jaas.store.datasets import Datasets
from jaas.store.files import RunsAndFiles
from jaas.store.replicas import Replicas

__all__ = ["Catalog", "default_url", "normalize_path"]


class Catalog(RunsAndFiles, Datasets, Replicas):
    """The event catalog database.

    Args:
        url: a SQLAlchemy URL (``sqlite:///catalog.db``, ``postgresql+psycopg://user@host/db``)
            or a plain path, which means a SQLite file.
        readonly: only read (``ls``-style commands): a missing SQLite file is an error and
            is never created.

    The schema is brought up to date by :func:`jaas.db.ensure_schema`: an empty database
    gets the tables, an older SQLite catalog is upgraded in place, an older PostgreSQL one
    is refused with a message to run ``jaas db upgrade URL``. Invalid URLs, directories,
    non-database files and unreachable servers raise :class:`~jaas.errors.DatabaseError`.

    Example:
        >>> cat = Catalog(tmp_path / "catalog.db")             # doctest: +SKIP
        >>> raw = cat.add_file("run1234.000.raw", kind="raw", run=1234, seq=0)
        >>> esd = cat.add_file("run1234.000.esd.root", kind="esd", parents=[raw.id])
        >>> [f.kind for f in cat.lineage(esd.id)]
        ['raw']
    """

    @classmethod
    def default(cls, *, readonly: bool = False) -> Catalog:
        """The user's catalog: ``$JAAS_CATALOG`` (URL or path), else a SQLite file at
        ``$XDG_DATA_HOME/jaas/catalog.db`` (``~/.local/share/jaas/catalog.db``)."""
        return cls(default_url(), readonly=readonly)
