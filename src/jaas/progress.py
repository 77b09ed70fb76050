"""Progress bars for long work: tqdm in a terminal, a widget in a notebook."""

from __future__ import annotations

import sys
from typing import Any

from tqdm.auto import tqdm

from jaas.settings import settings

__all__ = ["progress"]


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
    enabled = settings().progress
    if enabled is None:  # not set: on in a terminal or a running notebook kernel
        enabled = sys.stderr.isatty() or _in_kernel()
    kwargs.setdefault("disable", not enabled)
    kwargs.setdefault("dynamic_ncols", True)
    return tqdm(total=total, desc=desc, unit=unit, **kwargs)
