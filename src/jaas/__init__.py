"""jaas: JUNO Analysis as a Service.

Keep-up production of RAW detector files into ROOT event files and index files, a
unified event store, and exact time-correlation analysis (IBD, BiPo, muon vetoes) over
months of data, from Jupyter or a terminal, on one machine or a Dask cluster.
"""

from __future__ import annotations

from typing import Any

from jaas._version import __version__
from jaas.errors import (
    CatalogError,
    ConfigError,
    CorruptRecordError,
    FormatError,
    JaasError,
    NotInCatalogError,
    PipelineError,
    SelectionError,
    TruncatedFileError,
)

_LAZY = {
    "open": ("jaas.engine.session.dataset", "open_dataset"),
    "Dataset": ("jaas.engine.session.dataset", "Dataset"),
    "ibd": ("jaas.engine.session.analysis", "ibd"),
    "coincidence": ("jaas.engine.session.analysis", "coincidence"),
    "select": ("jaas.engine.session.analysis", "select"),
    "veto": ("jaas.engine.session.analysis", "veto"),
    "IBDSelection": ("jaas.engine.session.analysis", "IBDSelection"),
    "OffTime": ("jaas.engine.core.correlate", "OffTime"),
}


# Analysis backends by address scheme or name, as "module:attribute" of a factory taking
# the address (or a client object), imported on first use by jaas.engine.session.backend (which
# never imports a driver layer itself). Other packages add schemes (e.g. spark) with an
# entry point of group "jaas.backends" or jaas.engine.session.backend.register_backend.
_DASK = "jaas.cluster.backend:DaskBackend"
BACKENDS: dict[str, str] = dict.fromkeys(
    ("dask", "tcp", "tls", "ucx", "inproc", "ws", "wss"), _DASK
)
BACKENDS.update(dict.fromkeys(("spark", "local[]"), "jaas.spark.backend:SparkBackend"))
# Partition progress of local queries (a bar in a terminal, a widget in Jupyter), called by
# jaas.engine.session.analysis through this name so the engine imports no UI layer.
PROGRESS = "jaas.progress:query_progress"


def connect(address: str | None = None, **kwargs: Any) -> Any:
    """A handle on an analysis cluster, usable as ``backend=`` (or ``client=`` for Dask).

    ``"spark://HOST:PORT"``, ``"local[N]"`` or ``"spark"`` (``$SPARK_MASTER`` or the
    cluster of ``jaas cluster up --engine spark``) give a ``jaas.spark.SparkBackend``;
    anything else a Dask ``jaas.cluster.Cluster`` (``jaas.cluster.connect``).

    Example:
        >>> spark = jaas.connect("spark://head:7077")         # doctest: +SKIP
        >>> jaas.open("runs/sim1").ibd(backend=spark)         # doctest: +SKIP
    """
    text = (address or "").strip()
    if text == "spark" or text.startswith(("spark://", "local[")):
        from jaas.spark.backend import SparkBackend

        return SparkBackend(text, **kwargs)
    from jaas.cluster.client import connect as dask_connect

    return dask_connect(address, **kwargs)


def __getattr__(name: str) -> object:
    # heavy layers (numba kernels, pandas) load on first use, so `import jaas` stays fast
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        value = getattr(importlib.import_module(module), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'jaas' has no attribute {name!r}")


__all__ = [
    "CatalogError",
    "ConfigError",
    "CorruptRecordError",
    "Dataset",
    "FormatError",
    "IBDSelection",
    "JaasError",
    "NotInCatalogError",
    "OffTime",
    "PipelineError",
    "SelectionError",
    "TruncatedFileError",
    "__version__",
    "coincidence",
    "connect",
    "ibd",
    "open",
    "select",
    "veto",
]
