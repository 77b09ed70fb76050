"""Small file utilities shared by every writer: atomic writes, adler32 checksums, and
directory creation with a one-line error."""

from __future__ import annotations

import contextlib
import contextvars
import os
import tempfile
import zlib
from collections.abc import Iterator
from pathlib import Path

__all__ = ["adler32_file", "atomic_path", "held_writes", "make_dirs"]

_CHUNK = 8 * 1024 * 1024


def _read_umask() -> int:
    # os.umask can only be read by setting it: done once, at import, before any threads
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _read_umask()

# (temporary, final) of the writes that wait for their rename (inside ``held_writes``)
_HELD: contextvars.ContextVar[list[tuple[Path, Path]] | None] = contextvars.ContextVar(
    "jaas_held_writes", default=None
)


@contextlib.contextmanager
def held_writes() -> Iterator[list[tuple[Path, Path]]]:
    """Hold back the final rename of every ``atomic_path`` write inside the block.

    The block sees the complete temporary files (the yielded list of ``(temporary,
    final)``) and may still refuse them, e.g. after asking the catalog: on an exception
    the temporary files are removed and the old outputs stay as they were; on success
    each is renamed onto its final path.

    Example:
        >>> with held_writes() as held:         # doctest: +SKIP
        ...     write_index(table, "out.parquet")
        ...     check(held[0][0])               # raise to keep the old out.parquet
    """
    held: list[tuple[Path, Path]] = []
    token = _HELD.set(held)
    try:
        yield held
    except BaseException:
        for tmp, _ in held:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        raise
    finally:
        _HELD.reset(token)
    for tmp, final in held:
        os.replace(tmp, final)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` on success.

    On any exception the temporary file is removed, so a reader never sees a partial
    output and a failed step leaves nothing behind.

    Example:
        >>> with atomic_path("out.parquet") as tmp:   # doctest: +SKIP
        ...     pq.write_table(table, tmp)
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".part", dir=final.parent)
    except OSError as exc:  # name the output the user gave, not the temporary file
        raise type(exc)(exc.errno, exc.strerror, os.fspath(final)) from exc
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        if tmp.exists():  # mkstemp creates 0600: give the file the usual umask mode
            os.chmod(tmp, 0o666 & ~_UMASK)
        held = _HELD.get()
        if held is not None:
            held.append((tmp, final))  # renamed (or removed) by held_writes
        else:
            os.replace(tmp, final)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def adler32_file(path: str | os.PathLike[str]) -> str:
    """Adler-32 checksum of a file as 8 lower-case hex digits (the WLCG convention)."""
    value = 1
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            value = zlib.adler32(chunk, value)
    return f"{value & 0xFFFFFFFF:08x}"


def make_dirs(path: Path, error: type[Exception], prefix: str = "") -> None:
    """Create directory ``path`` and its parents; on failure raise
    ``error("<prefix>cannot create directory <path>: <reason>")`` (no traceback chain)."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise error(f"{prefix}cannot create directory {path}: {exc.strerror or exc}") from None
