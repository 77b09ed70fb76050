"""A real JupyterHub (configurable-http-proxy, local spawner, the jaas cluster service)
started on 127.0.0.1 free ports; every process it started is ended on teardown."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.portal.test_browser import browser  # noqa: F401  (real Chromium, as the portal's)

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "deploy" / "jupyterhub" / "jupyterhub_config.py"
PROXY = REPO / "deploy" / "jupyterhub" / "node_modules" / ".bin" / "configurable-http-proxy"
PASSWORD = "jaas-test-pw"


def need(ok: bool, why: str) -> None:
    """Skip when something a test needs is missing; under CI=true fail instead."""
    if not ok:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{why} (required under CI=true)")
        pytest.skip(why)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Hub:
    url: str
    scheduler: str
    state: Path
    log: Path

    def home(self, user: str) -> Path:
        return self.state / "home" / user

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


def _ours(marker: str) -> list[int]:
    """Processes whose command line or environment names our state directory."""
    pids = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit() or int(d.name) == os.getpid():
            continue
        try:
            blob = (d / "cmdline").read_bytes() + (d / "environ").read_bytes()
        except OSError:
            continue
        if marker.encode() in blob:
            pids.append(int(d.name))
    return pids


def _end(pids: list[int], grace: float) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(Path(f"/proc/{p}").exists() for p in pids):
        time.sleep(0.2)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


def hub_env(state: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JAAS_")}
    env.update(
        JAAS_HUB_DIR=str(state), JAAS_HUB_IP="127.0.0.1", JAAS_HUB_PORT=str(free_port()),
        JAAS_HUB_API_PORT=str(free_port()), JAAS_HUB_PROXY_API_PORT=str(free_port()),
        JAAS_HUB_SCHEDULER_PORT=str(free_port()), JAAS_HUB_PROXY=str(PROXY),
        PYTHONPATH=str(REPO / "src"), PATH=f"{Path(sys.executable).parent}:{env['PATH']}",
    )  # fmt: skip
    env.update(extra)
    return env


@pytest.fixture
def start_hub(tmp_path: Path) -> Iterator[object]:
    """``start_hub(**env) -> Hub``: JupyterHub running our config; stopped on teardown."""
    need(PROXY.exists(), "configurable-http-proxy not installed (`make hub-proxy`)")
    try:
        import jupyterhub  # noqa: F401
    except ImportError:
        need(False, "jupyterhub not installed (pip extra hub)")
    state = tmp_path / "hub"
    procs: list[subprocess.Popen[bytes]] = []

    def start(**extra: str) -> Hub:
        env = hub_env(state, **extra)
        log = tmp_path / "hub.log"
        with open(log, "ab") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "jupyterhub", "-f", str(CONFIG)], cwd=tmp_path,
                env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        procs.append(proc)
        hub = Hub(
            f"http://127.0.0.1:{env['JAAS_HUB_PORT']}",
            f"tcp://127.0.0.1:{env['JAAS_HUB_SCHEDULER_PORT']}", state, log,
        )  # fmt: skip
        _wait_ready(hub, proc)
        return hub

    try:
        yield start
    finally:
        for proc in procs:  # the hub stops the users' servers and its service
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        if (state / "cluster" / "cluster.json").exists():
            from jaas.cluster.local import stop

            with contextlib.suppress(Exception):
                stop(state / "cluster")
        _end(_ours(str(state)), grace=10)
        assert not _ours(str(state)), "processes of the hub left running"


def _wait_ready(hub: Hub, proc: subprocess.Popen[bytes], timeout: float = 120) -> None:
    """The hub answers and the cluster service has its workers."""
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"jupyterhub exited {proc.returncode}:\n{hub.tail()}")
        try:
            with urllib.request.urlopen(hub.url + "/hub/api/", timeout=2) as r:
                if r.status == 200 and (hub.state / "cluster" / "cluster.json").exists():
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"hub not ready in {timeout:.0f} s:\n{hub.tail()}")
