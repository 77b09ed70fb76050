"""The hub's shared middleware (`jaas hub middleware`, what the hub runs as a service):
a kernel's default backend (JAAS_SCHEDULER) and an SSH user's `jaas ibd --scheduler`
reach the same cluster and share its column cache; SIGTERM stops every process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from jaas.cluster.local import _ours
from jaas.sim import SimConfig, simulate
from tests.hub.conftest import REPO, free_port

pytest.importorskip("distributed")


def _jaas(*args: str, env: dict[str, str]) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "jaas.cli.main", *args], env=env, capture_output=True,
        text=True, timeout=300, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


def _cache(address: str) -> tuple[int, int]:
    import jaas.cluster

    with jaas.cluster.connect(address) as c:
        stats = c.cache_stats().values()
    return sum(s.hits for s in stats), sum(s.misses for s in stats)


@pytest.mark.slow
def test_kernels_and_ssh_users_share_the_middleware_cache(tmp_path: Path) -> None:
    data = tmp_path / "run"
    simulate(SimConfig(duration_s=60, seed=5, mode="index", scale={"reactor_ibd": 30},
                       max_events_per_file=200), data)  # fmt: skip
    state = tmp_path / "cluster"
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("JAAS_")}
    env["PYTHONPATH"] = str(REPO / "src")
    log = tmp_path / "middleware.log"
    with open(log, "w") as err:
        service = subprocess.Popen(
            [sys.executable, "-m", "jaas.cli.main", "hub", "middleware", "--port", str(port),
             "--workers", "2", "--state-dir", str(state)],
            env=env, stderr=err, start_new_session=True,
        )  # fmt: skip
    pids: list[int] = []
    try:
        deadline = time.monotonic() + 90
        while not (state / "cluster.json").exists():
            assert service.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "middleware did not start"
            time.sleep(0.2)
        lc = json.loads((state / "cluster.json").read_text())
        pids = [lc["scheduler_pid"], *lc["worker_pids"]]
        assert lc["address"] == address

        # a user kernel: no backend argument, JAAS_SCHEDULER from the spawner
        kernel = _jaas("ibd", str(data), "--offtime", "0", env={**env, "JAAS_SCHEDULER": address})
        hits, misses = _cache(address)
        assert misses > 0
        # an SSH user, same query on the same cluster: served from the cache
        ssh = _jaas("ibd", str(data), "--offtime", "0", "--scheduler", address, env=env)
        hits2, misses2 = _cache(address)
        assert (misses2, hits2 > hits) == (misses, True)
        assert kernel.split("pairs")[0][-40:] == ssh.split("pairs")[0][-40:]
    finally:
        service.send_signal(signal.SIGTERM)
        try:
            service.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(service.pid, signal.SIGKILL)
            service.wait()
    assert service.returncode == 0
    assert not [p for p in pids if _ours(p)], "cluster processes left after SIGTERM"
