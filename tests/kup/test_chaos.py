"""Chaos: stage workers and the broker SIGKILLed while RAW files flow; each done once, no dupes.

50 files (30 on PostgreSQL) go through ingest -> rtraw -> publish: real steps, real catalog.
"""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from jaas.cli.main import cli
from jaas.kup.config import KupSettings
from jaas.kup.ledger import Ledger
from jaas.kup.pipeline import down, pid_alive, status
from jaas.kup.states import JobKey
from jaas.kup.worker import owner_alive
from jaas.store import Catalog

STAGES_YAML = """\
stages:
  - name: ingest
    input: chaos.ingest
    output: chaos.rtraw
    entry: jaas.kup.stages:ingest
    params: {full_check: false}  # header + end record only: the default-chain test does CRCs
    timeout: 60
    retries: 30
    backoff: {base: 0.2, factor: 2, max: 1}
  - name: rtraw
    input: chaos.rtraw
    output: chaos.publish
    entry: jaas.kup.stages:rtraw
    timeout: 60
    retries: 30
    backoff: {base: 0.2, factor: 2, max: 1}
  - name: publish
    input: chaos.publish
    entry: jaas.kup.stages:publish
    params: {dataset: chaos}
    timeout: 60
    retries: 30
    backoff: {base: 0.2, factor: 2, max: 1}
"""
STAGES = ["ingest", "rtraw", "publish"]


def _invoke(runner: CliRunner, *args: str) -> str:
    res = runner.invoke(cli, list(args))
    assert res.exit_code == 0, res.output + repr(res.exception)
    return res.output


def _state(state_dir: Path) -> dict:
    return json.loads((state_dir / "state.json").read_text())


def _kill(pid: int) -> None:
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)


def _finished(state_dir: Path, n: int) -> bool:
    return all(status(state_dir).counts[s] == {"done": n} for s in STAGES)


def run_chaos(
    tmp_path: Path, db_url: str | None, seed: int, n_files: int = 50, executor: str = "local"
) -> None:
    runner = CliRunner()
    sim = tmp_path / "sim"
    _invoke(runner, "sim", str(sim), "--duration", "30s", "--mode", "hit", "--seed", str(seed),
            "--light-scale", "0.1", "--pmt-scale", "0.1", "--max-events-per-file", "10",
            "--no-truth")  # fmt: skip
    raws = sorted((sim / "raw").glob("*.raw"))[:n_files]
    n = len(raws)
    assert n == n_files
    stages = tmp_path / "stages.yaml"
    stages.write_text(textwrap.dedent(STAGES_YAML))
    state_dir = tmp_path / "kup"
    up_args = ["kup", "up", str(state_dir), "--stages", str(stages), "--session-timeout-ms", "3000"]
    if db_url is not None:
        up_args += ["--db", db_url]
    up_args += ["--executor", executor]
    rng = random.Random(seed)
    kills: list[tuple[str, int]] = []
    try:
        _invoke(runner, *up_args)
        _invoke(runner, "kup", "ingest", str(state_dir), *map(str, raws[: n // 2]))
        deadline = time.monotonic() + 300
        broker_killed = False
        while time.monotonic() < deadline and not _finished(state_dir, n):
            time.sleep(rng.uniform(0.5, 2.5))
            workers = _state(state_dir)["workers"]
            victim = rng.choice(sorted(workers))
            _kill(workers[victim])
            kills.append((victim, workers[victim]))
            if len(kills) == 3 and not broker_killed:  # mid-run: the broker goes too
                _kill(_state(state_dir)["broker"])
                broker_killed = True
                # files arriving while the broker is down: the outbox keeps them
                _invoke(runner, "kup", "ingest", str(state_dir), *map(str, raws[n // 2 :]))
            time.sleep(rng.uniform(0.0, 1.0))
            _invoke(runner, *up_args)  # restarts what died, nothing else
            if len(kills) >= 6:
                break
        assert broker_killed
        while time.monotonic() < deadline and not _finished(state_dir, n):
            time.sleep(0.5)
        st = status(state_dir)
        assert _finished(state_dir, n), (st.counts, st.failures)
        assert all(st.processes.values()), st.processes  # every killed piece came back
        for victim, pid in kills:
            assert _state(state_dir)["workers"][victim] != pid

        settings = KupSettings.load(state_dir)
        ledger = Ledger(settings.database, settings.pipeline())
        try:
            for raw in raws:
                for stage in STAGES:
                    attempts = ledger.attempts_of(JobKey(raw.name, stage, "1"))
                    assert attempts, (raw.name, stage)
                    assert sum(a["exit_code"] == 0 for a in attempts) >= 1
        finally:
            ledger.close()

        # one output file per input; no temporary leftovers once orphan attempts are done
        names = sorted(p.name for p in (settings.data / "rtraw").iterdir() if p.is_file())
        expected = sorted(r.name.removesuffix(".raw") + ".rtraw.root" for r in raws)
        for _ in range(40):
            if names == expected:
                break
            time.sleep(0.5)
            names = sorted(p.name for p in (settings.data / "rtraw").iterdir() if p.is_file())
        assert names == expected

        with Catalog(settings.database) as cat:
            files = cat.files()
            assert len({f.path for f in files}) == len(files) == 2 * n
            raw_ids = {f.id for f in files if f.kind == "raw"}
            rtraws = [f for f in files if f.kind == "rtraw"]
            assert len(raw_ids) == len(rtraws) == n
            assert all(len(f.parent_ids) == 1 and f.parent_ids[0] in raw_ids for f in rtraws)
            assert all(f.status == "good" for f in files)
            published = cat.dataset_files("chaos", 1)
            assert sorted(f.id for f in published) == sorted(f.id for f in rtraws)
        _invoke(runner, "kup", "down", str(state_dir))
    finally:
        if (state_dir / "state.json").exists():
            down(state_dir, timeout=5)


@pytest.mark.slow
def test_workers_and_broker_killed_at_random(tmp_path: Path) -> None:
    run_chaos(tmp_path, None, seed=11)


@pytest.mark.slow
def test_workers_and_broker_killed_at_random_postgres(tmp_path: Path, pg_database_url: str) -> None:
    run_chaos(tmp_path, pg_database_url, seed=12, n_files=30)  # fewer: CI time


@pytest.mark.slow
def test_workers_and_broker_killed_at_random_slurm_postgres(
    tmp_path: Path, pg_database_url: str, slurm_env: object
) -> None:
    """The same chaos with the attempts run as jobs of a real Slurm and PostgreSQL."""
    run_chaos(tmp_path, pg_database_url, seed=13, n_files=20, executor="slurm")


def test_a_killed_worker_not_yet_reaped_counts_as_dead() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.monotonic() + 10
    while Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[-1].split()[0] != "Z":
        assert time.monotonic() < deadline
        time.sleep(0.02)
    try:  # a zombie still answers kill(pid, 0); its attempts must be reclaimed all the same
        assert not owner_alive(f"{socket.gethostname()}:{proc.pid}:ingest")
        assert owner_alive(f"{socket.gethostname()}:{os.getpid()}:ingest")
        assert owner_alive(f"elsewhere:{proc.pid}:ingest")  # other hosts: lease expiry
    finally:
        proc.wait()
