"""Progress bars for long work: tqdm in a terminal, a widget in a notebook."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from tqdm.auto import tqdm

from jaas.settings import settings

__all__ = ["progress", "query_progress"]


def _in_kernel() -> bool:
    """True inside a running Jupyter kernel (not merely with ipykernel imported)."""
    if "ipykernel" not in sys.modules:
        return False
    ipython = sys.modules.get("IPython")
    shell = getattr(ipython, "get_ipython", lambda: None)() if ipython is not None else None
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


def progress(total: float | None = None, desc: str = "", unit: str = "it", **kwargs: Any) -> tqdm:
    """Return a progress bar; disabled when ``JAAS_PROGRESS=0`` or stderr is not a terminal.

    Example:
        >>> with progress(total=10, desc="simulate", unit="s") as bar:   # doctest: +SKIP
        ...     bar.update(1)
    """
    kwargs.setdefault("disable", not _enabled(None))
    kwargs.setdefault("dynamic_ncols", True)
    return tqdm(total=total, desc=desc, unit=unit, **kwargs)


def _enabled(enabled: bool | None) -> bool:
    """``enabled`` if given, else JAAS_PROGRESS, else on in a terminal or a running kernel."""
    if enabled is not None:
        return enabled
    setting = settings().progress
    return (sys.stderr.isatty() or _in_kernel()) if setting is None else setting


@contextmanager
def query_progress(
    label: str, enabled: bool | None = None
) -> Iterator[Callable[[int, int], None] | None]:
    """A partition-progress callback ``(done, total)`` for a query, drawing a bar of its
    partitions (only when there are several) and closing it at the end; None when no bar
    is to be shown (the engine then reports no progress and keeps its partitioning).

    ``enabled``: True or False forces the bar on or off; None follows :func:`progress`
    (``JAAS_PROGRESS``, else a terminal or a running notebook kernel). The engine calls
    this through the hook named in ``jaas.PROGRESS``; it never imports a UI layer itself.
    """
    if not _enabled(enabled):
        yield None
        return
    bar: tqdm | None = None

    def on_partition(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            if total < 2:
                return
            bar = progress(total=total, desc=label, unit="part", disable=False)
        bar.update(done - bar.n)

    try:
        yield on_partition
    finally:
        if bar is not None:
            bar.close()
