"""Plots of analysis results (matplotlib; the Agg backend when no display is available).

Drawn in a style close to mplhep's (``mplhep.histplot`` and its ROOT-like style, from the
``notebook`` extra): data as points with sqrt(N) error bars, the accidental estimate as
a step, axis labels with units and the bin width. Without mplhep (outside CI only) the
same content is drawn with plain matplotlib.
"""

from __future__ import annotations

import contextlib
import os
from typing import TYPE_CHECKING, Any

import numpy as np

from jaas._fmt import with_error

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from jaas.engine.session.results import CoincidenceResult

__all__ = ["plot_pairs"]

# the ROOT-like mplhep style, sized for a 2x2 figure in a notebook
_SIZES = {"font.size": 11, "xtick.major.size": 6, "ytick.major.size": 6, "xtick.minor.size": 3,
          "ytick.minor.size": 3, "axes.linewidth": 1.2}  # fmt: skip


def _mplhep() -> Any:
    """mplhep, or None when absent outside CI (under CI=true it must be installed)."""
    try:
        import mplhep
    except ImportError:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            raise
        return None
    return mplhep


def _style(hep: Any) -> Any:
    import matplotlib.pyplot as plt

    if hep is None:
        return contextlib.nullcontext()
    return plt.style.context([hep.style.ROOT, _SIZES])


def _unit(label: str) -> str:
    return label[label.index("[") + 1 : label.index("]")] if "[" in label else ""


def _figure(rows: int, cols: int, size: tuple[float, float]) -> Figure:
    import matplotlib

    if not os.environ.get("DISPLAY") and "ipykernel" not in __import__("sys").modules:
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, _ = plt.subplots(rows, cols, figsize=size, layout="constrained")
    return fig


def plot_pairs(res: CoincidenceResult, path: str | os.PathLike[str] | None = None) -> Figure:
    """Four panels: prompt energy, delayed energy, dt (with the fit), dR.

    The off-time (accidental) sample is overlaid, scaled to the on-time window.
    """
    hep = _mplhep()
    with _style(hep):
        fig = _figure(2, 2, (10, 7))
        _draw(fig, res, hep)

    rate, err = res.rate_per_day()
    fig.suptitle(
        f"{res.label}: {res.n_pairs} pairs, {with_error(rate, err, '/ day')} "
        f"({res.good_days:.2f} days, livetime {res.live_days:.2f} days) — {res.dataset.name}",
        fontsize=10,
    )
    if path is not None:
        fig.savefig(path, dpi=110)
    if "ipykernel" in __import__("sys").modules:  # shown once, by the returned figure's repr
        import matplotlib.pyplot as plt

        plt.close(fig)
    return fig


def _draw(fig: Figure, res: CoincidenceResult, hep: Any) -> None:
    axes = fig.axes
    pairs = res.pairs
    off = res.offtime_pairs if res.result.accidentals is not None else None
    scale = 1.0 / res.result.accidentals.n_windows if res.result.accidentals else 0.0
    c = res.spec.coincidence
    assert c is not None
    dt_hi = c.dt_max_ns / 1e3
    dr_hi = (c.dr_max or float(np.nanmax(pairs["dr_m"], initial=1.0))) * 1.05
    panels = [
        ("prompt_E", "prompt energy [MeV]", (0.0, 12.0), 60),
        ("delayed_E", "delayed energy [MeV]", (1.5, 5.5), 80),
        ("dt_us", "dt [us]", (c.dt_min_ns / 1e3, dt_hi), 50),
        ("dr_m", "dR [m]", (0.0, dr_hi), 50),
    ]
    for ax, (col, label, rng, bins) in zip(axes, panels, strict=True):
        edges = np.linspace(*rng, bins + 1)
        counts, _ = np.histogram(pairs[col], edges)
        data = f"{res.label} pairs ({len(pairs)})"
        if hep is not None:
            hep.histplot(counts, edges, yerr=np.sqrt(counts), histtype="errorbar", ax=ax,
                         color="k", markersize=3, label=data)  # fmt: skip
        else:
            centers = 0.5 * (edges[1:] + edges[:-1])
            ax.errorbar(centers, counts, yerr=np.sqrt(counts), fmt="o", ms=3, color="k",
                        lw=1, label=data)  # fmt: skip
        if off is not None and len(off) and col in off:
            oc, _ = np.histogram(off[col], edges)
            if hep is not None:
                hep.histplot(oc * scale, edges, histtype="step", ax=ax, color="C2",
                             label="accidentals (off-time)")  # fmt: skip
            else:
                ax.stairs(oc * scale, edges, label="accidentals (off-time)", color="C3")
        ax.set_xlabel(label)
        ax.set_ylabel(f"pairs / {edges[1] - edges[0]:.3g} {_unit(label)}".rstrip())
        ax.set_ylim(bottom=0)
    # the dt fit on the dt panel
    fit = res.fit_dt() if len(pairs) >= 5 else None
    if fit is not None and fit.valid:
        ax = axes[2]
        lo, hi = c.dt_min_ns / 1e3, dt_hi
        x = np.linspace(lo, hi, 200)
        width = (hi - lo) / 50
        norm = fit.tau_us * (np.exp(-lo / fit.tau_us) - np.exp(-hi / fit.tau_us))
        f = fit.signal_fraction
        y = fit.n * width * (f * np.exp(-x / fit.tau_us) / norm + (1 - f) / (hi - lo))

        tau = with_error(fit.tau_us, fit.tau_err_us, "us")
        ax.plot(x, y, color="C0", lw=1.5, label=f"fit tau = {tau}")
    for ax in axes:
        ax.legend(fontsize=7)
