"""Progress of long LOCAL queries: a bar in a terminal, a widget in a Jupyter kernel,
driven by the engine's partition callback; never in the selection panel."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import jaas
from jaas.notebook.selection import Cuts

nbformat = pytest.importorskip("nbformat") if not os.environ.get("CI") else __import__("nbformat")
nbclient = pytest.importorskip("nbclient") if not os.environ.get("CI") else __import__("nbclient")


def test_terminal_bar_counts_partitions_and_result_is_unchanged(
    ds: jaas.Dataset, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    plain = ds.coincidence(**Cuts().query(), progress=False)
    capsys.readouterr()
    monkeypatch.setenv("JAAS_PROGRESS", "1")
    seen: list[tuple[int, int]] = []
    res = ds.coincidence(**Cuts().query(), partition_events=8_000, label="ibd-like")
    err = capsys.readouterr().err
    total = -(-ds.n_events // 8_000)
    assert "ibd-like" in err and f"{total}/{total}" in err and "part" in err
    assert res.n_pairs == plain.n_pairs and res.pairs.equals(plain.pairs)
    # the hook: the local backend reports (done, total) as partitions finish
    from jaas.engine.session.backend import LocalBackend

    backend = LocalBackend(on_progress=lambda d, t: seen.append((d, t)))
    ds.coincidence(**Cuts().query(), partition_events=8_000, backend=backend)
    assert seen[0] == (0, total) and seen[-1] == (total, total) and len(seen) == total + 1
    assert capsys.readouterr().err == ""  # a caller's own callback: no second bar


def test_no_bar_when_disabled_or_not_a_terminal(
    ds: jaas.Dataset, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JAAS_PROGRESS", "1")
    ds.coincidence(**Cuts().query(), partition_events=8_000, progress=False)
    assert capsys.readouterr().err == ""
    monkeypatch.delenv("JAAS_PROGRESS")  # stderr is captured here: not a terminal
    ds.ibd(partition_events=8_000)
    assert capsys.readouterr().err == ""
    from jaas.progress import query_progress

    with query_progress("q") as callback:  # no bar: the engine gets no callback, so a
        assert callback is None  # long query is not cut into partitions for it


def test_notebook_shows_a_progress_widget(sim_dir: Path, tmp_path: Path) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(
            "import jaas\n"
            f"ds = jaas.open({str(sim_dir)!r})\n"
            "res = ds.ibd(partition_events=8_000)\n"
            "print(res.n_pairs, 'pairs')"
        )
    ]
    env = {k: v for k, v in os.environ.items() if k != "JAAS_PROGRESS"}
    client = nbclient.NotebookClient(
        nb, timeout=300, kernel_name="python3", store_widget_state=True,
        resources={"metadata": {"path": str(tmp_path)}},
    )  # fmt: skip
    old = os.environ.copy()
    os.environ.clear()
    os.environ.update(env)
    try:
        client.execute()
    finally:
        os.environ.clear()
        os.environ.update(old)
    outputs = nb.cells[0].outputs
    assert not [o for o in outputs if o.output_type == "error"], outputs
    assert any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in outputs)
    state = nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    bars = [m["state"] for m in state.values() if m["model_name"] == "FloatProgressModel"]
    assert bars and bars[0]["value"] == bars[0]["max"] > 1  # every partition done
    assert "pairs" in "".join(o.get("text", "") for o in outputs)
