"""Every ``JAAS_*`` environment variable, read and checked in one place.

============================  ==========================================================
variable                      meaning
============================  ==========================================================
``JAAS_CATALOG``              the user's catalog (database URL or SQLite path)
``JAAS_DATA_DIR``             where jaas writes files it creates for the catalog
``JAAS_CACHE_BYTES``          column-cache budget, e.g. ``4GiB``, ``512MB``, ``1000000``
``JAAS_CLUSTER_DIR``          state of ``jaas cluster up`` (default ``~/.jaas/cluster``)
``JAAS_PROGRESS``             ``0``/``1`` (also no/yes, false/true, off/on): progress bars
``JAAS_KUP_CATALOG``          catalog of keep-up stages (overrides the pipeline database)
``JAAS_KUP_STATE_DIR``        state directory of the running keep-up pipeline (set by it)
``JAAS_KUP_OWNER_PID``        ``kup up`` ties the pipeline to this process: once it is gone,
                              the supervisor stops the pipeline (tests, notebooks)
``JAAS_TESTDATA``             directory of external test files (tests only)
``JAAS_DEBUG``                ``1``: CLI errors show their traceback (as ``jaas --debug``)
``JAAS_DATA``                 the dataset ``jaas lab`` opens as ``ds`` in every kernel
``JAAS_SCHEDULER``            default backend of queries given none (``tcp://HOST:8786``)
``JAAS_THREADS``              threads of a local query given none: a positive number, or
                              ``auto`` (default: one per usable core on large data)
============================  ==========================================================

The environment is read when :func:`settings` is called (not at import), so a change
made by a test or a parent process is seen. A bad value raises a
:class:`~jaas.errors.ConfigError` naming the variable and what it accepts.

Example:
    >>> settings({"JAAS_CACHE_BYTES": "4GiB"}).cache_bytes
    4294967296
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from jaas.errors import ConfigError

__all__ = ["VARIABLES", "Settings", "parse_bool", "parse_bytes", "settings"]

VARIABLES = (
    "JAAS_CATALOG",
    "JAAS_DATA_DIR",
    "JAAS_CACHE_BYTES",
    "JAAS_CLUSTER_DIR",
    "JAAS_PROGRESS",
    "JAAS_KUP_CATALOG",
    "JAAS_KUP_STATE_DIR",
    "JAAS_KUP_OWNER_PID",
    "JAAS_TESTDATA",
    "JAAS_DEBUG",
    "JAAS_DATA",
    "JAAS_SCHEDULER",
    "JAAS_THREADS",
)

_BYTE_UNITS = {
    "": 1,
    "b": 1,
    "kb": 10**3,
    "mb": 10**6,
    "gb": 10**9,
    "tb": 10**12,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "tib": 2**40,
}
_BYTES_RE = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*([A-Za-z]*)\s*")
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def parse_bytes(text: str, name: str = "value") -> int:
    """A byte count with an optional unit: ``4GiB``, ``1.5 GB``, ``512MiB``, ``4096``.

    Raises:
        ConfigError: ``NAME='text': not a byte count ...``.
    """
    match = _BYTES_RE.fullmatch(text)
    unit = match.group(2).lower() if match else ""
    if match is None or unit not in _BYTE_UNITS:
        raise ConfigError(
            f"{name}={text!r}: not a byte count; give a number with an optional unit "
            "B, kB, MB, GB, TB (powers of 1000) or KiB, MiB, GiB, TiB (powers of 1024), "
            "e.g. 4GiB"
        )
    return int(float(match.group(1)) * _BYTE_UNITS[unit])


def parse_bool(text: str, name: str = "value") -> bool:
    """``1/true/yes/on`` or ``0/false/no/off`` (any case).

    Raises:
        ConfigError: naming the variable and the accepted words.
    """
    word = text.strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise ConfigError(f"{name}={text!r}: give 1/true/yes/on or 0/false/no/off")


@dataclass(frozen=True)
class Settings:
    """The ``JAAS_*`` variables, parsed; ``None`` where a variable is unset or empty."""

    catalog: str | None = None
    data_dir: Path | None = None
    cache_bytes: int | None = None
    cluster_dir: Path = field(default_factory=lambda: Path.home() / ".jaas" / "cluster")
    progress: bool | None = None
    kup_catalog: str | None = None
    kup_state_dir: Path | None = None
    kup_owner_pid: int | None = None
    testdata: Path | None = None
    debug: bool = False
    data: str | None = None
    scheduler: str | None = None
    threads: int | None = None  # None: auto


def _positive(name: str, text: str | None, what: str) -> int | None:
    """``text`` as a positive integer (None when unset); else ConfigError ``give what``."""
    if text is None:
        return None
    if not (text.isascii() and text.isdigit()) or int(text) <= 0:
        raise ConfigError(f"{name}={text!r}: give {what}")
    return int(text)


def _threads(text: str | None) -> int | None:
    if text is not None and text.lower() == "auto":
        return None
    return _positive("JAAS_THREADS", text, "a positive number of threads, or auto")


def settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read the ``JAAS_*`` variables from ``environ`` (default: the process environment).

    Raises:
        ConfigError: a variable has a value that does not parse (message names it).
    """
    env = os.environ if environ is None else environ

    def text(name: str) -> str | None:
        value = env.get(name, "").strip()
        return value or None

    def path(name: str) -> Path | None:
        value = text(name)
        return None if value is None else Path(value).expanduser()

    cache = text("JAAS_CACHE_BYTES")
    progress = text("JAAS_PROGRESS")
    debug = text("JAAS_DEBUG")
    return Settings(
        catalog=text("JAAS_CATALOG"),
        data_dir=path("JAAS_DATA_DIR"),
        cache_bytes=None if cache is None else parse_bytes(cache, "JAAS_CACHE_BYTES"),
        cluster_dir=path("JAAS_CLUSTER_DIR") or Path.home() / ".jaas" / "cluster",
        progress=None if progress is None else parse_bool(progress, "JAAS_PROGRESS"),
        kup_catalog=text("JAAS_KUP_CATALOG"),
        kup_state_dir=path("JAAS_KUP_STATE_DIR"),
        kup_owner_pid=_positive(
            "JAAS_KUP_OWNER_PID", text("JAAS_KUP_OWNER_PID"), "a process id (a positive integer)"
        ),
        testdata=path("JAAS_TESTDATA"),
        debug=False if debug is None else parse_bool(debug, "JAAS_DEBUG"),
        data=text("JAAS_DATA"),
        scheduler=text("JAAS_SCHEDULER"),
        threads=_threads(text("JAAS_THREADS")),
    )
