"""Read results shared by every client between two changes of the database.

Every portal client asks the same questions (the summary, the totals of the jobs lists,
the runs' completeness, the active alerts); between two commits the answers do not
change. :class:`ViewCache` keeps them, keyed on a cheap change token of the database
(:class:`ChangeToken`), read at most once per ``interval`` seconds:

* SQLite: ``PRAGMA data_version`` (changes when another connection commits) and
  ``total_changes()`` (this connection's own writes, for an in-memory database whose one
  connection is shared), on a connection held for that purpose only: microseconds, so
  the token is read on every request (``interval`` 0 unless configured).
* PostgreSQL: ``txid_current_snapshot()``: its ``xmax`` or in-progress list changes
  whenever a transaction that wrote anything commits or aborts (read-only transactions get
  no transaction id), one round trip.
* anything else: no token; entries expire after ``interval``.

An answer is thus never older than ``interval`` (plus its own computation) behind the
last commit. The token is read before an answer is computed, so an answer computed from
newer data than its token is dropped at the next check, never the reverse. Apply it with
:func:`cached` on a method of an object holding a ``cache`` attribute (the portal's
:class:`~jaas.portal.source.LedgerSource`); arguments are the key and must be hashable.
"""

from __future__ import annotations

import functools
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, Protocol, TypeVar

from sqlalchemy import Engine

__all__ = ["ChangeToken", "ViewCache", "cached"]

_T = TypeVar("_T")


class ChangeToken:
    """A value that differs after every commit to the database (see the module doc)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.kind = engine.dialect.name
        self._lock = threading.Lock()
        self._raw: Any = None

    @property
    def cheap(self) -> bool:
        """Whether reading the token costs microseconds (no round trip)."""
        return self.kind == "sqlite"

    def read(self) -> Hashable:
        """The current token (a fresh object every call if the database has none)."""
        if self.kind == "sqlite":
            with self._lock:
                if self._raw is None:
                    self._raw = self.engine.raw_connection()
                cur = self._raw.cursor()
                try:
                    version = cur.execute("PRAGMA data_version").fetchone()[0]
                    own = cur.execute("SELECT total_changes()").fetchone()[0]
                finally:
                    cur.close()
                return (version, own)
        if self.kind == "postgresql":
            with self.engine.connect() as conn:
                return str(conn.exec_driver_sql("SELECT txid_current_snapshot()").scalar())
        return object()

    def close(self) -> None:
        with self._lock:
            if self._raw is not None:
                self._raw.close()
                self._raw = None


class ViewCache:
    """Answers by key, all dropped when the :class:`ChangeToken` changes.

    Args:
        token: the database's change token.
        interval: seconds between two reads of the token (None: 0 for a cheap token,
            0.25 s otherwise).
        size: most answers kept (least recently used dropped first).
    """

    def __init__(self, token: ChangeToken, interval: float | None = None, size: int = 512) -> None:
        self.token = token
        self.interval = (0.0 if token.cheap else 0.25) if interval is None else interval
        self.size = size
        self._lock = threading.Lock()
        self._entries: OrderedDict[Hashable, Any] = OrderedDict()
        self._computing: dict[Hashable, threading.Lock] = {}
        self._seen: Hashable = None
        self._gen = 0  # bumped whenever the answers are dropped
        self._checked = float("-inf")
        self.hits = self.misses = 0

    def clear(self) -> None:
        """Drop every answer (after a change made through this process, say)."""
        with self._lock:
            self._entries.clear()
            self._gen += 1
            self._checked = float("-inf")

    @property
    def inline(self) -> bool:
        """Whether the token is read on every check and costs microseconds (SQLite by
        default): then checks, and lookups cached on them, may run on the event loop."""
        return self.token.cheap and self.interval == 0

    def generation(self) -> int:
        """A number that changes whenever the answers are dropped (the database changed,
        or :meth:`clear`): what another store keyed on the same changes compares against."""
        self._check()
        return self._gen

    def _check(self) -> None:
        now = time.monotonic()
        if now - self._checked < self.interval:
            return
        with self._lock:
            if now - self._checked < self.interval:  # another thread just checked
                return
            token = self.token.read()
            if token != self._seen:
                self._entries.clear()
                self._gen += 1
                self._seen = token
            self._checked = time.monotonic()

    def get(self, key: Hashable, compute: Callable[[], _T]) -> _T:
        """The answer for ``key``: kept, or computed once (concurrent askers wait for it)."""
        self._check()
        with self._lock:
            if key in self._entries:
                self.hits += 1
                self._entries.move_to_end(key)
                return self._entries[key]
            gate = self._computing.setdefault(key, threading.Lock())
        with gate:
            with self._lock:
                if key in self._entries:  # computed while this thread waited
                    self.hits += 1
                    return self._entries[key]
                self.misses += 1
                gen = self._gen
            try:
                value = compute()
            finally:
                with self._lock:
                    self._computing.pop(key, None)
            with self._lock:
                if self._gen == gen:  # not computed across a change
                    self._entries[key] = value
                    while len(self._entries) > self.size:
                        self._entries.popitem(last=False)
            return value


class _HasCache(Protocol):
    cache: ViewCache


def cached(method: Callable[..., _T]) -> Callable[..., _T]:
    """Decorator: memoise a method of an object with a ``cache`` (:class:`ViewCache`);
    the key is the method's name and its (hashable) arguments."""

    @functools.wraps(method)
    def wrapper(self: _HasCache, *args: Any, **kwargs: Any) -> _T:
        key = (method.__name__, args, tuple(sorted(kwargs.items())))
        return self.cache.get(key, lambda: method(self, *args, **kwargs))

    return wrapper
