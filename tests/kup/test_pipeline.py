"""End to end on embedded defaults: `jaas kup up/ingest/status/down` with a copy/no-op chain."""

from __future__ import annotations

import json
import os
import signal
import textwrap
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from jaas.cli.kup import kup
from jaas.kup.config import KupSettings
from jaas.kup.ledger import Ledger
from jaas.kup.pipeline import down, ingest, pid_alive, status, up
from jaas.kup.states import JobKey

# stage c fails (transient exit 75) for files whose name contains "bad"
STAGES = """\
stages:
  - name: a
    input: e2e.a
    output: e2e.b
    entry: jaas.kup.stages:copy
    timeout: 30
  - name: b
    input: e2e.b
    output: e2e.c
    entry: jaas.kup.stages:noop
    timeout: 30
  - name: c
    input: e2e.c
    command:
      - "{python}"
      - "-c"
      - "import sys; print('checking', sys.argv[1]); sys.exit(75 if 'bad' in sys.argv[1] else 0)"
      - "{input}"
    timeout: 30
    retries: 1
    backoff: {base: 0.2, factor: 2, max: 1}
"""


@pytest.fixture
def files(tmp_path):
    drop = tmp_path / "drop"
    drop.mkdir()
    out = []
    for i in range(10):
        p = drop / f"run5_{i:04d}.raw"
        p.write_bytes(os.urandom(256))
        out.append(p)
    return out


@pytest.fixture
def stages(tmp_path):
    p = tmp_path / "stages.yaml"
    p.write_text(textwrap.dedent(STAGES))
    return p


@pytest.fixture
def state_dir(tmp_path):
    sd = tmp_path / "kupstate"
    yield sd
    if (sd / "state.json").exists():
        down(sd, timeout=5)


def wait_for(state_dir, done, limit=90.0):
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        st = status(state_dir)
        if done(st):
            return st
        time.sleep(0.3)
    raise AssertionError(f"pipeline did not finish in {limit} s: {st.counts} {st.failures}")


def check_exactly_once(
    state_dir: Path, files: list[Path], stages: list[str], also: tuple[str, ...] = ()
) -> None:
    settings = KupSettings.load(state_dir)
    ledger = Ledger(settings.database, settings.pipeline())
    for f in files:
        for stage in stages:
            attempts = ledger.attempts_of(JobKey(f.name, stage, "1"))
            assert len(attempts) == 1, (f.name, stage, attempts)
            assert attempts[0]["exit_code"] == 0
    ledger.close()
    copied = sorted(p.name for p in (settings.data / "a").iterdir())
    assert copied == sorted([f.name for f in files] + list(also))  # no stray output
    for f in files:
        assert (settings.data / "a" / f.name).read_bytes() == f.read_bytes()


@pytest.mark.slow
def test_cli_end_to_end_with_a_failing_file(tmp_path, files, stages, state_dir):
    bad = tmp_path / "drop" / "run5_bad.raw"
    bad.write_bytes(b"junk")
    runner = CliRunner()
    res = runner.invoke(
        kup,
        [
            "up",
            str(state_dir),
            "--stages",
            str(stages),
            "--slots",
            "2",
            "--session-timeout-ms",
            "3000",
        ],
    )
    assert res.exit_code == 0, res.output
    assert "broker 127.0.0.1:" in res.output
    res = runner.invoke(kup, ["ingest", str(state_dir), *map(str, files), str(bad)])
    assert res.exit_code == 0, res.output
    assert "queued 11 file(s)" in res.output
    res = runner.invoke(kup, ["ingest", str(state_dir), str(files[0])])
    assert "queued 0 file(s), 1 already known" in res.output

    st = wait_for(state_dir, lambda s: s.files_done("c") == 10 and s.counts["c"].get("dead") == 1)
    assert st.files_done("a") == st.files_done("b") == 11
    check_exactly_once(state_dir, files, ["a", "b", "c"], also=(bad.name,))

    res = runner.invoke(kup, ["status", str(state_dir)])
    assert res.exit_code == 0, res.output
    (line,) = [ln for ln in res.output.splitlines() if "run5_bad.raw" in ln]
    assert "dead" in line
    assert "gave up after 2 attempts: exit code 75: checking" in line
    assert "worker c" in res.output

    res = runner.invoke(kup, ["down", str(state_dir)])
    assert res.exit_code == 0, res.output
    assert "worker a" in res.output
    assert "broker" in res.output
    state = json.loads((state_dir / "state.json").read_text())
    assert state["workers"] == {}
    assert all(not v for k, v in status(state_dir).processes.items())


@pytest.mark.slow
def test_broker_killed_and_restarted_mid_run(files, stages, state_dir):
    settings = KupSettings(
        state_dir=state_dir,
        stages=str(stages),
        session_timeout_ms=3000,
        reconcile_interval=0.5,
    )
    state = up(settings)
    ingest(state_dir, files[:5])
    wait_for(state_dir, lambda s: s.files_done("a") >= 1)
    os.kill(state["broker"], signal.SIGKILL)
    deadline = time.monotonic() + 5
    while pid_alive(state["broker"]) and time.monotonic() < deadline:
        time.sleep(0.05)
    ingest(state_dir, files[5:])  # accepted while the broker is down: the outbox keeps it
    time.sleep(1.0)
    again = up(settings)  # restarts only the broker, on the same port
    assert again["broker"] != state["broker"]
    assert again["bootstrap"] == state["bootstrap"]
    assert again["workers"] == state["workers"]
    st = wait_for(state_dir, lambda s: s.files_done("c") == 10)
    assert st.failures == []
    check_exactly_once(state_dir, files, ["a", "b", "c"])
    assert "republished" in (state_dir / "logs" / "relay.log").read_text()
