"""The supervisor restarts a killed worker, relay or monitor; restarts are counted and shown."""

from __future__ import annotations

import os
import signal
import time

from click.testing import CliRunner

from jaas.cli.kup import kup
from jaas.kup.config import KupSettings
from jaas.kup.ledger import Ledger
from jaas.kup.pipeline import _read_state, down, ingest, pid_alive, status, up
from jaas.kup.states import JobKey

STAGES = """\
stages:
  - name: a
    input: sup.a
    output: sup.b
    entry: jaas.kup.stages:copy
    timeout: 30
  - name: b
    input: sup.b
    entry: jaas.kup.stages:noop
    timeout: 30
"""


def wait(cond, limit: float = 30.0) -> bool:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.2)
    return False


def test_killed_pieces_come_back_and_restarts_are_shown(tmp_path):
    stages = tmp_path / "stages.yaml"
    stages.write_text(STAGES, encoding="utf-8")
    sd = tmp_path / "kup"
    settings = KupSettings(state_dir=sd, stages=str(stages), session_timeout_ms=3000)
    state = up(settings, monitor_interval=2.0)
    pids = []
    try:
        assert pid_alive(state["supervisor"])
        victims = {"worker a": state["workers"]["a"], "relay": state["relay"]}
        victims["monitor"] = state["monitor"]
        for pid in victims.values():
            os.kill(pid, signal.SIGKILL)
        assert wait(lambda: set(_read_state(sd).get("restarts", {})) >= set(victims))
        new = _read_state(sd)
        assert new["workers"]["a"] != victims["worker a"] and new["relay"] != victims["relay"]
        pids = [new["relay"], new["monitor"], *new["workers"].values(), new["supervisor"]]
        st = status(sd)
        assert all(st.processes.values()), st.processes
        assert st.restarts == {"worker a": 1, "relay": 1, "monitor": 1}
        out = CliRunner().invoke(kup, ["status", str(sd)]).output
        assert "restarted 1 time" in out
        # the restarted pieces do their job: a file goes through both stages
        raw = tmp_path / "run1_0001.raw"
        raw.write_bytes(b"data")
        ingest(sd, [raw])
        ledger = Ledger(settings.database, settings.pipeline())
        try:
            key = JobKey(raw.name, "b", "1")
            assert wait(lambda: getattr(ledger.job(key), "state", None) == "done", 60)
        finally:
            ledger.close()
    finally:
        stopped = down(sd, timeout=5)
    assert stopped[0] == "supervisor"
    assert not any(pid_alive(p) for p in pids)


def test_systemd_units_start_real_modules_and_restart_always():
    import importlib
    import re
    from pathlib import Path

    units = sorted((Path(__file__).parents[2] / "deploy" / "systemd").glob("*.service"))
    assert {u.name for u in units} >= {
        "jaas-kup-relay@.service",
        "jaas-kup-monitor@.service",
        "jaas-kup-worker@.service",
    }
    for unit in units:
        text = unit.read_text(encoding="utf-8")
        assert "Restart=always" in text, unit.name
        (module,) = re.findall(r"-m (jaas\.kup\.\w+)", text)
        assert hasattr(importlib.import_module(module), "main"), unit.name
