"""Histograms as small inline SVG, drawn from bin counts (no matplotlib, no PNG).

The selection panel redraws five histograms on every exact result; a PNG from
matplotlib costs 0.3-1.7 s there (text layout and rasterising), an SVG string from
~200 bin counts well under a millisecond. The browser draws it; the widget only carries
the text.

Example:
    >>> counts, edges = np.array([1, 4, 2]), np.array([0.0, 1.0, 2.0, 3.0])
    >>> hist_svg(counts, edges, "E [MeV]").startswith("<svg")
    True
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from jaas.notebook.fmt import esc

__all__ = ["hist_svg", "hists_svg", "nice_ticks"]

W, H = 210, 150  # pixels of one histogram
LEFT, RIGHT, TOP, BOTTOM = 36, 8, 8, 30


def nice_ticks(lo: float, hi: float, n: int = 4) -> list[float]:
    """About ``n`` round tick values (1, 2 or 5 times a power of ten) in ``[lo, hi]``."""
    span = hi - lo
    if not (math.isfinite(span) and span > 0):
        return [lo]
    raw = span / n
    base = 10 ** math.floor(math.log10(raw))
    step = next(m * base for m in (1, 2, 5, 10) if m * base >= raw)
    first = math.ceil(lo / step - 1e-9) * step
    count = math.floor((hi - first) / step + 1e-9) + 1
    return [round(first + i * step, 12) for i in range(count)]


def _num(v: float) -> str:
    return f"{v:.6g}"


def hist_svg(
    counts: np.ndarray, edges: np.ndarray, xlabel: str, ylabel: str = "pairs / bin"
) -> str:
    """One histogram: the step outline, sqrt(N) error bars, axes with round ticks and
    the axis labels (with units)."""
    c = np.asarray(counts, np.float64)
    e = np.asarray(edges, np.float64)
    top = max(1.0, float((c + np.sqrt(c)).max(initial=0.0)) * 1.08)
    x0, x1 = float(e[0]), float(e[-1])
    pw, ph = W - LEFT - RIGHT, H - TOP - BOTTOM

    def px(x: np.ndarray | float) -> np.ndarray:
        return LEFT + (np.asarray(x, np.float64) - x0) / (x1 - x0) * pw

    def py(y: np.ndarray | float) -> np.ndarray:
        return TOP + ph - np.asarray(y, np.float64) / top * ph

    xs, ys = px(e), py(c)
    pts = [f"{xs[0]:.1f},{py(0.0):.1f}"]
    for i in range(len(c)):
        pts += [f"{xs[i]:.1f},{ys[i]:.1f}", f"{xs[i + 1]:.1f},{ys[i]:.1f}"]
    pts.append(f"{xs[-1]:.1f},{py(0.0):.1f}")
    centers = px(0.5 * (e[1:] + e[:-1]))
    err = np.sqrt(c)
    lo_y, hi_y = py(c - err), py(c + err)
    bars = "".join(
        f"M{centers[i]:.1f} {lo_y[i]:.1f}V{hi_y[i]:.1f}" for i in range(len(c)) if c[i] > 0
    )
    out = [
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{W}' height='{H}' "
        f"viewBox='0 0 {W} {H}' font-family='sans-serif' font-size='9'>",
        f"<rect x='{LEFT}' y='{TOP}' width='{pw}' height='{ph}' fill='none' stroke='#000'/>",
        f"<polyline fill='none' stroke='#1f77b4' stroke-width='1.2' points='{' '.join(pts)}'/>",
        f"<path d='{bars}' stroke='#1f77b4' stroke-width='0.8'/>" if bars else "",
    ]
    for t in nice_ticks(x0, x1):
        x = float(px(t))
        out.append(
            f"<path d='M{x:.1f} {TOP + ph}v3' stroke='#000'/><text x='{x:.1f}' "
            f"y='{TOP + ph + 11}' text-anchor='middle'>{_num(t)}</text>"
        )
    for t in nice_ticks(0.0, top, 3):
        y = float(py(t))
        out.append(
            f"<path d='M{LEFT} {y:.1f}h-3' stroke='#000'/><text x='{LEFT - 4}' "
            f"y='{y + 3:.1f}' text-anchor='end'>{_num(t)}</text>"
        )
    out.append(
        f"<text x='{LEFT + pw}' y='{H - 4}' text-anchor='end'>{esc(xlabel)}</text>"
        f"<text transform='translate(9 {TOP}) rotate(-90)' text-anchor='end'>{esc(ylabel)}</text>"
        "</svg>"
    )
    return "".join(out)


def hists_svg(hists: Mapping[str, tuple[np.ndarray, np.ndarray, str]]) -> str:
    """Several histograms (``name -> (counts, edges, x label)``) side by side, as HTML."""
    body = "".join(hist_svg(c, e, label) for c, e, label in hists.values())
    return f"<div class='jaas-hists' style='display:flex;flex-wrap:wrap;gap:4px'>{body}</div>"
