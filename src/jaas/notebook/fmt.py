"""Numbers for people: a value rounded to its uncertainty (PDG rule), HTML escaping."""

from __future__ import annotations

import html

from jaas._fmt import with_error

__all__ = ["esc", "with_error"]


def esc(value: object) -> str:
    """HTML-escaped ``str(value)``."""
    return html.escape(str(value))
