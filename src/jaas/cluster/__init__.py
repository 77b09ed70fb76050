"""Distributed analysis on Dask: workers own files and cache columns, exact correlations.

Example:
    >>> import jaas, jaas.cluster
    >>> c = jaas.cluster.connect("tcp://127.0.0.1:8786")        # doctest: +SKIP
    >>> res = c.ibd(jaas.open("runs/sim1"))                    # doctest: +SKIP
    >>> c.cache_stats()                                        # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from jaas.cluster.backend import QueryInfo, coincidence, ibd
    from jaas.cluster.client import Cluster, as_cluster, connect

__all__ = ["Cluster", "QueryInfo", "as_cluster", "coincidence", "connect", "ibd"]

# loaded on first use: the dask-free pieces (plan, tasks) serve the Spark backend too,
# which must not import distributed (the `spark` extra has no Dask)
_LAZY = dict.fromkeys(("QueryInfo", "coincidence", "ibd"), "jaas.cluster.backend")
_LAZY.update(dict.fromkeys(("Cluster", "as_cluster", "connect"), "jaas.cluster.client"))


def __getattr__(name: str) -> object:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'jaas.cluster' has no attribute {name!r}")
