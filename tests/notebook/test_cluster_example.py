"""examples/cluster.ipynb executes with nbclient against a local Dask cluster of real
processes it starts and stops itself: the second query is served from the workers'
column caches and the result equals the local engine's."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat") if not os.environ.get("CI") else __import__("nbformat")
nbclient = pytest.importorskip("nbclient") if not os.environ.get("CI") else __import__("nbclient")
pytest.importorskip("distributed")

NOTEBOOK = Path(__file__).resolve().parents[2] / "examples" / "cluster.ipynb"


def _dask_processes(marker: str) -> list[int]:
    pids = []
    for d in Path("/proc").iterdir():
        with contextlib.suppress(OSError):
            cmd = (d / "cmdline").read_bytes()
            if b"distributed.cli" in cmd and marker.encode() in cmd:
                pids.append(int(d.name))
    return pids


@pytest.mark.slow
def test_cluster_example_runs_on_a_local_cluster(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # the kernel's temporary files, ours
    monkeypatch.delenv("JAAS_SCHEDULER", raising=False)
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(
        nb, timeout=600, kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    )  # fmt: skip
    try:
        client.execute()
    finally:
        from jaas.cluster.local import stop

        for state in tmp_path.glob("jaas-cluster-*"):
            if (state / "cluster.json").exists():
                stop(state)
    assert not _dask_processes(str(tmp_path)), "the notebook left cluster processes"
    text = "".join(
        o.get("text", "") for c in nb.cells for o in c.get("outputs", []) if o.get("text")
    )
    assert "identical to the local engine: True" in text
    hits, misses = text.split("second query: ")[1].split(" cache hits, ")
    assert int(hits) > 0 and misses.startswith("0 misses")
    html = "".join(
        str(o.get("data", {}).get("text/html", "")) for c in nb.cells for o in c.get("outputs", [])
    )
    assert "jaas cluster" in html and "tcp://127.0.0.1:" in html  # the cluster's card
    assert "worker" in html and "<table" in html  # partitions per worker
    assert any("image/png" in o.get("data", {}) for c in nb.cells for o in c.get("outputs", []))
