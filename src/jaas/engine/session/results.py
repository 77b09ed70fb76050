"""Results of analyses: candidate tables, exposure, accidentals, fits, plots, provenance.

Every result carries its exposure (good time, time lost to vetoes and gaps, volume-veto
efficiency), the accidental estimate when off-time windows were used, and provenance
(dataset, selection text, software version), and can fetch the full events of its
candidates through the index redirect.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from jaas._fmt import with_error
from jaas._io import atomic_path
from jaas._version import __version__
from jaas.engine.core.correlate import Result, Spec
from jaas.engine.core.exposure import Exposure
from jaas.engine.session.backend import BackendInfo
from jaas.errors import ConfigError

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

    from jaas.engine.session.analysis import IBDSelection
    from jaas.engine.session.dataset import Dataset
    from jaas.engine.session.truth import TruthReport

__all__ = [
    "CoincidenceResult",
    "DtFit",
    "LazyResult",
    "SelectionResult",
    "file_label",
    "fit_exponential",
]

_DAY_NS = 86_400 * 10**9
_PAIR_COLUMNS = ("run", "file_id", "entry", "t", "E", "x", "y", "z", "r")


def _frame(columns: dict[str, np.ndarray]) -> pd.DataFrame:
    """A pandas DataFrame of ``columns`` (pandas is imported here, not by a query)."""
    import pandas as pd

    return pd.DataFrame(columns)


def _take(cols: Mapping[str, np.ndarray], name: str, idx: np.ndarray) -> np.ndarray:
    """``cols[name][idx]``; a lazily loaded mapping (distributed result) may answer
    from the rows it holds with its ``take`` without loading the whole column."""
    take = getattr(cols, "take", None)
    return take(name, idx) if callable(take) else cols[name][idx]


def _dr(cols: Mapping[str, np.ndarray], p: np.ndarray, d: np.ndarray) -> np.ndarray:
    dx = [_take(cols, c, d).astype(np.float64) - _take(cols, c, p) for c in "xyz"]
    return np.sqrt(dx[0] ** 2 + dx[1] ** 2 + dx[2] ** 2)


VetoArrays = tuple[np.ndarray, np.ndarray]  # (veto_bits, veto_intervals)


class LazyResult(Result):
    """A ``Result`` whose per-event veto arrays (``veto_bits``, ``veto_intervals``) come
    from ``provider`` on first access: a distributed backend leaves them on its workers
    until asked (``vetoed``, ``vetoed_by``, ``truth()``). Everything else is eager;
    assigning either array stores it. Pickles as a plain, loaded ``Result``.
    """

    _LAZY = ("veto_bits", "veto_intervals")

    @classmethod
    def wrap(cls, result: Result, provider: Callable[[], VetoArrays]) -> LazyResult:
        """``result`` (its own veto arrays ignored) with the veto arrays of ``provider``."""
        out = cls.__new__(cls)
        for f in fields(Result):
            if f.name not in cls._LAZY:
                object.__setattr__(out, f.name, getattr(result, f.name))
        out.__dict__["_provider"] = provider
        return out

    @property
    def loaded(self) -> bool:
        """Whether the veto arrays are here (fetched or assigned)."""
        return "_veto_bits" in self.__dict__

    def _get(self, name: str) -> np.ndarray:
        d = self.__dict__
        if f"_{name}" not in d:
            bits, intervals = d["_provider"]()
            d.setdefault("_veto_bits", bits)
            d.setdefault("_veto_intervals", intervals)
        return d[f"_{name}"]

    @property
    def veto_bits(self) -> np.ndarray:
        return self._get("veto_bits")

    @veto_bits.setter
    def veto_bits(self, value: np.ndarray) -> None:
        if "_veto_intervals" not in self.__dict__ and "_provider" in self.__dict__:
            self._get("veto_intervals")
        self.__dict__["_veto_bits"] = value

    @property
    def veto_intervals(self) -> np.ndarray:
        return self._get("veto_intervals")

    @veto_intervals.setter
    def veto_intervals(self, value: np.ndarray) -> None:
        if "_veto_bits" not in self.__dict__ and "_provider" in self.__dict__:
            self._get("veto_bits")
        self.__dict__["_veto_intervals"] = value

    def __reduce__(self) -> tuple[Any, ...]:
        return (Result, tuple(getattr(self, f.name) for f in fields(Result)))

    def __repr__(self) -> str:
        state = "loaded" if self.loaded else "on the workers"
        return f"<LazyResult: {len(self.delayed):,} pairs, veto arrays {state}>"


_LABEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9 _.+-]{0,99}")


def file_label(label: str) -> str:
    """``label`` as the stem of output file names (spaces become ``_``, lower case).

    Raises:
        ConfigError: the label could name a path (``/``, ``..``, a leading dot or
            dash) or holds other characters; outputs always stay inside their directory.
    """
    if not _LABEL.fullmatch(label) or ".." in label:
        raise ConfigError(
            f"label {label!r} is not a plain name: use letters, digits, space, '_', '-', "
            "'.' and '+' (at most 100, not starting with a dot or dash, no '..' or '/')"
        )
    return label.lower().replace(" ", "_")


def _provenance(ds: Dataset, selection: dict[str, Any]) -> dict[str, Any]:
    return {
        "dataset": ds.name,
        "files": len(ds.files),
        "runs": ds.runs,
        "span_ns": [ds.t_start, ds.t_end],
        "selection": selection,
        "software": f"jaas {__version__}",
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    }


@dataclass
class DtFit:
    """Unbinned maximum-likelihood fit of dt: exponential (capture time) plus flat."""

    tau_us: float
    tau_err_us: float
    signal_fraction: float
    n: int
    valid: bool

    def __str__(self) -> str:
        return (
            f"dt fit: tau = {with_error(self.tau_us, self.tau_err_us, 'us')}, "
            f"signal fraction {self.signal_fraction:.3f} ({self.n} pairs)"
            + ("" if self.valid else "  [fit did not converge]")
        )

    def _repr_html_(self) -> str:
        from jaas.notebook.render import fit_html

        return fit_html(self)


def fit_exponential(values: np.ndarray, lo: float, hi: float, *, tau0: float) -> DtFit:
    """Unbinned maximum-likelihood fit of exp(-x/tau) plus flat on (lo, hi) (iminuit)."""
    from iminuit import Minuit

    x = np.asarray(values, np.float64)
    x = x[(x > lo) & (x < hi)]
    if len(x) < 5:
        return DtFit(float("nan"), float("nan"), float("nan"), len(x), False)
    width = hi - lo

    def nll(tau: float, f: float) -> float:
        norm = tau * (np.exp(-lo / tau) - np.exp(-hi / tau))
        pdf = f * np.exp(-x / tau) / norm + (1 - f) / width
        return float(-np.sum(np.log(np.maximum(pdf, 1e-300))))

    m = Minuit(nll, tau=tau0, f=0.9)
    m.errordef = Minuit.LIKELIHOOD
    m.limits["tau"] = (width * 1e-3, 10 * width)
    m.limits["f"] = (0.0, 1.0)
    m.migrad()
    m.hesse()
    return DtFit(
        float(m.values["tau"]), float(m.errors["tau"]), float(m.values["f"]), len(x),
        bool(m.valid),
    )  # fmt: skip


@dataclass
class SelectionResult:
    """Events passing a condition."""

    dataset: Dataset
    condition: str
    columns: dict[str, np.ndarray]
    mask: np.ndarray

    @property
    def n(self) -> int:
        return int(self.mask.sum())

    @cached_property
    def events_table(self) -> pd.DataFrame:
        import pandas as pd  # a second of import: only when a table is asked for

        return pd.DataFrame({k: v[self.mask] for k, v in self.columns.items()})

    @property
    def rate_hz(self) -> float:
        return self.n / self.dataset.good_time if self.dataset.good_time else float("nan")

    def summary(self) -> str:
        return (
            f"selection [{self.condition}] on {self.dataset.name}: {self.n:,} of "
            f"{len(self.mask):,} events, {self.rate_hz:.4g} Hz over "
            f"{self.dataset.good_time:,.0f} s of good time"
        )

    def __repr__(self) -> str:
        return f"<selection [{self.condition}]: {self.n:,} events>"

    def _repr_html_(self) -> str:
        from jaas.notebook.render import selection_html

        return selection_html(self)

    def hist(self, column: str = "E", bins: int = 100, range: tuple[float, float] | None = None):  # type: ignore[no-untyped-def]
        """A ``hist.Hist`` of a column of the selected events."""
        import hist

        if column not in self.columns:  # unknown names: ConfigError with did-you-mean
            self.columns[column] = self.dataset.load([column])[column]
        values = self.columns[column][self.mask]
        finite = values[np.isfinite(values)] if values.dtype.kind == "f" else values
        if range is None and not finite.size:  # no (finite) values: an empty histogram
            range = (0.0, 1.0)
        lo, hi = range or (float(finite.min()), float(finite.max()) + 1e-9)
        h = hist.Hist.new.Reg(bins, lo, hi, name=column, label=column).Double()
        h.fill(values)
        return h


@dataclass
class CoincidenceResult:
    """Pairs found by a coincidence search, with exposure, accidentals and provenance."""

    dataset: Dataset
    label: str
    selection: dict[str, Any]
    spec: Spec
    result: Result
    columns: Mapping[str, np.ndarray] = field(repr=False)  # may load lazily (see _take)
    masks: Mapping[str, np.ndarray] = field(repr=False)
    ibd_selection: IBDSelection | None = None
    backend_info: BackendInfo = field(default_factory=BackendInfo)
    provenance: dict[str, Any] = field(init=False)

    def __post_init__(self) -> None:
        self.provenance = _provenance(self.dataset, self.selection)
        if self.backend_info.name != "local":
            self.provenance["backend"] = self.backend_info.describe()

    # --- numbers ------------------------------------------------------------------
    @property
    def n_pairs(self) -> int:
        return len(self.result.delayed)

    @property
    def exposure(self) -> Exposure:
        return self.result.exposure

    @property
    def good_days(self) -> float:
        return self.exposure.good_ns / _DAY_NS

    @property
    def live_days(self) -> float:
        return self.exposure.livetime_ns / _DAY_NS

    def rate_per_day(self) -> tuple[float, float]:
        """Pairs per day of good time (after all cuts, vetoes included), with its error."""
        if self.good_days <= 0:
            return float("nan"), float("nan")
        return self.n_pairs / self.good_days, np.sqrt(self.n_pairs) / self.good_days

    def accidentals_per_day(self) -> tuple[float, float] | None:
        acc = self.result.accidentals
        if acc is None or self.good_days <= 0:
            return None
        return acc.estimate / self.good_days, acc.error / self.good_days

    @cached_property
    def pairs(self) -> pd.DataFrame:
        """One row per pair: both events' quantities, dt (us) and dR (m)."""
        p, d = self.result.prompt, self.result.delayed
        out: dict[str, np.ndarray] = {}
        for role, idx in (("prompt", p), ("delayed", d)):
            for c in _PAIR_COLUMNS:
                if c in self.columns:
                    out[f"{role}_{c}"] = _take(self.columns, c, idx)
        out["dt_us"] = (_take(self.columns, "t", d) - _take(self.columns, "t", p)) / 1e3
        out["dr_m"] = _dr(self.columns, p, d)
        for name, values in self.result.pair_columns.items():  # since columns at the pairs
            if not name.startswith("off_"):
                out[name] = values
        return _frame(out)

    @cached_property
    def offtime_pairs(self) -> pd.DataFrame:
        """Pairs found in the off-time windows (accidental sample), same columns."""
        p, d = self.result.off_prompt, self.result.off_delayed
        out: dict[str, np.ndarray] = {}
        for role, idx in (("prompt", p), ("delayed", d)):
            for c in ("E", "r"):
                out[f"{role}_{c}"] = _take(self.columns, c, idx)
        out["window"] = self.result.off_window
        out["dr_m"] = _dr(self.columns, p, d)
        out["dt_us"] = (_take(self.columns, "t", d) - _take(self.columns, "t", p)) / 1e3
        return _frame(out)

    # --- fits, histograms, truth --------------------------------------------------
    def fit_dt(self) -> DtFit:
        """Fit dt with exp(-dt/tau) plus a flat (accidental) term over the dt window."""
        c = self.spec.coincidence
        assert c is not None
        return fit_exponential(
            self.pairs["dt_us"].to_numpy(), c.dt_min_ns / 1e3, c.dt_max_ns / 1e3, tau0=200.0
        )

    def fit_since(self, name: str, *, role: str = "prompt", t_max: float = 5.0) -> DtFit:
        """Fit the time since the last muon (a ``since=`` column, in s) of the pairs with
        exp(-t/tau) plus flat, e.g. to find 9Li (tau 257 ms) / 8He (172 ms).

        The returned ``tau_us`` is in microseconds like ``fit_dt``.
        """
        column = f"{role}_{name}"
        if column not in self.pairs:
            raise ConfigError(
                f"no column {column!r}; run the query with since={{{name!r}: 'muon'}} "
                f"(pair columns: {', '.join(map(str, self.pairs.columns))})"
            )
        values_us = self.pairs[column].to_numpy() / 1e3  # ns -> us
        values_us = values_us[np.isfinite(values_us)]
        return fit_exponential(values_us, 0.0, t_max * 1e6, tau0=0.25e6)

    def hist(self, column: str, bins: int = 60, range: tuple[float, float] | None = None):  # type: ignore[no-untyped-def]
        """A ``hist.Hist`` of a pair column (e.g. "prompt_E", "dt_us", "dr_m")."""
        import hist

        values = self.pairs[column].to_numpy()
        if range is None:
            range = (float(np.min(values)), float(np.max(values)) + 1e-9) if len(values) else (0, 1)
        h = hist.Hist.new.Reg(bins, *range, name=column, label=column).Double()
        h.fill(values)
        return h

    def truth(self) -> TruthReport | None:
        """Efficiency per cut and rates per source against the simulation truth
        (None when the dataset is not simulated)."""
        if not self.dataset.truth_paths:
            return None
        from jaas.engine.session.truth import truth_report

        return truth_report(self)

    # --- output -------------------------------------------------------------------
    def summary(self) -> str:
        """A text summary: selection, exposure, pairs, rates, accidentals, dt fit."""
        rate, err = self.rate_per_day()
        lines = [f"{self.label} on {self.dataset.name} ({len(self.dataset.files)} files)"]
        for key, value in self.selection.items():
            if isinstance(value, list):
                for item in value:
                    lines.append(f"  {key:<10} {item}")
            else:
                lines.append(f"  {key:<10} {value}")
        lines.append(str(self.exposure))
        lines.append(
            f"pairs       {self.n_pairs:,}  ({with_error(rate, err, 'per day of good time')})"
        )
        acc = self.accidentals_per_day()
        accidentals = self.result.accidentals
        if acc is not None and accidentals is not None:
            lines.append(
                f"accidentals {with_error(accidentals.estimate, accidentals.error, 'pairs')} "
                f"({with_error(*acc, 'per day')}; {accidentals.n_windows} off-time windows)"
            )
        if self.n_pairs >= 5:
            lines.append(str(self.fit_dt()))
        lines.append(f"provenance  {self.provenance['software']}, {self.provenance['created']}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()

    def __repr__(self) -> str:
        return f"<{self.label}: {self.n_pairs:,} pairs on {self.dataset.name!r}>"

    def _repr_html_(self) -> str:
        from jaas.notebook.render import coincidence_html

        return coincidence_html(self)

    def plot(self, path: str | os.PathLike[str] | None = None) -> Figure:
        """Prompt/delayed energy, dt and dR of the pairs (off-time sample overlaid)."""
        from jaas.engine.session.plots import plot_pairs

        return plot_pairs(self, path)

    def to_parquet(self, path: str | os.PathLike[str]) -> None:
        """Write the pairs, with the provenance and exposure in the file metadata."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.Table.from_pandas(self.pairs, preserve_index=False)
        meta = {
            b"jaas.provenance": json.dumps(self.provenance).encode(),
            b"jaas.exposure": json.dumps(self.exposure.to_dict()).encode(),
        }
        table = table.replace_schema_metadata({**(table.schema.metadata or {}), **meta})
        with atomic_path(path) as tmp:
            pq.write_table(table, tmp, compression="zstd")

    def save(self, outdir: str | os.PathLike[str]) -> dict[str, Path]:
        """Write pairs (Parquet), plots (PNG) and a summary (JSON + text) into ``outdir``."""
        name = file_label(self.label)
        out = Path(outdir)
        out.mkdir(parents=True, exist_ok=True)
        files = {
            "pairs": out / f"{name}_pairs.parquet",
            "plot": out / f"{name}_pairs.png",
            "summary": out / f"{name}_summary.txt",
            "json": out / f"{name}_result.json",
        }
        self.to_parquet(files["pairs"])
        fig = self.plot(files["plot"])
        import matplotlib.pyplot as plt

        plt.close(fig)
        text = self.summary()
        doc: dict[str, Any] = {
            "provenance": self.provenance,
            "exposure": self.exposure.to_dict(),
            "n_pairs": self.n_pairs,
            "rate_per_day": self.rate_per_day(),
        }
        report = self.truth()
        if report is not None:
            text += "\n\n" + str(report)
            doc["truth"] = report.to_dict()
        files["summary"].write_text(text + "\n")
        files["json"].write_text(json.dumps(doc, indent=2, default=float) + "\n")
        return files

    def skim(self, path: str | os.PathLike[str], **kwargs: Any) -> Any:
        """Write the pairs' full events as a ROOT file + entry lists (``jaas.notebook.skim``)."""
        from jaas.notebook.skim import skim

        return skim(self, path, **kwargs)

    def events(self, *, catalog: Any = None, paths: Any = None, with_hits: bool = True) -> Any:
        """Fetch the full ESD (and RTRAW hits) of every pair's events via the index redirect.

        Rows: the prompt events of all pairs, then their delayed events. Files written by
        other software (``jaas store add --schema``) are read through their schema
        mapping: their rows hold the mapped columns (and its ``extra`` ones); they have
        no hits, so ``hits`` is None when every file is foreign (see
        :func:`jaas.store.redirect.fetch_events`).

        Args:
            catalog: a ``jaas.store.Catalog`` resolving file ids to ESD/RTRAW paths.
            paths: or ``{file_id: (esd_path, rtraw_path)}``.
            with_hits: also read the RTRAW hits.
        """
        from jaas.store.redirect import fetch_events

        keys = []
        for role in ("prompt", "delayed"):
            keys += list(
                zip(self.pairs[f"{role}_file_id"], self.pairs[f"{role}_entry"], strict=True)
            )
        return fetch_events(
            [(int(f), int(e)) for f, e in keys], catalog=catalog, paths=paths, with_hits=with_hits
        )
