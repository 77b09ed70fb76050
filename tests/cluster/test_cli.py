"""`jaas cluster up/down/status` and `jaas worker --files` on real processes."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from tests.cluster.test_backend import QUERY

import jaas
from jaas.cli.cluster import cluster as cluster_cli
from jaas.cluster import Cluster, coincidence
from jaas.engine.session.cache import ColumnCache


def test_up_prints_address_and_dashboard(cli_cluster: tuple[str, str, Path]) -> None:
    address, output, state = cli_cluster
    assert address.startswith("tcp://127.0.0.1:")
    assert "dashboard  http://127.0.0.1:" in output
    assert "workers    2 (pids" in output
    res = CliRunner().invoke(cluster_cli, ["status", "--state-dir", str(state)])
    assert res.exit_code == 0, res.output
    assert res.output.count("tcp://127.0.0.1:") >= 3  # scheduler and two workers
    assert "hits" in res.output


def test_status_without_a_cluster_says_so(tmp_path: Path) -> None:
    cmd = "from jaas.cli.main import main; main()"
    res = subprocess.run(
        [sys.executable, "-c", cmd, "cluster", "status", "--state-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert res.returncode == 1
    assert f"no cluster recorded in {tmp_path}: start one with `jaas cluster up`" in res.stderr
    assert "Traceback" not in res.stderr and "ValueError" not in res.stderr


def test_up_twice_refused_and_down_stops_processes(tmp_path: Path) -> None:
    runner = CliRunner()
    state = str(tmp_path)
    res = runner.invoke(cluster_cli, ["up", "-n", "1", "--no-dashboard", "--state-dir", state])
    try:
        assert res.exit_code == 0, res.output
        assert "dashboard  -" in res.output
        again = runner.invoke(cluster_cli, ["up", "-n", "1", "--state-dir", state])
        assert again.exit_code != 0
        assert "already running" in str(again.exception)
    finally:
        down = runner.invoke(cluster_cli, ["down", "--state-dir", state])
    assert down.exit_code == 0, down.output
    pids = [int(p) for p in down.output.split(":", 1)[1].replace(",", " ").split()]
    assert len(pids) == 2  # one worker and the scheduler
    for pid in pids:
        assert (
            not Path(f"/proc/{pid}").exists()
            or b"distributed" not in Path(f"/proc/{pid}/cmdline").read_bytes()
        )
    res = runner.invoke(cluster_cli, ["down", "--state-dir", state])
    assert res.exit_code != 0
    assert "nothing to stop" in str(res.exception)


def _wait_owner(handle: Cluster, paths: list[str], old: list[str], timeout: float = 60) -> str:
    """The new worker (not in ``old``) owning ``paths``, once it has claimed them."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        reg = handle.registry()
        for w, v in reg["workers"].items():
            if w not in old and set(paths) <= set(v["files"]):
                return w
        time.sleep(0.2)
    raise AssertionError(f"no worker claimed {paths}: {handle.registry()}")


@pytest.mark.slow
def test_worker_with_files_owns_them_and_runs_their_partitions(
    handle: Cluster, cli_cluster: tuple[str, str, Path], sim_dir: Path, tmp_path: Path
) -> None:
    ds = jaas.open(sim_dir, cache=ColumnCache())
    mine = [str(Path(f.path).absolute()) for f in ds.files[3:6]]
    listfile = tmp_path / "files.txt"
    listfile.write_text("\n".join(mine) + "\n")
    old = handle.workers()
    log = open(tmp_path / "worker.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-c", "from jaas.cli.worker import worker; worker()",
         "--scheduler", cli_cluster[0], "--files", f"@{listfile}", "--name", "node-x"],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        addr = _wait_owner(handle, mine, old)
        pids = handle.client.run(os.getpid)
        assert pids[addr] == proc.pid
        res = coincidence(ds, client=handle, partition_events=50, **QUERY)  # type: ignore[arg-type]
        ran = {w for _, lo, hi, w in res.backend_info.partitions if lo >= ds.files[3].t_min
               and hi <= ds.files[5].t_max}  # fmt: skip
        assert ran == {addr}
    finally:
        proc.terminate()
        proc.wait(30)
        log.close()
    # shared storage: its files move back to the remaining workers
    deadline = time.monotonic() + 30
    while addr in handle.registry()["workers"] and time.monotonic() < deadline:
        time.sleep(0.2)
    reg = handle.registry()
    assert addr not in reg["workers"]
    assert {p for v in reg["workers"].values() for p in v["files"]} >= set(mine)


def test_worker_needs_exactly_one_file_source() -> None:
    from jaas.cli.worker import worker

    res = CliRunner().invoke(worker, ["--scheduler", "tcp://127.0.0.1:1"])
    assert res.exit_code == 2
    assert "give exactly one of --files and --query" in res.output
    res = CliRunner().invoke(
        worker, ["--scheduler", "tcp://127.0.0.1:1", "--files", "a.parquet", "--query", "d/"]
    )
    assert res.exit_code == 2


def test_ibd_command_on_the_cluster(cli_cluster: tuple[str, str, Path], sim_dir: Path) -> None:
    """A terminal user picks the backend with one option and gets the same pairs."""
    from jaas.cli.analysis import ibd

    address = cli_cluster[0]
    runner = CliRunner()
    local = runner.invoke(ibd, [str(sim_dir), "--offtime", "0"])
    remote = runner.invoke(ibd, [str(sim_dir), "--offtime", "0", "--scheduler", address])
    assert local.exit_code == 0, local.output
    assert remote.exit_code == 0, remote.output

    def pairs_line(text: str) -> str:
        return next(s for s in text.splitlines() if s.startswith("pairs"))

    assert pairs_line(remote.output) == pairs_line(local.output)
    via_backend = runner.invoke(ibd, [str(sim_dir), "--offtime", "0", "--backend", address])
    assert via_backend.exit_code == 0, via_backend.output
    assert pairs_line(via_backend.output) == pairs_line(local.output)
    unknown = runner.invoke(ibd, [str(sim_dir), "--backend", "nosuch://x:1"])
    assert "no analysis backend for 'nosuch'" in str(unknown.exception)
