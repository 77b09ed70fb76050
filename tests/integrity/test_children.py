"""The pipeline's children are reaped even when they died before ``down`` (issue 15).

``kup.pipeline._CHILDREN`` keeps the Popen of every piece this process started, so that
none stays a zombie; a piece killed from outside (or replaced by the supervisor) is no
longer alive or no longer named in the state, and ``down`` used to skip it, so a full
test run piled up earlier tests' Popens.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from jaas.kup import pipeline
from jaas.kup.config import KupSettings
from jaas.kup.pipeline import down, pid_alive, up

STAGES = """\
stages:
  - name: a
    input: ch.a
    entry: jaas.kup.stages:noop
    timeout: 30
"""


def _zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] == "Z"


def test_pieces_killed_before_down_are_reaped(tmp_path: Path) -> None:
    stages = tmp_path / "stages.yaml"
    stages.write_text(STAGES, encoding="utf-8")
    settings = KupSettings(state_dir=tmp_path / "kup", stages=str(stages))
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
