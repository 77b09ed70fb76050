"""SelectionPanel logic without a browser: set widget values from Python, assert the
counts, histograms, code, cut-flow, saved selections and error text."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

import jaas
from jaas.errors import ConfigError
from jaas.notebook.panel import HISTOGRAMS, SelectionPanel
from jaas.notebook.selection import Cuts


@pytest.fixture
def panel(ds: jaas.Dataset, tmp_path: Path) -> SelectionPanel:
    return SelectionPanel(ds, store=tmp_path / "sel.json", sync=True)


def test_panel_result_equals_the_code_it_shows(panel: SelectionPanel, ds: jaas.Dataset) -> None:
    assert panel.result is not None and panel.error == ""
    direct = ds.coincidence(**panel.cuts().query())
    assert panel.result.n_pairs == direct.n_pairs > 0
    assert f"{direct.n_pairs:,} pairs" in panel.count.value
    assert "accidentals" in panel.accidentals.value
    code = panel.code_view.value
    assert code.startswith("ds.coincidence(") and "dt=('0 us', '1000 us')" in code
    assert "jaas.veto('detector', 'muon', '1.5 ms', name='muon')" in code
    assert set(panel.histograms) == set(HISTOGRAMS)
    counts, edges = panel.histograms["dt"]
    assert len(edges) == len(counts) + 1
    in_range = direct.pairs["dt_us"].between(*HISTOGRAMS["dt"][2])
    assert counts.sum() == in_range.sum()
    svg = panel.plots.value
    assert svg.count("<svg") == len(HISTOGRAMS) and "dt [us]" in svg and "pairs / bin" in svg
    assert "cut-flow" in panel.cutflow.value


def test_moving_dt_slider_changes_count_and_histogram(
    panel: SelectionPanel, ds: jaas.Dataset
) -> None:
    before = panel.result.n_pairs  # type: ignore[union-attr]
    panel.controls["dt_us"].value = (0.0, 200.0)
    assert panel.result is not None
    expected = ds.coincidence(**Cuts(dt_us=(0.0, 200.0)).query()).n_pairs
    assert panel.result.n_pairs == expected < before
    assert panel.histograms["dt"][0][np.searchsorted(HISTOGRAMS["dt"][2], 0) + 5 :].sum() == 0
    assert "dt=('0 us', '200 us')" in panel.code_view.value
    assert panel.estimate == expected


def test_estimate_while_dragging_is_close_to_exact(ds: jaas.Dataset, tmp_path: Path) -> None:
    panel = SelectionPanel(ds, store=tmp_path / "s.json", debounce=30.0)  # exact run held back
    panel.wait()
    exact_before = panel.result.n_pairs  # type: ignore[union-attr]
    panel.controls["dr_max"].value = 0.8
    estimate = panel.estimate
    assert "estimate" in panel.count.value
    assert panel.result.n_pairs == exact_before  # type: ignore[union-attr]
    exact = ds.coincidence(**Cuts(dr_max=0.8).query()).n_pairs
    assert estimate == pytest.approx(exact, rel=0.1, abs=2)
    # loosening: the loose sample adds pairs (a rough upper estimate: it has no vetoes
    # and no multiplicity rule, only their average survival)
    panel.controls["dr_max"].value = 2.5
    exact = ds.coincidence(**Cuts(dr_max=2.5).query()).n_pairs
    assert exact_before <= panel.estimate <= 3 * exact


def test_stale_runs_are_cancelled(ds: jaas.Dataset, tmp_path: Path) -> None:
    panel = SelectionPanel(ds, store=tmp_path / "s.json", debounce=0.05)
    panel.wait()
    for hi in (900.0, 800.0, 700.0, 300.0):
        panel.controls["dt_us"].value = (0.0, hi)
    time.sleep(0.3)
    panel.wait()
    panel.wait()
    expected = ds.coincidence(**Cuts(dt_us=(0.0, 300.0)).query()).n_pairs
    assert panel.result.n_pairs == expected  # type: ignore[union-attr]
    assert panel.runs <= 3  # the first run, the last one, at most one more that raced


def test_bad_expression_shows_error_and_keeps_last_good(panel: SelectionPanel) -> None:
    good = panel.result
    panel.controls["extra"].value = "quality >> 0.5 or __import__('os')"
    assert panel.result is good
    assert "error in delayed" in panel.message.value or "error in prompt" in panel.message.value
    assert "last good result" in panel.message.value
    assert "&gt;&gt;" in panel.message.value  # escaped, shown with the caret
    assert f"{good.n_pairs:,} pairs" in panel.count.value  # type: ignore[union-attr]
    panel.controls["extra"].value = "quality > 0"
    assert panel.error == "" and panel.message.value == ""


def test_save_and_reload_by_name(panel: SelectionPanel, tmp_path: Path) -> None:
    panel.controls["dr_max"].value = 1.0
    panel.controls["mode"].value = "nearest"
    panel.save("tight")
    assert json.loads((tmp_path / "sel.json").read_text())["tight"]["dr_max"] == 1.0
    assert "tight" in panel.saved.options
    panel.controls["dr_max"].value = 2.0
    panel.load("tight")
    assert panel.cuts() == Cuts(dr_max=1.0, mode="nearest")
    assert "dr='1 m'" in panel.code_view.value
    with pytest.raises(ConfigError, match=r"no selection named 'nope'.*saved: tight"):
        panel.load("nope")


def test_corrupt_store_is_a_clear_error(ds: jaas.Dataset, tmp_path: Path) -> None:
    store = tmp_path / "bad.json"
    store.write_text("{not json")
    panel = SelectionPanel(ds, store=store, sync=True)
    assert panel.saved.options == ()
    panel.name.value = "x"
    panel._guard(lambda: panel.save("x"))
    assert "not a JSON selection file" in panel.message.value


def test_release_with_new_pair_cuts_reuses_the_veto_phase(
    panel: SelectionPanel, monkeypatch: pytest.MonkeyPatch
) -> None:
    from jaas.engine.core import partition

    calls: list[object] = []
    real = partition.run_vetoes

    def counting(*args: object, **kwargs: object) -> object:
        calls.append(args[1])
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(partition, "run_vetoes", counting)
    panel.controls["dr_max"].value = 1.0  # a pair cut: same vetoes, same stream
    panel.controls["dt_us"].value = (0.0, 700.0)
    assert panel.result is not None and calls == []
    panel.controls["muon_veto_ms"].value = 2.0  # a new veto: computed once
    assert len(calls) == 1
