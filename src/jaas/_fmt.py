"""Numbers for people: a value rounded to its uncertainty (PDG rule).

Shared by the text summaries of the engine and the notebook's HTML, so both show the same
digits.
"""

from __future__ import annotations

import math

__all__ = ["with_error"]


def _digits(err: float) -> int:
    """Decimal places that keep two significant digits of ``err`` (PDG: one if the
    leading three digits are 355..999, rounding up to two there)."""
    exponent = math.floor(math.log10(err))
    lead = err / 10 ** (exponent - 2)  # three leading digits, 100..999
    sig = 2 if lead < 355 else 1
    return max(0, sig - 1 - exponent)


def with_error(value: float, err: float, unit: str = "") -> str:
    """``value ± err`` rounded to the uncertainty: ``with_error(12.3456, 0.0789)`` is
    ``"12.346 ± 0.079"``. Non-finite or zero errors show the value with 4 significant
    digits and no error."""
    suffix = f" {unit}" if unit else ""
    if not math.isfinite(value):
        return f"{value}{suffix}"
    if not math.isfinite(err) or err <= 0:
        return f"{value:.4g}{suffix}"
    d = _digits(err)
    return f"{value:.{d}f} ± {err:.{d}f}{suffix}"
