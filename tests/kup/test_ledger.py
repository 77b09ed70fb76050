"""Ledger transactions on SQLite and PostgreSQL: state change + outbox atomic, idempotency."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from jaas.errors import PipelineError
from jaas.kup.config import PipelineConfig
from jaas.kup.ledger import Ledger, audit, dead_letter_topic, outbox
from jaas.kup.states import Classification, JobKey, State

CONFIG = PipelineConfig.model_validate(
    {
        "stages": [
            {"name": "a", "input": "t.a", "output": "t.b", "entry": "m:f", "retries": 1},
            {"name": "b", "input": "t.b", "output": "t.c", "entry": "m:f", "version": "7"},
            {"name": "c", "input": "t.c", "entry": "m:f", "retries": 0},
        ]
    }
)
TRANSIENT = Classification.TRANSIENT
LATER = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def ledger(request, tmp_path):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'kup.db'}"
    else:
        url = request.getfixturevalue("pg_database_url")  # a fresh database per test
    led = Ledger(url, CONFIG)
    yield led
    led.close()


@pytest.fixture
def raw(tmp_path):
    paths = []
    for i in range(3):
        p = tmp_path / f"run1_{i:04d}.raw"
        p.write_bytes(b"x")
        paths.append(p)
    return paths


def outbox_rows(ledger):
    with ledger.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(select(outbox).order_by(outbox.c.id))]


def key(path, stage="a", version="1"):
    return JobKey(path.name, stage, version)


def run_stage(ledger, k, **finish):
    ticket = ledger.start(k, worker="w")
    assert ticket is not None
    return ledger.finish(ticket, exit_code=finish.pop("exit_code", 0), **finish)


def test_ingest_queues_job_and_message_once(ledger, raw):
    assert ledger.submit_files(raw) == [key(p) for p in raw]
    assert ledger.submit_files(raw) == []  # known files: nothing new
    rows = outbox_rows(ledger)
    assert [(r["topic"], r["key"]) for r in rows] == [("t.a", p.name) for p in raw]
    assert rows[0]["payload"] == {
        "file": raw[0].name,
        "stage": "a",
        "version": "1",
        "input": str(raw[0].resolve()),
    }
    assert ledger.counts() == {"a": {"queued": 3}, "b": {}, "c": {}}


def test_done_queues_next_stage_in_the_same_transaction(ledger, raw):
    ledger.submit_files(raw[:1])
    ticket = ledger.start(key(raw[0]), worker="w", log_dir="/logs/a")
    assert ticket is not None
    assert ticket.log_path == f"/logs/a/{raw[0].name}.1.log"
    new = ledger.finish(ticket, exit_code=0, output_path="/out/x.rtraw")
    assert new.state is State.DONE
    nxt = ledger.job(key(raw[0], "b", "7"))
    assert nxt is not None
    assert nxt.state is State.QUEUED
    last = outbox_rows(ledger)[-1]
    assert (last["topic"], last["payload"]["input"], last["payload"]["version"]) == (
        "t.b",
        "/out/x.rtraw",
        "7",
    )


def test_state_change_and_outbox_roll_back_together(ledger, raw, monkeypatch):
    ledger.submit_files(raw[:1])
    ticket = ledger.start(key(raw[0]), worker="w")
    n_before = len(outbox_rows(ledger))

    def broken(*args, **kwargs):
        raise RuntimeError("DB connection lost while writing the outbox")

    monkeypatch.setattr(ledger, "_enqueue", broken)
    with pytest.raises(RuntimeError):
        ledger.finish(ticket, exit_code=0, output_path="/out/x")
    monkeypatch.undo()
    assert ledger.job(key(raw[0])).state is State.RUNNING  # not done without its message
    assert ledger.job(key(raw[0], "b", "7")) is None
    assert len(outbox_rows(ledger)) == n_before
    assert ledger.finish(ticket, exit_code=0, output_path="/out/x").state is State.DONE


def test_duplicate_message_starts_nothing(ledger, raw):
    ledger.submit_files(raw[:1])
    assert ledger.start(key(raw[0]), worker="w1") is not None
    # redelivery (offset not committed before a crash): the job is no longer queued
    assert ledger.start(key(raw[0]), worker="w2") is None
    assert len(ledger.attempts_of(key(raw[0]))) == 1
    assert ledger.start(JobKey("unknown.raw", "a", "1"), worker="w") is None


def test_duplicate_done_does_not_requeue_next_stage(ledger, raw):
    ledger.submit_files(raw[:1])
    run_stage(ledger, key(raw[0]))
    run_stage(ledger, key(raw[0], "b", "7"))
    n = len(outbox_rows(ledger))
    # a stale finish for an old attempt changes nothing
    stale = ledger.start(key(raw[0], "c"), worker="w")
    ledger.finish(stale, exit_code=0)
    ledger.finish(stale, exit_code=0)
    assert ledger.job(key(raw[0], "c")).state is State.DONE
    assert len(outbox_rows(ledger)) == n  # c is last: no message, and nothing twice


def test_transient_failures_retry_then_dead_letter(ledger, raw):
    ledger.submit_files(raw[:1])
    k = key(raw[0])
    j = run_stage(
        ledger, k, exit_code=75, reason="NFS hiccup", classification=Classification.TRANSIENT
    )
    assert j.state is State.RETRYING
    assert ledger.fire_due_retries() == 0  # backoff not expired yet
    assert ledger.fire_due_retries(LATER) == 1
    assert ledger.job(k).state is State.QUEUED
    assert outbox_rows(ledger)[-1]["topic"] == "t.a"
    j = run_stage(
        ledger, k, exit_code=75, reason="NFS hiccup", classification=Classification.TRANSIENT
    )
    assert j.state is State.DEAD
    assert outbox_rows(ledger)[-1]["topic"] == dead_letter_topic("t.a")
    (failure,) = ledger.failures()
    assert failure["reason"] == "gave up after 2 attempts: NFS hiccup"
    assert [a["exit_code"] for a in ledger.attempts_of(k)] == [75, 75]
    assert [a["classification"] for a in ledger.attempts_of(k)] == ["transient"] * 2


def test_deterministic_failure_dead_at_once_and_manual_retry_audited(ledger, raw):
    ledger.submit_files(raw[:1])
    k = key(raw[0])
    j = run_stage(
        ledger, k, exit_code=65, reason="bad magic", classification=Classification.DETERMINISTIC
    )
    assert j.state is State.DEAD
    assert ledger.retry(file=raw[0].name, who="shifter") == 1
    assert ledger.job(k).state is State.QUEUED
    with ledger.engine.connect() as conn:
        row = conn.execute(select(audit)).one()
    assert (row.who, row.action, row.from_state, row.to_state) == (
        "shifter",
        "retry",
        "dead",
        "queued",
    )


def test_reset_touches_exactly_the_downstream_chain(ledger, raw):
    ledger.submit_files(raw[:2])
    for p in raw[:2]:
        for stage, version in (("a", "1"), ("b", "7"), ("c", "1")):
            run_stage(ledger, key(p, stage, version))
    assert ledger.reset(raw[0].name, "b", who="expert", note="new calibration") == 2
    assert ledger.job(key(raw[0])).state is State.DONE
    assert ledger.job(key(raw[0], "b", "7")).state is State.QUEUED
    assert ledger.job(key(raw[0], "c")).state is State.PENDING
    assert ledger.job(key(raw[1], "b", "7")).state is State.DONE  # other file untouched
    with ledger.engine.connect() as conn:
        rows = conn.execute(select(audit).order_by(audit.c.id)).all()
    assert [(r.stage, r.from_state, r.to_state, r.note) for r in rows] == [
        ("b", "done", "pending", "new calibration"),
        ("c", "done", "pending", "new calibration"),
    ]
    run_stage(ledger, key(raw[0], "b", "7"))
    assert ledger.job(key(raw[0], "c")).state is State.QUEUED  # chain flows again
    with pytest.raises(PipelineError, match="no job at stage 'a'"):
        ledger.reset("nope.raw", "a")


def test_lost_worker_lease_and_reclaim(ledger, raw):
    ledger.submit_files(raw[:2])
    ledger.start(key(raw[0]), worker="host:1:a")
    ledger.start(key(raw[1]), worker="host:2:a")
    assert ledger.expire_leases() == 0
    assert ledger.reclaim("a", alive=lambda owner: owner != "host:1:a") == 1
    j = ledger.job(key(raw[0]))
    assert j.state is State.RETRYING
    assert "host:1:a died" in (j.last_reason or "")
    assert ledger.expire_leases(LATER) == 1
    assert "lease expired" in (ledger.job(key(raw[1])).last_reason or "")


def test_relay_bookkeeping_and_requeue_lost(ledger, raw):
    ledger.submit_files(raw)
    pending = ledger.unpublished()
    assert len(pending) == 3
    ledger.mark_published([m.id for m in pending[:2]])
    assert [m.key for m in ledger.unpublished()] == [raw[2].name]
    ledger.mark_published([pending[2].id])
    # the broker forgot everything: every queued job gets a fresh message
    assert ledger.requeue_lost() == 3
    assert sorted(m.key for m in ledger.unpublished()) == sorted(p.name for p in raw)
    with ledger.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(outbox)).scalar() == 6
