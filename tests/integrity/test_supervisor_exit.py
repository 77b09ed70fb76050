"""A supervisor never outlives its pipeline (issue 15, "no process left running").

It exits when ``down`` leaves its marker, when the state directory is removed (stopping
what it last knew of), and when the process the pipeline was tied to (``owner``) is
killed (stopping the whole pipeline). Real processes, a real embedded broker.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from jaas.errors import ConfigError
from jaas.kup import pipeline
from jaas.kup.config import KupSettings
from jaas.kup.pipeline import DOWN_MARKER, down, pid_alive, up
from jaas.settings import settings as env_settings

STAGES = """\
stages:
  - name: a
    input: ex.a
    entry: jaas.kup.stages:noop
    timeout: 30
"""


def _settings(tmp_path: Path) -> KupSettings:
    stages = tmp_path / "stages.yaml"
    stages.write_text(STAGES, encoding="utf-8")
    return KupSettings(state_dir=tmp_path / "kup", stages=str(stages), session_timeout_ms=3000)


def _pids(state: dict[str, Any]) -> list[int]:
    roles = [state.get(r) for r in ("supervisor", "relay", "monitor", "broker")]
    return [int(p) for p in [*roles, *state["workers"].values()] if p]


def _wait(cond: Callable[[], bool], limit: float = 45.0) -> bool:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        pipeline._reap(list(pipeline._CHILDREN))
        if cond():
            return True
        time.sleep(0.2)
    return False


def _kill_all(pids: list[int]) -> None:
    for pid in pids:
        if pid_alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
    pipeline._stop([p for p in pids if p in pipeline._CHILDREN], 1.0)


def test_supervisor_exits_on_the_down_marker(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    state = up(settings, monitor_interval=None)
    try:
        sup = state["supervisor"]
        assert pid_alive(sup)
        (settings.state_dir / DOWN_MARKER).touch()  # as `down` does before stopping
        assert _wait(lambda: not pid_alive(sup)), "supervisor still running"
        assert pid_alive(state["workers"]["a"])  # it only exits; down stops the rest
        log = (settings.state_dir / "logs" / "supervisor.log").read_text()
        assert "exiting: `kup down` was run" in log
    finally:
        down(settings.state_dir, timeout=5)
        _kill_all(_pids(state))
    # a later up removes the marker, and its supervisor stays
    state = up(settings, monitor_interval=None)
    try:
        assert not (settings.state_dir / DOWN_MARKER).exists()
        time.sleep(2.5)  # two supervisor passes
        assert pid_alive(state["supervisor"])
    finally:
        down(settings.state_dir, timeout=5)
        _kill_all(_pids(state))


def test_removed_state_dir_stops_supervisor_and_pipeline(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    state = up(settings, monitor_interval=None)
    pids = _pids(state)
    try:
        assert all(pid_alive(p) for p in pids)
        log = settings.state_dir / "logs" / "supervisor.log"
        assert _wait(lambda: "supervising" in log.read_text()), "supervisor did not start"
        shutil.rmtree(settings.state_dir)
        assert _wait(lambda: not any(pid_alive(p) for p in pids)), [p for p in pids if pid_alive(p)]
    finally:
        _kill_all(pids)


_OWNER = """
import json, os, sys, time
from pathlib import Path
from jaas.kup.config import KupSettings
from jaas.kup.pipeline import up
s = KupSettings(state_dir=Path(sys.argv[1]), stages=sys.argv[2], session_timeout_ms=3000)
print(json.dumps(up(s, monitor_interval=None, owner=os.getpid())), flush=True)
time.sleep(600)
"""


def test_killed_owner_takes_its_pipeline_along(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    env = {**os.environ, "JAAS_PROGRESS": "0", "JAAS_KUP_OWNER_PID": ""}
    pids: list[int] = []
    proc = subprocess.Popen(
        [sys.executable, "-c", _OWNER, str(settings.state_dir), str(settings.stages)],
        stdout=subprocess.PIPE,
        env=env,
        start_new_session=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line, "the owner process did not start the pipeline"
        state = json.loads(line)
        pids = _pids(state)
        assert state["owner"] == proc.pid
        assert len(pids) == 4  # supervisor, relay, broker, worker a
        assert all(pid_alive(p) for p in pids)
        proc.send_signal(signal.SIGKILL)  # killed from outside: no down, no cleanup
        proc.wait()
        assert _wait(lambda: not any(pid_alive(p) for p in pids)), [p for p in pids if pid_alive(p)]
        log = (settings.state_dir / "logs" / "supervisor.log").read_text()
        assert f"its owner process {proc.pid} is gone" in log
        assert json.loads((settings.state_dir / "state.json").read_text())["broker"] is None
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
        _kill_all(pids)


def test_owner_comes_from_the_environment() -> None:
    assert env_settings({"JAAS_KUP_OWNER_PID": "4242"}).kup_owner_pid == 4242
    with pytest.raises(ConfigError, match="JAAS_KUP_OWNER_PID='me'"):
        env_settings({"JAAS_KUP_OWNER_PID": "me"})


# ---- the pipeline's children are reaped even when they died before ``down`` ----------
# ``kup.pipeline._CHILDREN`` keeps the Popen of every piece this process started, so that
# none stays a zombie; a piece killed from outside (or replaced by the supervisor) is no
# longer alive or no longer named in the state, and ``down`` used to skip it, so a full
# test run piled up earlier tests' Popens.


def _zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] == "Z"


def test_pieces_killed_before_down_are_reaped(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    state = up(settings, monitor_interval=None, supervise=False)
    worker, relay = state["workers"]["a"], state["relay"]
    try:
        assert {worker, relay, state["broker"]} <= set(pipeline._CHILDREN)
        os.kill(worker, signal.SIGKILL)  # killed from outside: dead before down
        deadline = time.monotonic() + 10
        while pid_alive(worker) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _zombie(worker)  # nobody has reaped it yet
        stopped = down(settings.state_dir, timeout=5)
        assert "worker a" not in stopped and "relay" in stopped
    finally:
        down(settings.state_dir, timeout=5)
    mine = {worker, relay, state["broker"]}
    assert not mine & set(pipeline._CHILDREN)
    assert not any(_zombie(p) for p in mine)
