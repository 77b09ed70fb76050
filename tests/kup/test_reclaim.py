"""Crashes do not use up a file's retry budget: orphaned attempts are looked at, then settled."""

from __future__ import annotations

import datetime as dt
import json
import socket
import subprocess
import sys

import pytest

from jaas.kup.config import PipelineConfig
from jaas.kup.ledger import LOST, Ledger
from jaas.kup.membus import MemoryBus
from jaas.kup.states import MAX_LOST, Classification, JobKey, State
from jaas.kup.worker import StageWorker, process_running

CONFIG = PipelineConfig.model_validate(
    {
        "stages": [
            {
                "name": "a",
                "input": "c.a",
                "output": "c.b",
                "entry": "jaas.kup.stages:copy",
                "retries": 1,
                "backoff": {"base": 0.0},
            },
            {"name": "b", "input": "c.b", "entry": "jaas.kup.stages:noop"},
        ]
    }
)
LATER = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
DEAD_OWNER = "nohost:1:a"


@pytest.fixture
def ledger(tmp_path):
    led = Ledger(f"sqlite:///{tmp_path / 'kup.db'}", CONFIG)
    yield led
    led.close()


@pytest.fixture
def raw(tmp_path):
    p = tmp_path / "run1_0001.raw"
    p.write_bytes(b"x")
    return p


def dead(_owner: str) -> bool:
    return False


def requeue(ledger) -> None:
    ledger.fire_due_retries(LATER)


def test_lost_attempts_are_closed_and_not_charged(ledger, raw):
    key = JobKey(raw.name, "a", "1")
    ledger.submit_files([raw])
    for _ in range(3):  # three worker crashes: more than the budget of 2 attempts
        assert ledger.start(key, worker=DEAD_OWNER) is not None
        assert ledger.reclaim("a", dead) == 1
        job = ledger.job(key)
        assert job.state is State.RETRYING and "worker lost" in (job.last_reason or "")
        requeue(ledger)
    rows = ledger.attempts_of(key)
    assert len(rows) == 3
    for r in rows:  # every attempt record is closed
        assert r["ended"] is not None and r["exit_code"] is None
        assert r["classification"] == LOST and "worker lost" in r["reason"]
    t = ledger.start(key, worker="w")  # a real failure: 1 of 2 charged
    ledger.finish(t, exit_code=75, reason="io", classification=Classification.TRANSIENT)
    assert ledger.job(key).state is State.RETRYING
    requeue(ledger)
    t = ledger.start(key, worker="w")
    ledger.finish(t, exit_code=75, reason="io", classification=Classification.TRANSIENT)
    job = ledger.job(key)
    assert job.state is State.DEAD and "gave up after 2 attempts" in (job.last_reason or "")


def test_lease_expiry_closes_the_attempt_uncharged(ledger, raw):
    key = JobKey(raw.name, "a", "1")
    ledger.submit_files([raw])
    ledger.start(key, worker="h:1:a")
    assert ledger.expire_leases(LATER) == 1
    (row,) = ledger.attempts_of(key)
    assert row["ended"] is not None and row["classification"] == LOST
    assert "lease expired" in row["reason"]


def test_an_attempt_that_keeps_killing_its_worker_is_given_up(ledger, raw):
    key = JobKey(raw.name, "a", "1")
    ledger.submit_files([raw])
    for _ in range(MAX_LOST + 1):
        ledger.start(key, worker=DEAD_OWNER)
        ledger.reclaim("a", dead)
        requeue(ledger)
    job = ledger.job(key)
    assert job.state is State.DEAD and f"lost {MAX_LOST + 1} times" in (job.last_reason or "")


def worker(ledger, tmp_path) -> StageWorker:
    return StageWorker(CONFIG.stage("a"), ledger, None, MemoryBus(), tmp_path / "data")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("outcome", "state", "reason"),
    [
        ({"ok": True, "output": "/data/a/x"}, State.DONE, None),
        (
            {"ok": False, "reason": "FormatError: bad", "classification": "deterministic"},
            State.DEAD,
            "FormatError: bad",
        ),
        (
            {"ok": False, "reason": "OSError: io", "classification": "transient"},
            State.RETRYING,
            "io",
        ),
    ],
)
def test_orphan_result_is_recorded_as_if_reaped(ledger, raw, tmp_path, outcome, state, reason):
    key = JobKey(raw.name, "a", "1")
    ledger.submit_files([raw])
    ticket = ledger.start(key, worker=DEAD_OWNER)
    w = worker(ledger, tmp_path)
    result = w.result_path(ticket)
    result.parent.mkdir(parents=True)
    result.write_text(json.dumps(outcome), encoding="utf-8")
    w.ledger.reclaim("a", dead, w.inspect)
    job = ledger.job(key)
    assert job.state is state
    assert reason is None or reason in (job.last_reason or "")
    (row,) = ledger.attempts_of(key)
    assert row["ended"] is not None and row["classification"] != LOST
    if state is State.DONE:
        assert ledger.job(JobKey(raw.name, "b", "1")).state is State.QUEUED


def test_orphan_still_running_is_left_then_lost_when_it_ends_without_result(ledger, raw, tmp_path):
    key = JobKey(raw.name, "a", "1")
    ledger.submit_files([raw])
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # a worker of this host that died
    ticket = ledger.start(key, worker=f"{socket.gethostname()}:{gone.pid}:a")
    w = worker(ledger, tmp_path)
    marker = str(w.result_path(ticket))
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", marker])
    try:
        assert process_running(marker)
        assert w.reclaim() == 0  # still at work: not touched
        assert ledger.job(key).state is State.RUNNING
    finally:
        proc.kill()
        proc.wait()
    assert not process_running(marker)
    assert w.reclaim() == 1
    assert ledger.job(key).state is State.RETRYING
    (row,) = ledger.attempts_of(key)
    assert row["classification"] == LOST and row["ended"] is not None
