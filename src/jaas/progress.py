"""Progress bars for long work: tqdm in a terminal, a widget in a notebook."""

from __future__ import annotations

import sys
from typing import Any

from tqdm.auto import tqdm

from jaas.settings import settings

__all__ = ["progress"]


def progress(total: float | None = None, desc: str = "", unit: str = "it", **kwargs: Any) -> tqdm:
    """Return a progress bar; disabled when ``JAAS_PROGRESS=0`` or stderr is not a terminal.

    Example:
        >>> with progress(total=10, desc="simulate", unit="s") as bar:   # doctest: +SKIP
        ...     bar.update(1)
    """
    enabled = settings().progress
    if enabled is not None:
        disable = not enabled
    else:
        disable = not (sys.stderr.isatty() or "ipykernel" in sys.modules)
    kwargs.setdefault("disable", disable)
    kwargs.setdefault("dynamic_ncols", True)
    return tqdm(total=total, desc=desc, unit=unit, **kwargs)
