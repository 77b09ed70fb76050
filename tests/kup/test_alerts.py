"""Alert rules (pure, on hand-made snapshots), the alert store, and alerts of a real pipeline."""

from __future__ import annotations

import datetime as dt
import os
import textwrap
import time

import pytest

from jaas.errors import ConfigError
from jaas.kup.alerts import Alert, AlertRules, AlertStore, Severity, evaluate_rules
from jaas.kup.config import KupSettings
from jaas.kup.lag import LagStatus
from jaas.kup.ledger import Ledger
from jaas.kup.monitor import (
    BrokerState,
    PartitionLag,
    Snapshot,
    StageSnapshot,
    read_history,
)
from jaas.kup.pipeline import down, ingest, status, up

UP = BrokerState("127.0.0.1:9092", up=True, cluster_id="c", brokers=1)


def stage(**kw) -> StageSnapshot:
    base = {"stage": "reco", "topic": "kup.reco", "group": "jaas-kup.reco", "timeout": 100.0}
    base["counts"] = kw.pop("counts", {})
    return StageSnapshot(**base, **kw)


def rules_of(snap: Snapshot, rules: AlertRules | None = None) -> dict[str, Alert]:
    return {a.rule: a for a in evaluate_rules(snap, rules)}


def test_healthy_pipeline_has_no_alerts():
    st = stage(counts={"done": 40, "running": 2}, attempts_window=40, failures_window=1)
    st.running_ages = [10.0, 150.0]
    assert evaluate_rules(Snapshot(0.0, UP, [st])) == []


@pytest.mark.parametrize(
    ("failed", "ended", "severity"),
    [
        (1, 10, None),
        (2, 10, Severity.WARNING),
        (4, 10, Severity.WARNING),
        (5, 10, Severity.CRITICAL),
    ],
)
def test_failure_rate_thresholds(failed, ended, severity):
    st = stage(attempts_window=ended, failures_window=failed, last_failure="exit code 75: boom")
    got = rules_of(Snapshot(0.0, UP, [st]))
    if severity is None:
        assert "failure_rate" not in got
        return
    a = got["failure_rate"]
    assert a.severity is severity
    assert a.subject == "reco"
    assert a.value == pytest.approx(failed / ended)
    assert f"{failed} of {ended} attempts failed" in a.message
    assert "last: exit code 75: boom" in a.message


def test_failure_rate_needs_min_attempts():
    st = stage(attempts_window=2, failures_window=2)
    assert rules_of(Snapshot(0.0, UP, [st])) == {}
    assert "failure_rate" in rules_of(Snapshot(0.0, UP, [st]), AlertRules(min_attempts=2))


def test_stuck_running_beyond_timeout_times_k():
    st = stage(counts={"running": 3})
    st.running_ages = [50.0, 199.0, 260.0, 420.0]  # timeout 100 s, k = 2
    a = rules_of(Snapshot(0.0, UP, [st]))["stuck_running"]
    assert a.severity is Severity.CRITICAL
    assert "2 attempt(s) running for up to 420 s" in a.message
    assert rules_of(Snapshot(0.0, UP, [st]), AlertRules(stuck_factor=5.0)) == {}


@pytest.mark.parametrize(
    ("oldest", "since_start", "fires"),
    [
        (700.0, None, True),  # queued 700 s, the stage never started anything
        (700.0, 650.0, True),  # last start 650 s ago
        (700.0, 30.0, False),  # attempts still start: a backlog, not stuck
        (100.0, None, False),  # not queued long enough
    ],
)
def test_stuck_queued(oldest, since_start, fires):
    st = stage(counts={"queued": 4}, oldest_queued=oldest, since_last_start=since_start)
    got = rules_of(Snapshot(0.0, UP, [st]))
    assert ("stuck_queued" in got) is fires
    if fires:
        assert "4 job(s) queued" in got["stuck_queued"].message


@pytest.mark.parametrize(
    ("status", "severity"),
    [
        (LagStatus.OK, None),
        (LagStatus.WARN, Severity.WARNING),
        (LagStatus.STALL, Severity.CRITICAL),
        (LagStatus.STOP, Severity.CRITICAL),
        (LagStatus.REWIND, Severity.CRITICAL),
        (LagStatus.ERR, Severity.CRITICAL),
    ],
)
def test_lag_status_alerts(status, severity):
    part = PartitionLag("jaas-kup.reco", "kup.reco", 0, 5, 12, 7, status, "why not")
    st = stage(lag=7, lag_status=status, partitions=[part])
    got = rules_of(Snapshot(0.0, UP, [st]))
    if severity is None:
        assert got == {}
        return
    a = got["lag"]
    assert (a.severity, a.subject, a.value) == (severity, "jaas-kup.reco", 7.0)
    assert f"{status.value}, lag 7: why not" in a.message


def test_broker_down_is_critical():
    down_ = BrokerState("127.0.0.1:1", up=False, error="KafkaException: timed out")
    a = rules_of(Snapshot(0.0, down_, []))["broker_down"]
    assert a.severity is Severity.CRITICAL
    assert "127.0.0.1:1 does not answer: KafkaException: timed out" in a.message


@pytest.mark.parametrize(
    "kw",
    [{"failure_warn": 0.6, "failure_critical": 0.5}, {"stuck_factor": 0}, {"min_attempts": 0}],
)
def test_bad_rules_are_refused(kw):
    with pytest.raises(ConfigError, match="alert rules"):
        AlertRules(**kw)


def test_store_deduplicates_escalates_resolves_and_reraises(tmp_path):
    from sqlalchemy import create_engine

    store = AlertStore(create_engine(f"sqlite:///{tmp_path / 'a.db'}"))
    t0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    w = Alert("failure_rate", "reco", Severity.WARNING, "3 of 10 failed", 0.3)
    lag = Alert("lag", "jaas-kup.reco", Severity.CRITICAL, "STALL", 7.0)
    raised, resolved = store.sync([w, lag], t0)
    assert (len(raised), resolved) == (2, [])
    raised, _ = store.sync([w, lag], t0 + dt.timedelta(seconds=10))
    assert raised == []  # still active: no new row
    crit = Alert("failure_rate", "reco", Severity.CRITICAL, "6 of 10 failed", 0.6)
    store.sync([crit, lag], t0 + dt.timedelta(seconds=20))
    active = store.active()
    assert [(a["rule"], a["severity"]) for a in active] == [
        ("failure_rate", "critical"),  # escalated in place; ties by raised time, then id
        ("lag", "critical"),
    ]
    assert active[0]["raised"] == t0
    assert active[0]["last_seen"] == t0 + dt.timedelta(seconds=20)
    assert active[0]["message"] == "6 of 10 failed"
    assert store.counts() == {"info": 0, "warning": 0, "critical": 2}

    _, resolved = store.sync([lag], t0 + dt.timedelta(seconds=30))
    assert [(r["rule"], r["resolved"]) for r in resolved] == [
        ("failure_rate", t0 + dt.timedelta(seconds=30))
    ]
    raised, _ = store.sync([w, lag], t0 + dt.timedelta(seconds=40))
    assert raised == [w]  # a new occurrence: a new row
    rows = store.recent()
    assert [(r["rule"], r["resolved"] is None) for r in rows] == [  # newest first
        ("failure_rate", True),
        ("lag", True),
        ("failure_rate", False),
    ]
    assert store.recent(since=t0 + dt.timedelta(seconds=35))[0]["raised"] == t0 + dt.timedelta(
        seconds=40
    )


# ---- a real pipeline: stage b fails files named "bad*", the monitor process alerts ---------

STAGES = """\
stages:
  - name: a
    input: al.a
    output: al.b
    entry: jaas.kup.stages:noop
    timeout: 30
  - name: b
    input: al.b
    command:
      - "{python}"
      - "-c"
      - "import sys; sys.exit(65 if 'bad' in sys.argv[1] else 0)"
      - "{input}"
    timeout: 30
    retries: 0
"""


@pytest.mark.slow
def test_failing_stage_raises_then_resolves_an_alert(tmp_path):
    stages = tmp_path / "stages.yaml"
    stages.write_text(textwrap.dedent(STAGES))
    drop = tmp_path / "drop"
    drop.mkdir()

    def make(names):
        out = []
        for n in names:
            (drop / n).write_bytes(os.urandom(16))
            out.append(drop / n)
        return out

    sd = tmp_path / "state"
    settings = KupSettings(state_dir=sd, stages=str(stages), session_timeout_ms=3000, slots=2)
    try:
        up(settings, monitor_interval=0.3)
        ledger = Ledger(settings.database, settings.pipeline())
        store = AlertStore(ledger.engine)
        # 2 of 6 attempts fail at b: 33 % >= the 20 % warning threshold
        ingest(sd, make(["bad_1.raw", "bad_2.raw", *(f"good_{i}.raw" for i in range(4))]))

        def failure_alerts(active: bool):
            rows = store.active() if active else store.recent()
            return [r for r in rows if r["rule"] == "failure_rate" and r["subject"] == "b"]

        def wait(cond, limit=60.0):
            deadline = time.monotonic() + limit
            while not cond():
                assert time.monotonic() < deadline, (status(sd).counts, store.recent())
                time.sleep(0.3)

        wait(lambda: status(sd).counts["b"] == {"done": 4, "dead": 2})
        wait(lambda: any("2 of 6 attempts failed" in a["message"] for a in failure_alerts(True)))
        (alert,) = failure_alerts(True)  # one row, updated in place as attempts ended
        assert alert["severity"] == "warning"
        assert "exit code 65" in alert["message"]
        assert status(sd).processes["monitor"]

        # ten good files later 2 of 16 failed (12.5 %): the alert resolves, no new one
        ingest(sd, make([f"more_{i}.raw" for i in range(10)]))
        wait(lambda: not failure_alerts(True))
        wait(lambda: status(sd).counts["b"] == {"done": 14, "dead": 2})
        time.sleep(1.0)  # a few more monitor cycles: it stays resolved
        (row,) = failure_alerts(False)
        assert row["resolved"] is not None and row["resolved"] >= row["raised"]

        hist = read_history(ledger, stage="b")
        assert hist, "the monitor process wrote no history"
        assert hist[-1]["done"] <= 14
        assert max(h["done"] for h in hist) >= 4
        ledger.close()
    finally:
        stopped = down(sd, timeout=5)
    assert "monitor" in stopped
