"""A cut-flow on data, and plot() drawing one figure with error bars."""

from __future__ import annotations

import jaas
from jaas.notebook import data_cutflow

QUERY = {
    "prompt": "0.7 MeV < E < 12 MeV and r < 17.2 m and not muon",
    "delayed": "1.9 MeV < E < 2.5 MeV and r < 17.2 m and not muon",
    "dt": "1 ms",
    "dr": "1.5 m",
}


def test_cutflow_on_data_ends_at_the_query_result(ds: jaas.Dataset) -> None:
    vetoes = [jaas.veto("detector", "muon", "1.5 ms")]
    flow = data_cutflow(ds, **QUERY, vetoes=vetoes, mode="exactly_one")
    counts = flow.counts()
    assert list(counts) == [
        "triggers", "prompt candidates", "delayed candidates", "pairs in dt window",
        "dR cut", "vetoes", "mode exactly_one",
    ]  # fmt: skip
    assert counts["triggers"] == ds.n_events
    assert counts["pairs in dt window"] >= counts["dR cut"] >= counts["vetoes"]
    final = ds.coincidence(**QUERY, vetoes=vetoes, mode="exactly_one")
    assert counts["mode exactly_one"] == final.n_pairs
    assert counts["prompt candidates"] == int(final.masks["__prompt"].sum())
    html = flow._repr_html_()
    assert "<table" in html and f"{final.n_pairs:,}" in html
    assert "cut-flow" in str(flow)


def test_plot_has_error_bars_and_one_figure(ibd_result) -> None:  # type: ignore[no-untyped-def]
    import matplotlib.pyplot as plt
    from matplotlib.container import ErrorbarContainer

    before = len(plt.get_fignums())
    fig = ibd_result.plot()
    assert len(fig.axes) == 4
    assert all(any(isinstance(c, ErrorbarContainer) for c in ax.containers) for ax in fig.axes)
    assert len(plt.get_fignums()) <= before + 1
    labels = [ax.get_ylabel() for ax in fig.axes]  # units and bin width on every axis
    assert labels[0] == "pairs / 0.2 MeV" and labels[2].endswith(" us")
    assert fig.axes[0].get_xlabel() == "prompt energy [MeV]"
    assert "±" in fig._suptitle.get_text()  # type: ignore[union-attr]
    plt.close(fig)
