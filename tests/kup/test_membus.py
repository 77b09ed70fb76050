"""Worker, relay and monitor logic on the in-memory bus (no broker, no subprocess)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from jaas.errors import PipelineError
from jaas.kup.alerts import evaluate_rules
from jaas.kup.bus import Message, Record, decode
from jaas.kup.config import PipelineConfig
from jaas.kup.executors.base import Executor, ExecutorStatus, Handle, JobSpec, JobStatus
from jaas.kup.lag import LagStatus
from jaas.kup.ledger import Ledger
from jaas.kup.membus import MemoryBus
from jaas.kup.monitor import Monitor
from jaas.kup.relay import Relay, all_topics
from jaas.kup.states import JobKey, State
from jaas.kup.worker import StageWorker

CONFIG = PipelineConfig.model_validate(
    {
        "stages": [
            {"name": "a", "input": "m.a", "output": "m.b", "entry": "jaas.kup.stages:copy"},
            {"name": "b", "input": "m.b", "entry": "jaas.kup.stages:noop"},
        ]
    }
)


class FakeExecutor(Executor):
    """Attempts finish when the test says so, with the exit code it says."""

    name = "fake"

    def __init__(self, slots: int = 4) -> None:
        self.slots = slots
        self.submitted: list[JobSpec] = []
        self.outcome: dict[str, ExecutorStatus] = {}
        self.cancelled: list[str] = []

    def submit(self, spec: JobSpec) -> Handle:
        self.submitted.append(spec)
        return Handle(self.name, str(len(self.submitted)), spec)

    def poll(self, handle: Handle) -> JobStatus:
        st = self.outcome.get(handle.id, ExecutorStatus.RUNNING)
        return JobStatus(st, exit_code={ExecutorStatus.SUCCEEDED: 0}.get(st, 1))

    def cancel(self, handle: Handle) -> None:
        self.cancelled.append(handle.id)

    def free_slots(self) -> int:
        return self.slots - len(self.submitted) + len(self.outcome)

    def finish_all(self, status: ExecutorStatus = ExecutorStatus.SUCCEEDED) -> None:
        for i in range(1, len(self.submitted) + 1):
            self.outcome.setdefault(str(i), status)


@pytest.fixture
def ledger(tmp_path):
    led = Ledger(f"sqlite:///{tmp_path / 'kup.db'}", CONFIG)
    yield led
    led.close()


def raw_files(tmp_path: Path, n: int) -> list[Path]:
    out = []
    for i in range(n):
        p = tmp_path / f"run1_{i:04d}.raw"
        p.write_bytes(b"payload %d" % i)
        out.append(p)
    return out


def worker(ledger, bus, tmp_path, executor=None, group="g.a") -> StageWorker:
    w = StageWorker(
        CONFIG.stage("a"), ledger, executor or FakeExecutor(), bus, tmp_path / "d", group=group
    )
    w.consumer = bus.subscribe(w.group, [w.stage.input])
    return w


# ---- the bus itself -------------------------------------------------------------------------


def test_memory_bus_commit_redelivery_and_rebalance():
    bus = MemoryBus(partitions=2)
    ids = bus.publish([Message("t", f"k{i}", {"i": i}, f"m{i}") for i in range(6)])
    assert ids == [f"m{i}" for i in range(6)]
    assert sum(h for _, h in bus.watermarks("t").values()) == 6
    one = bus.subscribe("g", ["t"])
    got = [one.poll(0) for _ in range(6)]
    assert sorted(decode(r)["i"] for r in got if r) == list(range(6))
    assert one.poll(0) is None
    first = next(r for r in got if r and r.partition == 0)
    one.commit(first)
    assert bus.committed("g", "t") == {0: first.offset + 1}
    assert bus.group_alive("g")
    one.close()  # only one record committed: the rest comes again to the next member
    assert not bus.group_alive("g")
    two, three = bus.subscribe("g", ["t"]), bus.subscribe("g", ["t"])
    assert {tp for s in (two, three) for tp in s.assigned} == {("t", 0), ("t", 1)}
    again = [r for s in (two, three) for r in iter(lambda s=s: s.poll(0), None)]
    assert len(again) == 5 and first not in again
    rec = again[0]
    sub = two if ("t", rec.partition) in two.assigned else three
    sub.seek(rec)
    assert sub.poll(0) == rec
    with pytest.raises(PipelineError, match="not assigned"):
        (three if sub is two else two).commit(rec)


def test_memory_bus_down_and_restart():
    bus = MemoryBus()
    sub = bus.subscribe("g", ["t"])
    bus.go_down("connection refused")
    with pytest.raises(PipelineError, match="connection refused"):
        bus.publish([Message("t", "k", {}, "m")])
    with pytest.raises(PipelineError):
        sub.poll(0)
    state = bus.cluster()
    assert not state.up and "connection refused" in (state.error or "")
    bus.come_up()
    bus.publish([Message("t", "k", {}, "m")])
    bus.restart()
    assert bus.topics() == set() and bus.cluster().up


# ---- relay -------------------------------------------------------------------------------------


def test_relay_publishes_the_outbox_and_reconciles_a_new_bus(ledger, tmp_path):
    bus = MemoryBus()
    ledger.submit_files(raw_files(tmp_path, 2))
    relay = Relay(ledger, bus, sentinel="m.epoch")
    assert relay.reconcile() == 2  # new bus: topics made, queued jobs republished
    assert set(all_topics(CONFIG)) | {"m.epoch"} <= bus.topics()
    assert relay.reconcile() == 0
    assert relay.step() == 4  # the ingest messages and their republished copies
    assert ledger.unpublished() == []
    assert relay.step() == 0
    bus.restart()  # the broker lost everything: the relay notices and republishes
    assert relay.reconcile() == 2 and relay.reconciled == 2
    assert relay.step() == 2
    names = {f.name for f in raw_files(tmp_path, 2)}
    assert {decode(r)["file"] for r in bus._log["m.a"][0]} == names


def test_relay_keeps_unacknowledged_messages_pending(ledger, tmp_path):
    bus = MemoryBus()
    ledger.submit_files(raw_files(tmp_path, 1))
    relay = Relay(ledger, bus)
    bus.go_down()
    with pytest.raises(PipelineError):
        relay.step()
    assert len(ledger.unpublished()) == 1
    stop = threading.Event()
    t = threading.Thread(target=relay.run, args=(stop, 0.01, 0.05))
    t.start()
    try:
        bus.come_up()
        for _ in range(200):
            if not ledger.unpublished():
                break
            stop.wait(0.02)
    finally:
        stop.set()
        t.join(5)
    assert ledger.unpublished() == []


def test_relay_republishes_a_queued_job_whose_message_the_group_went_past(ledger, tmp_path):
    bus = MemoryBus()
    files = raw_files(tmp_path, 3)
    ledger.submit_files(files)
    relay = Relay(ledger, bus, group_prefix="g")
    assert relay.step() == 3
    assert relay.requeue_unconsumed(0.0) == 0  # nothing consumed yet: a backlog, not a loss
    lost = bus.subscribe("g.a", ["m.a"])  # a member that commits message 0 and never starts it
    lost.commit(lost.poll(0))
    lost.close()
    ex = FakeExecutor()
    w = worker(ledger, bus, tmp_path, ex, group="g.a")
    for _ in range(3):
        w.step(0)
    assert len(ex.submitted) == 2 and bus.committed("g.a", "m.a") == {0: 3}
    key = JobKey(files[0].name, "a", "1")
    assert ledger.job(key).state is State.QUEUED
    assert relay.requeue_unconsumed(3600.0) == 0  # its message is too recent to judge
    assert relay.requeue_unconsumed(0.0) == 1 and relay.requeued == 1
    assert relay.requeue_unconsumed(0.0) == 0  # the fresh message is not published yet
    assert relay.step() == 1
    w.step(0)
    assert ledger.job(key).state is State.RUNNING
    assert [s.argv[5] for s in ex.submitted] == [f.name for f in files[1:]] + [files[0].name]
    assert relay.requeue_unconsumed(0.0) == 0  # nothing queued is left
    w.consumer.close()


# ---- worker ------------------------------------------------------------------------------------


def test_worker_starts_commits_launches_and_reaps(ledger, tmp_path):
    bus = MemoryBus()
    files = raw_files(tmp_path, 3)
    ledger.submit_files(files)
    Relay(ledger, bus).publish_pending()
    ex = FakeExecutor()
    w = worker(ledger, bus, tmp_path, ex)
    for _ in range(3):
        w.step(0)
    assert len(ex.submitted) == 3 and len(w.running) == 3
    assert bus.committed("g.a", "m.a") == {0: 3}  # committed after the ledger write
    spec = ex.submitted[0]
    assert spec.argv[3:5] == ["jaas.kup.stages:copy", "--file"] and spec.argv[5] == files[0].name
    assert all(ledger.job(JobKey(f.name, "a", "1")).state is State.RUNNING for f in files)
    ex.finish_all()
    assert w.reap() == 3 and not w.running
    assert all(ledger.job(JobKey(f.name, "a", "1")).state is State.DONE for f in files)
    assert all(ledger.job(JobKey(f.name, "b", "1")).state is State.QUEUED for f in files)
    w.consumer.close()


def test_worker_skips_duplicates_bad_messages_and_other_versions(ledger, tmp_path):
    bus = MemoryBus()
    (f,) = raw_files(tmp_path, 1)
    ledger.submit_files([f])
    relay = Relay(ledger, bus)
    relay.publish_pending()
    bus.publish(
        [
            Message("m.a", f.name, {"file": f.name, "stage": "a", "version": "1"}, "dup"),
            Message("m.a", f.name, {"file": f.name, "stage": "a", "version": "9"}, "v9"),
        ]
    )
    bus._log["m.a"][0].append(Record("m.a", 0, 3, b"x", b"not json"))  # a corrupt record
    ex = FakeExecutor()
    w = worker(ledger, bus, tmp_path, ex)
    for _ in range(5):
        w.step(0)
    assert len(ex.submitted) == 1  # the duplicate and the other version start nothing
    assert bus.committed("g.a", "m.a") == {0: 4}  # every record committed, the bad one too
    assert len(ledger.attempts_of(JobKey(f.name, "a", "1"))) == 1


def test_redelivered_message_reaches_the_second_worker_and_is_harmless(ledger, tmp_path):
    bus = MemoryBus()
    (f,) = raw_files(tmp_path, 1)
    ledger.submit_files([f])
    Relay(ledger, bus).publish_pending()
    w1 = worker(ledger, bus, tmp_path)
    rec = w1.consumer.poll(0)
    assert rec is not None
    ticket = w1.handle_message(decode(rec))
    assert ticket is not None
    w1.consumer.close()  # crash after the ledger write, before the commit
    ex2 = FakeExecutor()
    w2 = worker(ledger, bus, tmp_path, ex2)
    again = w2.consumer.poll(0)
    assert again == rec  # the second worker really receives the same message
    w2.consumer.seek(again)
    w2.step(0)
    assert ex2.submitted == [] and not w2.running
    assert bus.committed("g.a", "m.a") == {0: 1}
    assert len(ledger.attempts_of(JobKey(f.name, "a", "1"))) == 1


def test_ledger_failure_rewinds_so_the_message_is_read_again(ledger, tmp_path, monkeypatch):
    bus = MemoryBus()
    (f,) = raw_files(tmp_path, 1)
    ledger.submit_files([f])
    Relay(ledger, bus).publish_pending()
    ex = FakeExecutor()
    w = worker(ledger, bus, tmp_path, ex)

    def broken(*_a, **_k):
        raise RuntimeError("database is locked")

    with monkeypatch.context() as m:
        m.setattr(ledger, "start", broken)
        with pytest.raises(RuntimeError):
            w.step(0)
    assert bus.committed("g.a", "m.a") == {}
    w.step(0)
    assert len(ex.submitted) == 1 and bus.committed("g.a", "m.a") == {0: 1}


def test_worker_run_survives_a_bus_outage_and_cancels_on_stop(ledger, tmp_path):
    bus = MemoryBus()
    files = raw_files(tmp_path, 2)
    ledger.submit_files(files[:1])
    Relay(ledger, bus).publish_pending()
    ex = FakeExecutor()
    w = StageWorker(CONFIG.stage("a"), ledger, ex, bus, tmp_path / "d", group="g.a")
    stop = threading.Event()
    t = threading.Thread(target=w.run, args=(stop, 0.01, 0.05))
    t.start()
    try:
        for _ in range(200):
            if ex.submitted:
                break
            stop.wait(0.02)
        bus.go_down()
        stop.wait(0.1)
        bus.come_up()
        ledger.submit_files(files[1:])
        Relay(ledger, bus).publish_pending()
        for _ in range(200):
            if len(ex.submitted) == 2:
                break
            stop.wait(0.02)
    finally:
        stop.set()
        t.join(10)
    assert len(ex.submitted) == 2 and sorted(ex.cancelled) == ["1", "2"]
    for f in files:  # stopped during the attempt: transient, retried later
        assert ledger.job(JobKey(f.name, "a", "1")).state is State.RETRYING
    assert not bus.group_alive("g.a")


# ---- monitor -----------------------------------------------------------------------------------


def test_monitor_lag_stall_stop_and_recovery_on_the_memory_bus(ledger):
    bus = MemoryBus(partitions=1)
    bus.publish([Message("m.a", "k", {"i": i}, f"m{i}") for i in range(5)])
    mon = Monitor(ledger, bus, group_prefix="g", window=3)
    t = 1000.0
    snap = mon.collect(now=t)
    a = snap.stage("a")
    assert snap.broker.up and (a.produced, a.consumed, a.lag) == (5, 0, 5)
    sub = bus.subscribe("g.a", ["m.a"])
    for _ in range(2):  # consuming steadily: OK
        sub.commit(sub.poll(0))
        t += 1
        snap = mon.collect(now=t)
    assert snap.stage("a").lag == 3 and snap.stage("a").lag_status is LagStatus.OK
    for _ in range(3):  # alive, no commits, lag: STALL
        t += 1
        snap = mon.collect(now=t)
    assert snap.stage("a").partitions[0].status is LagStatus.STALL
    assert any(x.rule == "lag" for x in evaluate_rules(snap, mon.rules))
    sub.close()
    t += 10  # nobody in the group for longer than the window: STOP
    snap = mon.collect(now=t)
    assert snap.stage("a").partitions[0].status is LagStatus.STOP
    sub = bus.subscribe("g.a", ["m.a"])
    while (rec := sub.poll(0)) is not None:
        sub.commit(rec)
    t += 1
    snap = mon.collect(now=t)
    assert snap.stage("a").lag == 0 and snap.stage("a").partitions[0].status is LagStatus.OK
    bus.go_down("timed out")
    snap = mon.collect(now=t + 1)
    assert not snap.broker.up and [x.rule for x in evaluate_rules(snap)] == ["broker_down"]
    bus.come_up()
    snap = mon.collect(now=t + 2)
    assert snap.broker.up and "broker_down" not in [x.rule for x in evaluate_rules(snap)]
    mon.close()


def test_broker_down_alert_is_raised_then_resolved_when_the_bus_answers_again(ledger):
    from jaas.kup.alerts import AlertStore

    bus = MemoryBus()
    mon = Monitor(ledger, bus)
    store = AlertStore(ledger.engine)
    bus.go_down("metadata request timed out")
    snap = mon.collect()
    raised, resolved = store.sync(evaluate_rules(snap, mon.rules))
    assert [a.rule for a in raised] == ["broker_down"] and not resolved
    assert "metadata request timed out" in raised[0].message
    bus.come_up()
    raised, resolved = store.sync(evaluate_rules(mon.collect(), mon.rules))
    assert not raised and [r["rule"] for r in resolved] == ["broker_down"]
    assert store.active() == []
