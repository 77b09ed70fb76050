"""How many copies run at once: per link and per site limits over a bounded thread pool.

``Limits.slot(topo, src, dst)`` blocks until the link ``src -> dst`` and both sites are below
their ``max_active`` (from the topology YAML), then holds one place on each until the copy
ends. All three places are taken at once under one lock, so two hops never deadlock.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

from jaas.transfer.config import Topology

__all__ = ["ALL", "Limits"]

ALL = "*"  # the key counting every copy under way


class Limits:
    """Places per site and per link; ``peak`` keeps the most seen at once (``ALL``: overall)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self.active: Counter[str | tuple[str, str]] = Counter()
        self.peak: Counter[str | tuple[str, str]] = Counter()

    def _free(self, topo: Topology, src: str, dst: str) -> bool:
        link = topo.link(src, dst).max_active
        if link is not None and self.active[(src, dst)] >= link:
            return False
        for site in (src, dst):
            limit = topo.sites[site].max_active if site in topo.sites else None
            if limit is not None and self.active[site] >= limit:
                return False
        return True

    @contextmanager
    def slot(self, topo: Topology, src: str, dst: str) -> Iterator[None]:
        keys: tuple[str | tuple[str, str], ...] = (src, dst, (src, dst), ALL)
        with self._cond:
            self._cond.wait_for(lambda: self._free(topo, src, dst))
            for k in keys:
                self.active[k] += 1
                self.peak[k] = max(self.peak[k], self.active[k])
        try:
            yield
        finally:
            with self._cond:
                for k in keys:
                    self.active[k] -= 1
                self._cond.notify_all()
