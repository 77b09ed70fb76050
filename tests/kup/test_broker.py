"""Real embedded broker (Tansu): produce/consume, relay, redelivery after a crash, reconcile."""

from __future__ import annotations

import time

import pytest

from jaas.kup.broker import EmbeddedBroker, ensure_topics, list_topics
from jaas.kup.bus import BusConfig, Message, decode
from jaas.kup.config import PipelineConfig
from jaas.kup.executors import get_executor
from jaas.kup.kafka import KafkaBus
from jaas.kup.ledger import Ledger
from jaas.kup.relay import Relay, all_topics
from jaas.kup.states import JobKey, State
from jaas.kup.worker import StageWorker

CONFIG = PipelineConfig.model_validate(
    {
        "stages": [
            {"name": "a", "input": "k.a", "output": "k.b", "entry": "jaas.kup.stages:copy"},
            {"name": "b", "input": "k.b", "entry": "jaas.kup.stages:noop"},
        ]
    }
)


@pytest.fixture(scope="module")
def broker():
    with EmbeddedBroker() as b:
        yield b


@pytest.fixture
def bus(broker):
    bus = KafkaBus(BusConfig(broker.bootstrap, session_timeout_ms=3000))
    yield bus
    bus.close()


def poll_until(consumer, n, limit=20.0):
    got = []
    deadline = time.monotonic() + limit
    while len(got) < n and time.monotonic() < deadline:
        msg = consumer.poll(0.2)
        if msg is not None:
            got.append(msg)
    return got


def test_produce_consume_commit(broker, bus):
    ensure_topics(broker.bootstrap, ["t.pc"])
    assert "t.pc" in list_topics(broker.bootstrap)
    acked = bus.publish([Message("t.pc", f"f{i}", {"i": i}, f"m{i}") for i in range(4)])
    assert acked == ["m0", "m1", "m2", "m3"]
    consumer = bus.subscribe("g.pc", ["t.pc"])
    msgs = poll_until(consumer, 4)
    assert [decode(m)["i"] for m in msgs] == [0, 1, 2, 3]
    assert [m.key for m in msgs] == [b"f0", b"f1", b"f2", b"f3"]
    consumer.commit(msgs[-1])
    assert bus.committed("g.pc", "t.pc") == {0: 4}
    consumer.close()


def test_redelivery_after_crash_before_commit_is_harmless(broker, bus, tmp_path):
    ledger = Ledger(f"sqlite:///{tmp_path / 'kup.db'}", CONFIG)
    ensure_topics(broker.bootstrap, all_topics(CONFIG))
    raw = tmp_path / "run1_0001.raw"
    raw.write_bytes(b"payload")
    ledger.submit_files([raw])
    relay = Relay(ledger, bus, sentinel="test.epoch.redelivery")
    assert relay.publish_pending() == 1
    assert ledger.unpublished() == []

    stage = CONFIG.stage("a")
    executor = get_executor("local", slots=1)
    group = "g.redelivery"
    # first worker: ledger write done, then it "crashes" before committing the offset
    w1 = StageWorker(stage, ledger, executor, bus, tmp_path / "data", group=group)
    w1.consumer = bus.subscribe(group, [stage.input])
    (msg,) = poll_until(w1.consumer, 1)
    ticket = w1.handle_message(decode(msg))
    assert ticket is not None
    w1.consumer.close()  # no commit
    # second worker of the same group gets the message again and must not start it
    w2 = StageWorker(stage, ledger, executor, bus, tmp_path / "data", group=group)
    w2.consumer = bus.subscribe(group, [stage.input])
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not w2.running:
        w2.step(0.2)
        if any((off or 0) > 0 for off in bus.committed(group, stage.input).values()):
            break
    assert not w2.running
    assert len(ledger.attempts_of(JobKey(raw.name, "a", "1"))) == 1
    # the first attempt, carried out by hand, still completes the job and queues stage b
    w1.launch(ticket)
    deadline = time.monotonic() + 20
    while w1.running and time.monotonic() < deadline:
        w1.reap()
        time.sleep(0.05)
    assert ledger.job(JobKey(raw.name, "a", "1")).state is State.DONE
    assert (tmp_path / "data" / "a" / raw.name).read_bytes() == b"payload"
    assert ledger.job(JobKey(raw.name, "b", "1")).state is State.QUEUED
    w2.consumer.close()
    ledger.close()


def test_relay_reconciles_a_new_broker(tmp_path):
    ledger = Ledger(f"sqlite:///{tmp_path / 'kup.db'}", CONFIG)
    raw = tmp_path / "run1_0002.raw"
    raw.write_bytes(b"x")
    ledger.submit_files([raw])
    with EmbeddedBroker() as b:
        relay = Relay(ledger, KafkaBus(b.bootstrap), sentinel="test.epoch")
        assert relay.reconcile() == 1  # new broker: topics made, queued job republished
        assert set(all_topics(CONFIG)) | {"test.epoch"} <= list_topics(b.bootstrap)
        assert relay.reconcile() == 0  # same broker: nothing to do
        assert relay.step() == 2  # the ingest message and its republished copy
    ledger.close()


LOST = PipelineConfig.model_validate(
    {"stages": [{"name": "a", "input": "k.lost.a", "entry": "jaas.kup.stages:noop"}]}
)


def test_relay_republishes_jobs_whose_messages_the_group_went_past(broker, bus, tmp_path):
    ledger = Ledger(f"sqlite:///{tmp_path / 'kup.db'}", LOST)
    ensure_topics(broker.bootstrap, all_topics(LOST))
    raws = []
    for i in range(2):
        raws.append(tmp_path / f"run1_{i:04d}.raw")
        raws[-1].write_bytes(b"payload %d" % i)
    ledger.submit_files(raws)
    relay = Relay(ledger, bus, sentinel="test.epoch.lost", group_prefix="g.lost")
    assert relay.publish_pending() == 2
    assert relay.requeue_unconsumed(0.0) == 0  # not consumed yet: a backlog
    skipper = bus.subscribe("g.lost.a", ["k.lost.a"])
    skipper.commit(poll_until(skipper, 2)[-1])  # both offsets committed, neither started
    skipper.close()
    assert relay.requeue_unconsumed(0.0) == 2
    assert relay.publish_pending() == 2
    stage = LOST.stage("a")
    w = StageWorker(stage, ledger, get_executor("local", slots=2), bus, tmp_path / "d", "g.lost.a")
    w.consumer = bus.subscribe(w.group, [stage.input])
    keys = [JobKey(r.name, "a", "1") for r in raws]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and any(ledger.job(k).state is not State.DONE for k in keys):
        w.step(0.2)
    assert [ledger.job(k).state for k in keys] == [State.DONE, State.DONE]
    assert relay.requeue_unconsumed(0.0) == 0
    w.consumer.close()
    w.executor.shutdown()
    ledger.close()
