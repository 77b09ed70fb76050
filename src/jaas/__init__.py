"""jaas: JUNO Analysis as a Service.

Keep-up production of RAW detector files into ROOT event files and index files, a
unified event store, and exact time-correlation analysis (IBD, BiPo, muon vetoes) over
months of data, from Jupyter or a terminal, on one machine or a Dask cluster.
"""

from __future__ import annotations

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

__all__ = [
    "CatalogError",
    "ConfigError",
    "CorruptRecordError",
    "FormatError",
    "JaasError",
    "NotInCatalogError",
    "PipelineError",
    "SelectionError",
    "TruncatedFileError",
    "__version__",
]
