"""Operator tools on a live pipeline: `kup retry` reruns a job, `kup watch` keeps ingesting."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from click.testing import CliRunner

from jaas.cli.kup import kup
from jaas.kup.config import KupSettings
from jaas.kup.ledger import Ledger
from jaas.kup.pipeline import down, ingest, up
from jaas.kup.states import JobKey, State

# the stage succeeds only once an operator has put FILE.ok next to the input
STAGES = """\
stages:
  - name: check
    input: live.check
    command:
      - "{python}"
      - "-c"
      - "import os, sys; sys.exit(0 if os.path.exists(sys.argv[1] + '.ok') else 65)"
      - "{input}"
    timeout: 30
"""


def wait_state(ledger: Ledger, key: JobKey, state: State, limit: float = 60.0) -> bool:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        job = ledger.job(key)
        if job is not None and job.state is state:
            return True
        time.sleep(0.2)
    return False


def test_kup_retry_on_a_live_pipeline_runs_the_job_again_to_completion(tmp_path):
    stages = tmp_path / "stages.yaml"
    stages.write_text(STAGES, encoding="utf-8")
    sd = tmp_path / "kup"
    settings = KupSettings(state_dir=sd, stages=str(stages), session_timeout_ms=3000)
    raw = tmp_path / "run3_0001.raw"
    raw.write_bytes(b"payload")
    key = JobKey(raw.name, "check", "1")
    up(settings, monitor_interval=None)
    ledger = Ledger(settings.database, settings.pipeline())
    try:
        ingest(sd, [raw])
        assert wait_state(ledger, key, State.DEAD)  # exit 65: deterministic, no retry
        Path(f"{raw}.ok").write_text("fixed", encoding="utf-8")  # the operator fixes the cause
        res = CliRunner().invoke(kup, ["retry", str(sd), "--file", raw.name, "--why", "fixed"])
        assert res.exit_code == 0, res.output
        assert wait_state(ledger, key, State.DONE)
        attempts = ledger.attempts_of(key)
        assert [a["exit_code"] for a in attempts] == [65, 0]
        assert [a["action"] for a in ledger.audit_log(raw.name)] == ["retry"]
    finally:
        ledger.close()
        down(sd, timeout=5)


def test_kup_watch_loop_ingests_files_as_they_arrive_and_stops_on_sigterm(tmp_path):
    sd = tmp_path / "kup"
    settings = KupSettings(state_dir=sd)
    sd.mkdir()
    settings.save()
    drop = tmp_path / "drop"
    drop.mkdir()
    argv = [sys.executable, "-m", "jaas.cli.main", "kup", "watch", str(sd), str(drop)]
    argv += ["--interval", "0.2", "--stable-polls", "1"]
    env = {**os.environ, "JAAS_PROGRESS": "0"}
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    ledger = Ledger(settings.database, settings.pipeline())
    try:
        for i in range(3):  # files keep arriving while the loop runs
            (drop / f"run4_{i:04d}.raw").write_bytes(b"event data %d" % i)
            key = JobKey(f"run4_{i:04d}.raw", settings.pipeline().stages[0].name, "1")
            assert wait_state(ledger, key, State.QUEUED, 30), f"file {i} not ingested"
    finally:
        ledger.close()
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    text = out.decode()
    assert all(f"ingested run4_{i:04d}.raw" in text for i in range(3)), text
