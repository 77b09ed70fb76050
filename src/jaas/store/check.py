"""Content checks before a file is registered: a damaged file is not catalogued as good.

``store add`` reads every record of the files it registers: every RAW event with its CRC,
every basket of every tree of a ROOT file (a truncated ESD fails here), every row group
of a Parquet file. Files of other formats are registered as they are.
"""

from __future__ import annotations

import os

from jaas.errors import FormatError

__all__ = ["check_content"]

_ROOT_MAGIC = b"root"
_PARQUET_MAGIC = b"PAR1"
_TABLE_CLASSES = ("TTree", "TNtuple", "TNtupleD", "ROOT::RNTuple")


def check_content(path: str | os.PathLike[str], kind: str | None = None) -> None:
    """Read the whole file as what it claims to be.

    Args:
        path: a local file.
        kind: its catalog kind when known (``raw`` means the RAW format whatever the name).

    Raises:
        FormatError: a record fails its check, the file is truncated or unreadable.
    """
    name = os.fspath(path)
    try:
        with open(name, "rb") as fh:
            head = fh.read(4)
    except OSError as exc:
        raise FormatError(f"cannot read the file: {exc.strerror}", path=name) from None
    if kind == "raw" or (kind is None and name.lower().endswith(".raw")):
        _check_raw(name)
    elif head == _ROOT_MAGIC:
        _check_root(name)
    elif head == _PARQUET_MAGIC:
        _check_parquet(name)


def _check_raw(name: str) -> None:
    from jaas.formats.raw import RawReader

    with RawReader(name) as reader:  # raises CorruptRecordError / TruncatedFileError
        for _batch in reader:
            pass


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _check_root(name: str) -> None:
    import uproot

    try:
        with uproot.open(name) as f:
            for key, cls in f.classnames().items():
                if cls in _TABLE_CLASSES:  # every basket / page is read and decompressed
                    for _chunk in f[key].iterate(step_size="50 MB"):
                        pass
    except FormatError:
        raise
    except Exception as exc:  # uproot raises many types for a damaged file
        raise FormatError(
            f"damaged or truncated ROOT file: {_first_line(exc)}", path=name
        ) from None


def _check_parquet(name: str) -> None:
    import pyarrow.parquet as pq

    try:
        with pq.ParquetFile(name) as pf:
            for i in range(pf.num_row_groups):
                pf.read_row_group(i)
    except Exception as exc:  # pyarrow raises several types for a damaged file
        raise FormatError(f"damaged Parquet file: {_first_line(exc)}", path=name) from None
