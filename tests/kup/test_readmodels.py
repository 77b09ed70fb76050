"""Read models of the ledger: counts, throughput, failure rate, file history, keyset paging."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from sqlalchemy import insert

from jaas.errors import ConfigError
from jaas.kup.config import PipelineConfig
from jaas.kup.ledger import Ledger, jobs
from jaas.kup.readmodels import ReadModels
from jaas.kup.states import Classification, JobKey, State

CONFIG = PipelineConfig.model_validate(
    {
        "stages": [
            {"name": "a", "input": "r.a", "output": "r.b", "entry": "jaas.kup.stages:copy"},
            {"name": "b", "input": "r.b", "entry": "jaas.kup.stages:noop"},
        ]
    }
)


@pytest.fixture
def ledger(tmp_path):
    led = Ledger(f"sqlite:///{tmp_path / 'kup.db'}", CONFIG)
    yield led
    led.close()


def reads(ledger) -> ReadModels:
    return ReadModels(ledger.engine, [s.name for s in CONFIG.stages])


def test_counts_throughput_failure_rate_and_file_history(ledger, tmp_path):
    t0 = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    f = tmp_path / "run7_0001.raw"
    f.write_bytes(b"x")
    ledger.submit_files([f])
    key = JobKey(f.name, "a", "1")
    first = ledger.start(key, worker="h:1:a", log_dir="/logs")
    assert first is not None
    ledger.finish(
        first, exit_code=75, reason="broker gone", classification=Classification.TRANSIENT
    )
    ledger.fire_due_retries(dt.datetime.now(dt.UTC) + dt.timedelta(days=1))
    second = ledger.start(key, worker="h:2:a", log_dir="/logs")
    assert second is not None
    ledger.finish(second, exit_code=0, output_path="/out/x")
    rm = reads(ledger)
    assert rm.counts() == {"a": {"done": 1}, "b": {"queued": 1}}
    assert rm.throughput(t0) == {"a": 1}
    rate = rm.failure_rate(t0)["a"]
    assert (rate.ended, rate.failed, rate.rate) == (2, 1, 0.5)

    hist = rm.file_history(f.name)
    assert hist is not None and [h.job.stage for h in hist.jobs] == ["a", "b"]
    a1, a2 = hist.jobs[0].attempts
    assert (a1.number, a1.worker, a1.exit_code, a1.error_class, a1.reason) == (
        1,
        "h:1:a",
        75,
        "transient",
        "broker gone",
    )
    assert a1.ended is not None and a1.duration is not None and a1.duration >= 0
    assert a1.log_path == f"/logs/{f.name}.1.log"
    assert (a2.exit_code, a2.error_class) == (0, None)
    assert hist.jobs[0].job.state == State.DONE.value and hist.jobs[1].attempts == []
    topics = [m.topic for m in hist.messages]
    assert topics.count("r.a") == 2 and "r.b" in topics  # ingest, retry, next stage
    assert all(m.payload["file"] == f.name for m in hist.messages)
    assert rm.file_history("nope.raw") is None

    acts = ledger.reset(f.name, "a", who="alice", note="recalibrated")
    assert acts == 2
    hist = rm.file_history(f.name)
    assert hist is not None
    assert [(x.who, x.action, x.stage, x.note) for x in hist.audit] == [
        ("alice", "reset", "a", "recalibrated"),
        ("alice", "reset", "b", "recalibrated"),
    ]


def test_activity_feeds_the_monitor(ledger, tmp_path):
    files = []
    for i in range(3):
        p = tmp_path / f"f{i}.raw"
        p.write_bytes(b"x")
        files.append(p)
    ledger.submit_files(files)
    t = ledger.start(JobKey(files[0].name, "a", "1"), worker="w")
    assert t is not None
    ledger.finish(t, exit_code=65, reason="bad header", classification=Classification.DETERMINISTIC)
    ledger.start(JobKey(files[1].name, "a", "1"), worker="w")
    now = dt.datetime.now(dt.UTC)
    act = reads(ledger).activity(now, now - dt.timedelta(hours=1), now - dt.timedelta(hours=1))
    a = act["a"]
    assert a.counts == {"dead": 1, "running": 1, "queued": 1}
    assert (a.failures.ended, a.failures.failed, a.last_failure) == (1, 1, "bad header")
    assert len(a.running_started) == 1 and a.oldest_queued is not None
    assert a.first_start is not None and a.last_start is not None and a.done_since == 0
    assert act["b"].counts == {} and act["b"].first_start is None


def test_keyset_paging_is_fast_on_a_hundred_thousand_jobs(ledger):
    now = dt.datetime.now(dt.UTC)
    states = [State.DONE.value] * 8 + [State.DEAD.value, State.QUEUED.value]
    rows = [
        {
            "file": f"run{i // 1000}_{i % 1000:04d}.raw",
            "stage": "a" if i % 2 else "b",
            "version": "1",
            "state": states[(i // 2) % 10],
            "attempts": 1,
            "created": now,
            "updated": now,
        }
        for i in range(100_000)
    ]
    with ledger.engine.begin() as conn:
        conn.execute(insert(jobs), rows)
    rm = reads(ledger)
    t0 = time.perf_counter()
    counts = rm.counts()
    assert sum(sum(c.values()) for c in counts.values()) == 100_000
    seen, after, pages = [], None, 0
    while True:
        page = rm.jobs(stage="a", state="dead", after=after, limit=1000)
        seen += [j.id for j in page.items]
        pages += 1
        if page.next_after is None:
            break
        after = page.next_after
    elapsed = time.perf_counter() - t0
    assert len(seen) == len(set(seen)) == 5000 and seen == sorted(seen) and pages == 5
    deep = rm.jobs(after=99_000, limit=10)
    assert [j.id for j in deep.items] == list(range(99_001, 99_011))
    assert rm.jobs(file="run3_0007.raw").items[0].stage == "a"
    assert elapsed < 3.0, f"counts + 5 pages took {elapsed:.1f} s"
    with pytest.raises(ConfigError, match="page size 0"):
        rm.jobs(limit=0)
    with pytest.raises(ValueError):
        rm.jobs(state="bogus")
