"""A mixin for objects that hold a resource: ``with obj:`` calls its ``close()`` on exit."""

from __future__ import annotations

from typing import Self

__all__ = ["Closing"]


class Closing:
    """Context manager protocol over ``close()``: ``__enter__`` returns the object itself,
    ``__exit__`` closes it (an exception in the block propagates)."""

    def close(self) -> None:
        """Release the resource (defined by the class)."""
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
