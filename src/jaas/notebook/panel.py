"""``SelectionPanel(ds)``: ipywidgets controls for every cut of a coincidence query.

Moving a control gives an instant estimate (the loose pair sample, computed once,
filtered by the new windows and scaled by the last exact veto/multiplicity survival);
after ``debounce`` seconds without change the exact query runs on the cached columns in
a thread. A newer change cancels an older run: its result is dropped, never shown. A bad
expression shows its error in the panel and leaves the last good result displayed.
The histograms are inline SVG drawn from their bin counts (``jaas.notebook.svgplot``):
a few milliseconds, where a matplotlib PNG cost 0.3-1.7 s per update.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import ipywidgets as w
import numpy as np

from jaas.errors import JaasError
from jaas.notebook.fmt import esc, with_error
from jaas.notebook.selection import (
    DT_MAX_US,
    MODES,
    WINDOW_COLUMNS,
    Cuts,
    load_selection,
    save_selection,
    saved_selections,
)
from jaas.notebook.svgplot import hists_svg

if TYPE_CHECKING:
    from jaas.engine.session.dataset import Dataset
    from jaas.engine.session.results import CoincidenceResult

__all__ = ["HISTOGRAMS", "SelectionPanel"]

# name -> (pair column, label, range, bins)
HISTOGRAMS: dict[str, tuple[str, str, tuple[float, float], int]] = {
    "prompt_E": ("prompt_E", "prompt energy [MeV]", (0.0, 12.0), 48),
    "delayed_E": ("delayed_E", "delayed energy [MeV]", (1.0, 5.0), 40),
    "dt": ("dt_us", "dt [us]", (0.0, DT_MAX_US), 40),
    "dR": ("dr_m", "dR [m]", (0.0, 3.0), 30),
    "t_mu": ("prompt_t_mu", "time since muon [s]", (0.0, 2.0), 40),
}


class SelectionPanel:
    """An interactive coincidence selection bound to a dataset.

    Attributes:
        result: the last good exact result (a ``CoincidenceResult``).
        histograms: name -> (counts, edges) of the last good result's pairs.
        estimate: the instant pair-count estimate for the current controls.
        error: the last error text, "" when the controls are valid.
    """

    def __init__(
        self,
        ds: Dataset,
        cuts: Cuts | None = None,
        *,
        store: str | os.PathLike[str] = "jaas_selections.json",
        debounce: float = 0.3,
        sync: bool = False,
    ) -> None:
        self.ds = ds
        self.store = Path(store)
        self.debounce = debounce
        self.sync = sync  # run the exact query in the caller's thread (tests, scripts)
        self.result: CoincidenceResult | None = None
        self.histograms: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self.estimate = 0.0
        self.error = ""
        self.runs = 0  # exact queries published
        self.cancelled = 0  # exact queries dropped as stale
        self._gen = 0
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None
        self._thread: threading.Thread | None = None
        self._loose: Any = None
        self._loose_extra: str | None = None
        self._loose_cols: dict[str, np.ndarray] = {}  # the loose pairs' window columns
        self._loose_last = np.zeros(0, bool)  # loose pairs inside the last exact windows
        self._survival = 1.0
        self._last_cuts: Cuts | None = None
        self._last_cols: dict[str, np.ndarray] = {}
        self._counts: dict[int, tuple[np.ndarray, int]] = {}  # read-only mask -> its count
        c = cuts or Cuts()
        fr, f = w.FloatRangeSlider, w.FloatSlider
        self.controls: dict[str, w.ValueWidget] = {
            "prompt_e": fr(value=c.prompt_e, min=0, max=15, step=0.05, description="prompt E"),
            "delayed_e": fr(value=c.delayed_e, min=0, max=5, step=0.01, description="delayed E"),
            "r_max": f(value=c.r_max, min=0, max=18, step=0.1, description="r max [m]"),
            "dt_us": fr(value=c.dt_us, min=0, max=DT_MAX_US, step=5, description="dt [us]"),
            "dr_max": f(value=c.dr_max, min=0, max=5, step=0.05, description="dR max [m]"),
            "muon_veto_ms": f(value=c.muon_veto_ms, min=0, max=5, step=0.1, description="muon ms"),
            "shower_veto_s": f(value=c.shower_veto_s, min=0, max=2, step=0.05,
                                description="shower s"),
            "mode": w.Dropdown(options=list(MODES), value=c.mode, description="mode"),
            "extra": w.Text(value=c.extra, description="extra cut", placeholder="quality > 0.5"),
        }  # fmt: skip
        self.count = w.HTML()
        self.accidentals = w.HTML()
        self.message = w.HTML()
        self.cutflow = w.HTML()
        self.code_view = w.Textarea(layout=w.Layout(width="100%", height="170px"))
        self.plots = w.HTML()  # the histograms as inline SVG, drawn from bin counts
        self.name = w.Text(description="name")
        self.saved = w.Dropdown(options=self._saved(), description="saved")
        save, load = w.Button(description="save"), w.Button(description="load")
        save.on_click(lambda _: self._guard(lambda: self.save(self.name.value)))
        load.on_click(lambda _: self._guard(lambda: self.load(str(self.saved.value or ""))))
        for control in self.controls.values():
            control.observe(self._changed, names="value")
        self.widget = w.HBox([
            w.VBox([*self.controls.values(), w.HBox([self.name, save]),
                    w.HBox([self.saved, load])]),
            w.VBox([self.count, self.accidentals, self.message, self.plots, self.cutflow,
                    self.code_view]),
        ])  # fmt: skip
        self._run_exact(self._gen)
        self._estimate()

    # --- state ---------------------------------------------------------------------
    def cuts(self) -> Cuts:
        """The cuts the controls show now."""
        values: dict[str, Any] = {k: c.value for k, c in self.controls.items()}
        return Cuts.from_dict(values)

    def set(self, cuts: Cuts) -> None:
        """Show ``cuts`` in the controls (one exact run follows)."""
        with self._lock:
            self._holding = True
        try:
            for key, value in cuts.to_dict().items():
                self.controls[key].value = value
        finally:
            self._holding = False
        self._changed(None)

    @property
    def code(self) -> str:
        return self.cuts().code()

    def save(self, name: str) -> None:
        """Save the current cuts under ``name`` in the panel's JSON store."""
        save_selection(self.store, name, self.cuts())
        self.saved.options = self._saved()
        self.message.value = f"saved {esc(name)} in {esc(self.store)}"

    def load(self, name: str) -> None:
        """Load the cuts saved under ``name``."""
        self.set(load_selection(self.store, name))

    def wait(self, timeout: float = 60.0) -> None:
        """Wait for the scheduled exact query (if any) to finish."""
        timer, thread = self._timer, self._thread
        if timer is not None:
            timer.join(timeout)
        thread = self._thread
        if thread is not None:
            thread.join(timeout)

    # --- events --------------------------------------------------------------------
    _holding = False

    def _saved(self) -> list[str]:
        try:
            return saved_selections(self.store)
        except JaasError:
            return []

    def _guard(self, action: Any) -> None:
        try:
            action()
        except JaasError as err:
            self._show_error(err)

    def _show_error(self, err: BaseException) -> None:
        self.error = str(err)
        where = getattr(err, "argument", None)
        head = f"error in {esc(where)}: " if where else "error: "
        self.message.value = (
            f"<pre style='color:#b00'>{head}{esc(self.error)}</pre>"
            "<i>showing the last good result</i>"
        )

    def _changed(self, _change: Any) -> None:
        if self._holding:
            return
        self._estimate()
        with self._lock:
            self._gen += 1
            gen = self._gen
            if self._timer is not None:
                self._timer.cancel()
        if self.sync:
            self._run_exact(gen)
            return
        self._timer = threading.Timer(self.debounce, self._start, args=(gen,))
        self._timer.daemon = True
        self._timer.start()

    def _start(self, gen: int) -> None:
        self._thread = threading.Thread(target=self._run_exact, args=(gen,), daemon=True)
        self._thread.start()

    def _estimate(self) -> None:
        """Instant estimate from the last exact pairs still inside the new windows, plus
        the loose-sample pairs the new windows add, times the last exact survival of
        vetoes and multiplicity (exact when the windows only tighten)."""
        try:
            cuts = self.cuts()
        except JaasError as err:
            self._show_error(err)
            return
        last, res = self._last_cuts, self.result
        if self._loose is None or last is None or res is None or last.extra != cuts.extra:
            return
        kept = float(cuts.window_mask(self._last_cols).sum())
        added = float((cuts.window_mask(self._loose_cols) & ~self._loose_last).sum())
        n = kept + added * self._survival
        self.estimate = n
        self.count.value = f"<b>≈ {n:,.0f} pairs</b> <i>(estimate; exact query pending)</i>"

    def _run_exact(self, gen: int) -> None:
        try:
            cuts = self.cuts()
            if self._loose is None or self._loose_extra != cuts.extra:
                loose = self.ds.coincidence(
                    **{**cuts.loose().query(), "offtime": None}, progress=False
                )
                self._loose, self._loose_extra = loose, cuts.extra
                self._loose_cols = {c: loose.pairs[c].to_numpy() for c in WINDOW_COLUMNS}
            res = self.ds.coincidence(**cuts.query(), label="selection", progress=False)
        except JaasError as err:
            if gen == self._gen:
                self._show_error(err)
            return
        with self._lock:
            if gen != self._gen:  # a newer change arrived: this run is stale
                self.cancelled += 1
                return
            self.runs += 1
        self._loose_last = cuts.window_mask(self._loose_cols)
        in_windows = int(self._loose_last.sum())
        self._survival = res.n_pairs / in_windows if in_windows else 1.0
        self._last_cuts = cuts
        self._last_cols = {c: res.pairs[c].to_numpy() for c in WINDOW_COLUMNS}
        self._publish(cuts, res)

    def _publish(self, cuts: Cuts, res: CoincidenceResult) -> None:
        self.result, self.error = res, ""
        self.estimate = float(res.n_pairs)
        pairs = res.pairs
        hists = {}
        for name, (col, _label, rng, bins) in HISTOGRAMS.items():
            values = pairs[col].to_numpy(np.float64)
            if name == "t_mu":
                values = values / 1e9
            hists[name] = np.histogram(values[np.isfinite(values)], bins, rng)
        self.histograms = hists
        rate, err = res.rate_per_day()
        self.count.value = f"<b>{res.n_pairs:,} pairs</b> ({esc(with_error(rate, err, '/ day'))})"
        acc = res.result.accidentals
        self.accidentals.value = (
            f"accidentals: {esc(with_error(acc.estimate, acc.error, 'pairs'))}" if acc else ""
        )
        self.message.value = ""
        self.code_view.value = cuts.code()
        self.cutflow.value = self._cutflow_html(cuts, res)
        self.plots.value = self.plots_html()

    def _cutflow_html(self, cuts: Cuts, res: CoincidenceResult) -> str:
        from jaas.notebook.render import cutflow_html

        loose = self._loose
        n_loose = loose.n_pairs
        n_win = int(self._loose_last.sum())
        rows = [
            ("prompt candidates", self._count(res.masks["__prompt"]), 1.0),
            ("delayed candidates", self._count(res.masks["__delayed"]), 1.0),
            ("pairs, dt < 2 ms (loose)", n_loose, 1.0),
            ("in E, r, dt, dR windows", n_win, n_win / n_loose if n_loose else 0.0),
            ("vetoes + mode", res.n_pairs, res.n_pairs / n_win if n_win else 0.0),
        ]
        return cutflow_html(rows, "cut-flow (data)")

    def _count(self, mask: np.ndarray) -> int:
        """``mask.sum()``, remembered for a read-only mask (the column cache's): a release
        that changed no energy or radius cut does not count 10^7 booleans again."""
        got = self._counts.get(id(mask))
        if got is not None and got[0] is mask:
            return got[1]
        n = int(np.count_nonzero(mask))
        if not mask.flags.writeable:
            if len(self._counts) > 8:
                self._counts.clear()
            self._counts[id(mask)] = (mask, n)
        return n

    def plots_html(self) -> str:
        """The last good histograms as inline SVG (HTML), drawn from their bin counts."""
        return hists_svg(
            {name: (counts, edges, HISTOGRAMS[name][1])
             for name, (counts, edges) in self.histograms.items()}
        )  # fmt: skip

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)
