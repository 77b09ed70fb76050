"""Rich HTML and short text reprs of datasets, results, exposure, fits and truth."""

from __future__ import annotations

import inspect
import re

import pytest

import jaas
from jaas.errors import SelectionError
from jaas.notebook.fmt import with_error
from jaas.notebook.render import exposure_html


@pytest.mark.parametrize(
    ("value", "err", "text"),
    [
        (12.3456, 0.0234, "12.346 ± 0.023"),
        (12.3456, 0.0789, "12.35 ± 0.08"),  # PDG: 789 >= 355, one significant digit
        (12.3456, 0.4, "12.3 ± 0.4"),  # leading digits 400 >= 355: one significant digit
        (1234.5, 12.0, "1234 ± 12"),
        (0.000123456, 0.0000021, "0.0001235 ± 0.0000021"),
        (5.0, 0.0, "5"),
        (float("nan"), 1.0, "nan"),
    ],
)
def test_values_are_rounded_to_their_uncertainty(value: float, err: float, text: str) -> None:
    assert with_error(value, err) == text


def _cells(html: str) -> list[str]:
    return re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", html)


def test_dataset_html_is_a_table_and_repr_is_one_line(ds: jaas.Dataset) -> None:
    html = ds._repr_html_()
    assert "<table" in html and "<pre>" not in html
    cells = _cells(html)
    assert cells[cells.index("events") + 1] == f"{ds.n_events:,}"
    assert "\n" not in repr(ds) and f"{ds.n_events:,} events" in repr(ds)


def test_coincidence_html_has_pairs_rate_accidentals_fit_exposure(ibd_result) -> None:  # type: ignore[no-untyped-def]
    html = ibd_result._repr_html_()
    assert "<pre>" not in html
    cells = _cells(html)
    assert cells[cells.index("pairs") + 1] == f"{ibd_result.n_pairs:,}"
    rate, err = ibd_result.rate_per_day()
    assert with_error(rate, err, "/ day of good time") in cells
    acc = ibd_result.result.accidentals
    assert with_error(acc.estimate, acc.error, "pairs") in cells
    assert "livetime" in cells and "tau" in cells
    fit = ibd_result.fit_dt()
    assert with_error(fit.tau_us, fit.tau_err_us, "us") in fit._repr_html_()
    assert len(repr(ibd_result)) < 80 and "\n" not in repr(ibd_result)


def test_exposure_and_truth_html(ibd_result) -> None:  # type: ignore[no-untyped-def]
    cells = _cells(exposure_html(ibd_result.exposure))
    live = ibd_result.exposure.livetime_ns / 1e9
    assert cells[cells.index("livetime") + 1] == f"{live:,.3f}"
    assert "all volume vetoes" in cells
    report = ibd_result.truth()
    tcells = _cells(report._repr_html_())
    assert "published" in tcells and "total" in tcells
    assert "IBD (reactor)" in tcells


def test_text_summaries_round_numbers_to_their_uncertainty(ibd_result) -> None:  # type: ignore[no-untyped-def]
    text = ibd_result.summary()
    rate, err = ibd_result.rate_per_day()
    assert f"({with_error(rate, err, 'per day of good time')})" in text
    acc = ibd_result.result.accidentals
    assert f"accidentals {with_error(acc.estimate, acc.error, 'pairs')} (" in text
    fit = ibd_result.fit_dt()
    assert f"tau = {with_error(fit.tau_us, fit.tau_err_us, 'us')}," in str(fit)
    report = ibd_result.truth()
    rate_ibd, err_ibd = report.rates_per_day["IBD (reactor)"]
    line = next(ln for ln in str(report).splitlines() if ln.strip().startswith("IBD (reactor)"))
    assert with_error(rate_ibd, err_ibd) in line
    # no number in these lines carries more digits than its uncertainty allows
    for ln in (next(ln for ln in text.splitlines() if ln.startswith("pairs")), line):
        value_s, err_s = re.search(r"([-\d.]+) ± ([\d.]+)", ln).groups()  # type: ignore[union-attr]
        assert len(value_s.partition(".")[2]) == len(err_s.partition(".")[2])


def test_selection_result_html(ds: jaas.Dataset) -> None:
    sel = ds.select("E > 1 MeV and not muon")
    cells = _cells(sel._repr_html_())
    assert f"{sel.n:,} of {len(sel.mask):,}" in cells
    assert repr(sel) == f"<selection [E > 1 MeV and not muon]: {sel.n:,} events>"


def test_ibd_and_coincidence_signatures_show_every_cut() -> None:
    ibd = inspect.signature(jaas.ibd).parameters
    for cut in ("fiducial", "prompt", "delayed", "dt_min", "dt_max", "dr_max", "mode", "vetoes"):
        assert ibd[cut].kind is inspect.Parameter.KEYWORD_ONLY
    assert ibd["dr_max"].default == "1.5 m"
    method = inspect.signature(jaas.Dataset.ibd).parameters
    assert next(iter(method)) == "self" and "dt_max" in method
    coinc = inspect.signature(jaas.Dataset.coincidence).parameters
    for cut in ("prompt", "delayed", "dt", "dr", "mode", "vetoes", "isolation", "since"):
        assert cut in coinc
    assert jaas.ibd.__signature__ is not None  # type: ignore[attr-defined]


def test_selection_error_names_argument_and_renders_without_frames(ds: jaas.Dataset) -> None:
    with pytest.raises(SelectionError) as info:
        ds.coincidence(prompt="E > 1 MeV", delayed="E >> 2", dt="1 ms")
    err = info.value
    assert err.argument == "delayed"
    lines = err._render_traceback_()
    assert lines[0].startswith("SelectionError (in argument delayed): ")
    assert "E >> 2" in lines[0] and "^" in lines[0]
    bad = [jaas.veto("detector", "mu0n", "1 ms")]
    with pytest.raises(SelectionError) as info:
        ds.coincidence(prompt="E > 1", delayed="E > 2", dt="1 ms", vetoes=bad)
    assert info.value.argument == "vetoes[0]"


def test_ibd_cut_with_bad_text_names_the_argument(ds: jaas.Dataset) -> None:
    with pytest.raises(SelectionError) as info:
        ds.ibd(prompt="E <")
    assert info.value.argument == "prompt"
