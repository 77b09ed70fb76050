"""Rich HTML for jaas objects in Jupyter: real tables, numbers rounded to their errors.

The engine's ``_repr_html_`` methods call these functions (imported lazily); they may
also be called directly, e.g. ``display(HTML(coincidence_html(res)))``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from jaas.notebook.fmt import esc, with_error

if TYPE_CHECKING:
    from jaas.engine.core.exposure import Exposure
    from jaas.engine.session.dataset import Dataset
    from jaas.engine.session.results import CoincidenceResult, DtFit, SelectionResult
    from jaas.engine.session.truth import TruthReport

__all__ = [
    "coincidence_html",
    "cutflow_html",
    "dataset_html",
    "exposure_html",
    "fit_html",
    "selection_html",
    "table",
    "truth_html",
]

_STYLE = (
    "<style>.jaas table{border-collapse:collapse;margin:2px 0 8px 0;font-size:12px}"
    ".jaas th,.jaas td{padding:2px 8px;border-bottom:1px solid #ddd}"
    ".jaas th{text-align:left}.jaas td.n{text-align:right;font-family:monospace}"
    ".jaas-h{font-weight:bold;margin-top:4px}</style>"
)


def _cell(value: object) -> str:
    cls = " class='n'" if str(value).lstrip("-")[:1].isdigit() else ""
    return f"<td{cls}>{esc(value)}</td>"


def table(rows: Iterable[Sequence[object]], header: Sequence[str] | None = None) -> str:
    """An HTML table; the first cell of each row is a header cell."""
    out = ["<div class='jaas'><table>"]
    if header:
        out.append("<tr>" + "".join(f"<th>{esc(h)}</th>" for h in header) + "</tr>")
    for row in rows:
        first, *rest = row
        out.append(f"<tr><th>{esc(first)}</th>" + "".join(_cell(v) for v in rest) + "</tr>")
    out.append("</table></div>")
    return "".join(out)


def _title(text: str) -> str:
    return f"<div class='jaas-h'>{esc(text)}</div>"


def dataset_html(ds: Dataset) -> str:
    """Files, runs, events, span, good time, lost data and problems of a dataset."""
    from jaas.engine.session.dataset import _fmt_time

    rows: list[tuple[object, ...]] = [
        ("files", f"{len(ds.files):,}"),
        ("runs", ", ".join(map(str, ds.runs)) or "-"),
        ("events", f"{ds.n_events:,}"),
    ]
    if ds.files:
        span = (ds.t_end - ds.t_start) / 1e9
        rows += [
            (
                "span",
                f"{_fmt_time(ds.t_start)} .. {_fmt_time(ds.t_end)} UTC ({span / 86400:.3f} d)",
            ),
            ("good time", f"{ds.good_time:,.1f} s in {len(ds.segments)} segment(s)"),
            ("columns", ", ".join(ds.columns)),
        ]
    rows += [("lost", f"{item.what}: {item.reason} ({item.seconds:.1f} s)") for item in ds.lost]
    rows += [("PROBLEM", p) for p in ds.problems]
    if ds.truth_paths:
        rows.append(("truth", f"{len(ds.truth_paths)} file(s) (simulated data)"))
    return _STYLE + _title(f"jaas dataset {ds.name or '(unnamed)'}") + table(rows)


def exposure_html(exp: Exposure) -> str:
    """Where the time went: span, good time, gaps, vetoes, livetime, volume vetoes."""

    def row(label: str, ns: int) -> tuple[str, str, str]:
        frac = f"{100 * ns / exp.span_ns:.3f} %" if exp.span_ns else "-"
        return (label, f"{ns / 1e9:,.3f}", frac)

    rows: list[tuple[object, ...]] = [
        row("span", exp.span_ns),
        row("good time", exp.good_ns),
        row("gaps", exp.gap_ns),
        row("… bad/missing files", exp.bad_ns),
        row("whole-detector vetoes", exp.veto_ns),
        row("… gap veto", exp.gap_veto_ns),
        row("livetime", exp.livetime_ns),
    ]
    out = table(rows, ("exposure", "seconds", "of span"))
    if exp.mc_pass_by_veto:
        eff, err = exp.volume_efficiency
        vrows: list[tuple[object, ...]] = [("all volume vetoes", with_error(eff, err))]
        vrows += [(n, with_error(*exp.efficiency_of(n))) for n in sorted(exp.mc_pass_by_veto)]
        out += table(vrows, ("volume veto", "efficiency (MC)"))
    return _STYLE + out


def fit_html(fit: DtFit, what: str = "dt fit") -> str:
    """The fitted lifetime and signal fraction."""
    rows: list[tuple[object, ...]] = [
        ("tau", with_error(fit.tau_us, fit.tau_err_us, "us")),
        ("signal fraction", f"{fit.signal_fraction:.3f}"),
        ("pairs fitted", f"{fit.n:,}"),
        ("converged", "yes" if fit.valid else "NO"),
    ]
    return _STYLE + table(rows, (what, ""))


def truth_html(report: TruthReport) -> str:
    """Efficiency per cut against the published values, and rates per true source."""
    from jaas.engine.session.truth import PUBLISHED_EFFICIENCY, PUBLISHED_RATES

    rows: list[tuple[object, ...]] = []
    for name, n, eff in report.cutflow:
        pub = PUBLISHED_EFFICIENCY.get(name)
        rows.append(
            (name, f"{n:,}", f"{eff * 100:.2f} %", "-" if pub is None else f"{pub * 100:.2f} %")
        )
    rows.append(
        (
            "total",
            "",
            f"{report.total_efficiency * 100:.2f} %",
            f"{PUBLISHED_EFFICIENCY['total'] * 100:.2f} %",
        )
    )
    out = table(rows, ("cut (true reactor IBD)", "pairs left", "efficiency", "published"))
    rates: list[tuple[object, ...]] = []
    for key in dict.fromkeys([*PUBLISHED_RATES, *report.rates_per_day]):
        rate, err = report.rates_per_day.get(key, (0.0, 0.0))
        pub_rate = PUBLISHED_RATES.get(key)
        rates.append((key, with_error(rate, err), "-" if pub_rate is None else f"{pub_rate:.2f}"))
    out += table(rates, ("true source", "selected / day", "published"))
    notes = "".join(f"<div>note: {esc(n)}</div>" for n in report.notes)
    return _STYLE + out + notes


def cutflow_html(rows: Sequence[tuple[str, int, float]], title: str = "cut-flow") -> str:
    """A cut-flow: (cut, count left, fraction of the previous step)."""
    body = [(name, f"{n:,}", f"{frac * 100:.2f} %") for name, n, frac in rows]
    return _STYLE + table(body, (title, "left", "of previous"))


def selection_html(res: SelectionResult) -> str:
    """Events passing one condition."""
    rows: list[tuple[object, ...]] = [
        ("condition", res.condition),
        ("events", f"{res.n:,} of {len(res.mask):,}"),
        ("rate", with_error(res.rate_hz, res.n**0.5 / res.dataset.good_time, "Hz")
         if res.dataset.good_time else "-"),
    ]  # fmt: skip
    return _STYLE + _title(f"selection on {res.dataset.name}") + table(rows)


def coincidence_html(res: CoincidenceResult) -> str:
    """Selection, pairs and rates, accidentals, dt fit, exposure and provenance."""
    sel: list[tuple[object, ...]] = []
    for key, value in res.selection.items():
        items = value if isinstance(value, list) else [value]
        sel += [(key if i == 0 else "", item) for i, item in enumerate(items)]
    rate, err = res.rate_per_day()
    numbers: list[tuple[object, ...]] = [
        ("pairs", f"{res.n_pairs:,}"),
        ("rate", with_error(rate, err, "/ day of good time")),
        ("good time", f"{res.good_days:.4f} d"),
        ("livetime", f"{res.live_days:.4f} d"),
    ]
    acc = res.result.accidentals
    acc_day = res.accidentals_per_day()
    if acc is not None and acc_day is not None:
        numbers.append(("accidentals", with_error(acc.estimate, acc.error, "pairs")))
        numbers.append(("", with_error(*acc_day, f"/ day ({acc.n_windows} off-time windows)")))
    out = [_STYLE, _title(f"{res.label} on {res.dataset.name} ({len(res.dataset.files)} files)")]
    out.append(table(numbers, ("result", "")))
    if res.n_pairs >= 5:
        out.append(fit_html(res.fit_dt()))
    out.append(exposure_html(res.exposure))
    out.append(table(sel, ("selection", "")))
    prov: dict[str, Any] = res.provenance
    out.append(f"<div style='font-size:11px;color:#666'>{esc(prov['software'])}, "
               f"{esc(prov['created'])}</div>")  # fmt: skip
    return "".join(out)
