"""How the ``jaas`` command reports an error: one line naming the problem and the recovery.

``describe`` turns any exception a command raised into that line; ``debug()`` says whether
the user asked for tracebacks instead (``jaas --debug`` or ``JAAS_DEBUG=1``); ``shown``
makes a file name safe to print in a one-line table row.
"""

from __future__ import annotations

import errno
import os

import click

from jaas.errors import JaasError, SelectionError
from jaas.settings import settings

__all__ = ["debug", "describe", "shown"]


_DEBUG_FLAG: list[bool] = [False]


def _debug() -> bool:
    if _DEBUG_FLAG[0]:
        return True
    try:
        return settings().debug
    except JaasError:  # a bad JAAS_DEBUG must not hide the error being reported
        return False


def _set_debug(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    _DEBUG_FLAG[0] = bool(value)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _path_of(exc: OSError) -> str:
    name = exc.filename if exc.filename is not None else ""
    return os.fsdecode(name) if isinstance(name, (str, bytes, os.PathLike)) else str(name)


_OS_HINTS: dict[int, str] = {
    errno.EACCES: "permission denied; check its permissions or choose another path",
    errno.EPERM: "operation not permitted; check its permissions or choose another path",
    errno.EROFS: "read-only file system; choose a writable output path",
    errno.ENOENT: "no such file or directory; check the path (its parent must exist)",
    errno.ENOTDIR: "a part of the path is a file, not a directory; choose another path",
    errno.EISDIR: "is a directory where a file is expected; name a file",
    errno.EEXIST: "already exists; remove it or choose another path",
    errno.ENOSPC: "no space left on the device; free space or write elsewhere",
    errno.EDQUOT: "disk quota exceeded; free space or write elsewhere",
    errno.ENOTEMPTY: "directory not empty; empty it or choose another path",
    errno.ENAMETOOLONG: "file name too long; choose a shorter path",
}


def describe(exc: BaseException) -> str:
    """One line saying what went wrong and how to recover, for an error a command raised."""
    if isinstance(exc, SelectionError):
        return str(exc)  # keeps its caret line under the expression
    if isinstance(exc, JaasError):
        return _one_line(str(exc))
    if isinstance(exc, OSError) and exc.errno in _OS_HINTS:
        path = _path_of(exc)
        second = os.fsdecode(exc.filename2) if exc.filename2 is not None else ""
        where = f"{path!r}" + (f" -> {second!r}" if second else "")
        return f"{where}: {_OS_HINTS[exc.errno]}" if path else _OS_HINTS[exc.errno]
    try:
        import sqlalchemy.exc as sa_exc
    except ImportError:  # pragma: no cover - sqlalchemy is a core dependency
        sa_exc = None  # type: ignore[assignment]
    if sa_exc is not None and isinstance(exc, sa_exc.SQLAlchemyError):
        orig = getattr(exc, "orig", None)
        reason = _one_line(str(orig if orig is not None else exc).split("\n")[0])
        return (
            f"catalog database: {reason}; check the --catalog URL (a SQLite file path or "
            "postgresql://user@host:port/db) and that the database is reachable"
        )
    if isinstance(exc, OSError):
        path = _path_of(exc)
        reason = exc.strerror or _one_line(str(exc))
        return f"{path!r}: {reason}" if path else reason
    if isinstance(exc, MemoryError):
        return "out of memory; process fewer or smaller files at a time"
    text = _one_line(str(exc)) or type(exc).__name__
    return f"{text} ({type(exc).__name__}; rerun with jaas --debug for the traceback)"


def debug() -> bool:
    """True when the user asked for tracebacks (``jaas --debug`` or ``JAAS_DEBUG=1``)."""
    return _debug()


def shown(path: str | os.PathLike[str]) -> str:
    """``path`` as text for one table row: control characters (newlines...) escaped."""
    text = os.fsdecode(path)
    if text.isprintable():
        return text
    return text.encode("unicode_escape", "backslashreplace").decode("ascii")
