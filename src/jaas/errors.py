"""The jaas exception tree: every error jaas raises on purpose derives from JaasError.

    JaasError
    ├── ConfigError (ValueError)          bad parameter, option or YAML file
    ├── FormatError                       a data file cannot be read as what it claims to be
    │   ├── CorruptRecordError            a record fails its check (CRC, magic, length)
    │   ├── TruncatedFileError            the file ends before its declared end
    │   └── InvalidContentError           valid records, impossible values (deterministic)
    ├── SelectionError (ValueError)       a selection expression cannot be parsed or evaluated
    ├── DatabaseError                     a database cannot be opened, reached or upgraded
    ├── CatalogError                      the event catalog refuses an operation
    │   └── NotInCatalogError (KeyError)  a run, file or dataset is not known
    ├── PipelineError                     keep-up production cannot carry out a step
    └── TransferError                     data management cannot move or verify a file

Messages name what a user needs to recover: the file, the byte offset or entry, the
nearest valid name, the command to run.
"""

from __future__ import annotations

import os

__all__ = [
    "CatalogError",
    "ConfigError",
    "CorruptRecordError",
    "DatabaseError",
    "FormatError",
    "InvalidContentError",
    "JaasError",
    "NotInCatalogError",
    "PipelineError",
    "SelectionError",
    "TransferError",
    "TruncatedFileError",
]


class JaasError(Exception):
    """Base class of all errors raised by jaas."""


class ConfigError(JaasError, ValueError):
    """A parameter, option or configuration file is invalid."""


class FormatError(JaasError):
    """A data file cannot be read as the format it claims to be.

    Attributes:
        path: the file.
        offset: byte offset of the problem, when known.
        event: event number (0-based, in file order) where the problem is, when known.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | os.PathLike[str] | None = None,
        offset: int | None = None,
        event: int | None = None,
    ) -> None:
        self.path = None if path is None else os.fspath(path)
        self.offset = offset
        self.event = event
        where = []
        if self.path is not None:
            where.append(self.path)
        if offset is not None:
            where.append(f"byte offset {offset}")
        if event is not None:
            where.append(f"event {event}")
        self.reason = message
        super().__init__(f"{', '.join(where)}: {message}" if where else message)


class CorruptRecordError(FormatError):
    """A record fails its integrity check (bad magic, length or CRC)."""


class TruncatedFileError(FormatError):
    """The file ends before the end its header or records promise."""


class InvalidContentError(FormatError):
    """Records pass their checks (CRC, length) but hold impossible values: a PMT id out
    of range, a NaN charge. Reading the file again gives the same error, so it is a
    deterministic failure (quarantine the file; retrying cannot help).

    Attributes:
        field: the offending field (``pmt``, ``charge``, ``time``...).
    """

    def __init__(
        self,
        message: str,
        *,
        field: str,
        path: str | os.PathLike[str] | None = None,
        offset: int | None = None,
        event: int | None = None,
    ) -> None:
        self.field = field
        super().__init__(f"field {field!r}: {message}", path=path, offset=offset, event=event)


class SelectionError(JaasError, ValueError):
    """A selection expression cannot be parsed or evaluated.

    Attributes:
        text: the expression.
        position: 0-based character position of the problem, when known.
    """

    argument: str | None = None  # the function argument that held ``text``, when known

    def __init__(self, message: str, *, text: str | None = None, position: int | None = None):
        self.text = text
        self.position = position
        self.reason = message
        if text is not None and position is not None:
            line, col = _window(text, position)
            message = f"{message}\n  {line}\n  {' ' * col}^"
        super().__init__(message)

    def _render_traceback_(self) -> list[str]:  # IPython: the message and caret, no frames
        where = f" (in argument {self.argument})" if self.argument else ""
        return [f"SelectionError{where}: {self}"]


def _window(text: str, position: int, width: int = 72) -> tuple[str, int]:
    """The part of a one-line ``text`` around ``position``, and the caret column in it."""
    text = text.replace("\n", " ").replace("\t", " ")
    if len(text) <= width:
        return text, position
    start = max(0, min(position - width // 2, len(text) - width))
    prefix = "..." if start > 0 else ""
    suffix = "..." if start + width < len(text) else ""
    return prefix + text[start : start + width] + suffix, len(prefix) + position - start


class DatabaseError(JaasError):
    """A database URL is invalid, or the database cannot be opened, reached or upgraded."""


class CatalogError(JaasError):
    """The event catalog refuses an operation."""


class NotInCatalogError(CatalogError, KeyError):
    """A run, file or dataset is not in the catalog."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class PipelineError(JaasError):
    """Keep-up production cannot carry out a step."""


class TransferError(JaasError):
    """Data management cannot move, verify or route a file (see jaas.transfer.errors)."""
