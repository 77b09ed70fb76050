"""Distributed analysis on Dask: workers own files and cache columns, exact correlations.

Example:
    >>> import jaas, jaas.cluster
    >>> c = jaas.cluster.connect("tcp://127.0.0.1:8786")        # doctest: +SKIP
    >>> res = c.ibd(jaas.open("runs/sim1"))                    # doctest: +SKIP
    >>> c.cache_stats()                                        # doctest: +SKIP
"""

from __future__ import annotations

from jaas.cluster.backend import QueryInfo, coincidence, ibd
from jaas.cluster.client import Cluster, as_cluster, connect

__all__ = ["Cluster", "QueryInfo", "as_cluster", "coincidence", "connect", "ibd"]
