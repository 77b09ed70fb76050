"""How the portal is served: uvicorn's fastest HTTP parser and event loop when present.

``uvicorn[standard]`` brings ``httptools`` (a C HTTP parser) and ``uvloop`` (a libuv event
loop); without them uvicorn parses HTTP in pure Python (``h11``) on asyncio's loop, which
costs several times the CPU per request. The choice is explicit so that it shows, and
fails over to the pure-Python pair when the extras are not installed.
"""

from __future__ import annotations

import importlib.util
from typing import Literal, TypedDict

__all__ = ["UvicornOptions", "uvicorn_options"]


class UvicornOptions(TypedDict):
    """Keyword arguments of ``uvicorn.run`` / ``uvicorn.Config``."""

    http: Literal["h11", "httptools"]
    loop: Literal["asyncio", "uvloop"]


def uvicorn_options() -> UvicornOptions:
    """``http`` and ``loop`` for ``uvicorn.run``: httptools / uvloop when importable."""
    fast_http = importlib.util.find_spec("httptools") is not None
    fast_loop = importlib.util.find_spec("uvloop") is not None
    return UvicornOptions(
        http="httptools" if fast_http else "h11", loop="uvloop" if fast_loop else "asyncio"
    )
