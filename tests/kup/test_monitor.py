"""Monitor against a real embedded broker: lag per partition, Burrow transitions, CLI views."""

from __future__ import annotations

import datetime as dt
import time
from collections import Counter

import pytest
from click.testing import CliRunner
from confluent_kafka import Producer, TopicPartition

from jaas.cli.kup_monitor import COMMANDS, alerts, monitor
from jaas.kup.alerts import Alert, AlertStore, Severity, evaluate_rules
from jaas.kup.broker import EmbeddedBroker, ensure_topics
from jaas.kup.bus import BusConfig
from jaas.kup.config import KupSettings, PipelineConfig
from jaas.kup.kafka import make_consumer
from jaas.kup.lag import LagStatus
from jaas.kup.ledger import Ledger
from jaas.kup.monitor import Monitor, read_history
from jaas.kup.states import Classification, JobKey

TOPIC = "mon.a"
CONFIG = PipelineConfig.model_validate(
    {
        "stages": [
            {"name": "a", "input": TOPIC, "output": "mon.b", "entry": "jaas.kup.stages:copy"},
            {"name": "b", "input": "mon.b", "entry": "jaas.kup.stages:noop"},
        ]
    }
)
GROUP = "tm.a"  # group_prefix "tm" + stage "a"


@pytest.fixture(scope="module")
def broker():
    with EmbeddedBroker() as b:
        ensure_topics(b.bootstrap, [TOPIC, "mon.b"], partitions=2)
        yield b


@pytest.fixture
def ledger(tmp_path):
    led = Ledger(f"sqlite:///{tmp_path / 'kup.db'}", CONFIG)
    yield led
    led.close()


def produce(bootstrap: str, per_partition: dict[int, int]) -> None:
    p = Producer({"bootstrap.servers": bootstrap, "batch.num.messages": 1, "log_level": 3})
    for part, n in per_partition.items():
        for i in range(n):
            p.produce(TOPIC, value=f"{part}:{i}".encode(), partition=part)
    assert p.flush(10) == 0


def consume(consumer, n: int, limit: float = 60.0) -> Counter[int]:
    """Consume and commit ``n`` messages; count them per partition."""
    got: Counter[int] = Counter()
    deadline = time.monotonic() + limit
    while sum(got.values()) < n and time.monotonic() < deadline:
        msg = consumer.poll(0.2)
        if msg is not None and not msg.error():
            consumer.commit(message=msg, asynchronous=False)
            got[msg.partition()] += 1
    assert sum(got.values()) == n, f"consumed {dict(got)} of {n}"
    return got


def consume_one_each(consumer, parts: list[int], limit: float = 60.0) -> Counter[int]:
    """Consume and commit one message of each partition in ``parts``.

    The consumer fetches from both partitions but may hand out a whole batch of one first
    (more likely under load); a message of a partition already served is read again later
    (seek back), so every partition moves at each step, as the steady phase means.
    """
    got: Counter[int] = Counter()
    deadline = time.monotonic() + limit
    while set(got) != set(parts):
        assert time.monotonic() < deadline, f"consumed {dict(got)}, wanted one of each {parts}"
        msg = consumer.poll(0.2)
        if msg is None or msg.error():
            continue
        if msg.partition() in got:  # not now: the same message comes again
            consumer.seek(TopicPartition(TOPIC, msg.partition(), msg.offset()))
            continue
        consumer.commit(message=msg, asynchronous=False)
        got[msg.partition()] += 1
    return got


def wait_for(cond, what: str, limit: float = 60.0) -> None:
    """Poll ``cond`` until it is true; fail naming ``what`` after ``limit`` seconds."""
    deadline = time.monotonic() + limit
    while not cond():
        assert time.monotonic() < deadline, f"{what}: not within {limit:g} s"
        time.sleep(0.05)


def lags(snap) -> dict[int, int]:
    return {p.partition: p.lag for p in snap.stage("a").partitions}


def statuses(snap) -> dict[int, LagStatus]:
    return {p.partition: p.status for p in snap.stage("a").partitions}


def test_lag_equals_uncommitted_and_burrow_transitions(broker, ledger):
    produced = {0: 6, 1: 4}
    produce(broker.bootstrap, produced)
    mon = Monitor(ledger, broker.bootstrap, group_prefix="tm", window=4)
    t = 1000.0
    snap = mon.collect(now=t)
    assert snap.broker.up and snap.broker.topics[TOPIC] == 2
    assert lags(snap) == produced  # nobody committed yet
    a = snap.stage("a")
    assert (a.produced, a.consumed, a.lag) == (10, 0, 10)

    consumer = make_consumer(BusConfig(broker.bootstrap, 3000), GROUP, [TOPIC])
    try:
        done: Counter[int] = Counter()
        for _ in range(3):  # committing steadily: lag drops -> OK
            done += consume_one_each(consumer, [0, 1])
            t += 1
            snap = mon.collect(now=t)
            assert lags(snap) == {p: produced[p] - done[p] for p in produced}
        assert snap.stage("a").lag_status is LagStatus.OK
        assert snap.stage("a").consumed == 6

        # a live member is what makes an unmoved offset STALL rather than STOP
        wait_for(lambda: mon.bus.group_alive(GROUP), "the consumer's group is live")
        for _ in range(4):  # alive but no commits: offsets stuck with lag -> STALL
            t += 1
            snap = mon.collect(now=t)
        stuck = [p for p, n in produced.items() if n > done[p]]
        assert stuck and all(statuses(snap)[p] is LagStatus.STALL for p in stuck)
        assert snap.stage("a").lag_status is LagStatus.ERR
        alert = next(a for a in evaluate_rules(snap, mon.rules) if a.rule == "lag")
        assert alert.severity is Severity.CRITICAL and alert.subject == GROUP
    finally:
        consumer.close()

    # the group is empty now (the consumer left): no new observations
    wait_for(lambda: not mon.bus.group_alive(GROUP), "the group is empty after close")
    t += 1
    snap = mon.collect(now=t)
    t += 10  # no commit for longer than the window spans (3 s) -> STOP
    snap = mon.collect(now=t)
    assert all(statuses(snap)[p] is LagStatus.STOP for p in stuck)
    assert lags(snap) == {p: produced[p] - done[p] for p in produced}

    consumer = make_consumer(BusConfig(broker.bootstrap, 3000), GROUP, [TOPIC])
    try:  # a consumer comes back and catches up -> OK, lag 0
        consume(consumer, 10 - sum(done.values()))
        t += 1
        snap = mon.collect(now=t)
    finally:
        consumer.close()
    assert lags(snap) == {0: 0, 1: 0}
    assert statuses(snap) == {0: LagStatus.OK, 1: LagStatus.OK}
    assert snap.stage("a").consumed == 10
    mon.close()


def test_ledger_side_counts_throughput_failures_and_history(tmp_path, ledger):
    files = []
    for i in range(4):
        p = tmp_path / f"f{i}.raw"
        p.write_bytes(b"x")
        files.append(p)
    ledger.submit_files(files)
    for i, f in enumerate(files[:3]):
        ticket = ledger.start(JobKey(f.name, "a", "1"), worker="w")
        assert ticket is not None
        if i < 2:
            ledger.finish(ticket, exit_code=0, output_path=str(f))
        else:
            ledger.finish(
                ticket,
                exit_code=65,
                reason="bad header",
                classification=Classification.DETERMINISTIC,
            )
    ledger.start(JobKey(files[3].name, "a", "1"), worker="w")
    mon = Monitor(ledger, None)  # ledger only
    snap = mon.collect()
    a = snap.stage("a")
    assert a.counts == {"done": 2, "dead": 1, "running": 1}
    assert (a.attempts_window, a.failures_window) == (3, 1)
    assert a.failure_rate == pytest.approx(1 / 3)
    assert a.last_failure == "bad header"
    assert len(a.running_ages) == 1 and 0 <= a.running_ages[0] < 5
    assert a.files_per_min == pytest.approx(120.0)  # 2 files, span clamped to 1 s
    assert snap.stage("b").counts == {"queued": 2}
    assert not snap.broker.up and a.produced is None
    assert [x.rule for x in evaluate_rules(snap)] == ["failure_rate"]  # no broker: no broker_down
    assert mon.record(snap) == 2
    (row,) = read_history(ledger, stage="a")
    assert (row["done"], row["failed"], row["running"], row["lag_status"]) == (2, 1, 1, None)


def test_broker_down_is_reported_and_a_restart_on_the_same_port_is_seen(ledger):
    b = EmbeddedBroker()
    b.start()
    try:
        mon = Monitor(ledger, b.bootstrap)
        first = mon.collect().broker
        assert first.up
        b.stop()
        snap = mon.collect()
        assert not snap.broker.up
        assert [a.rule for a in evaluate_rules(snap)] == ["broker_down"]
        assert "metadata request to" in (snap.broker.error or "")  # names what timed out
        b.start()  # same port, a new broker: the monitor reconnects
        deadline = time.monotonic() + 20
        while not (snap := mon.collect()).broker.up and time.monotonic() < deadline:
            time.sleep(0.2)
        assert snap.broker.up and "broker_down" not in [a.rule for a in evaluate_rules(snap)]
        mon.close()
    finally:
        b.stop()


def test_cli_monitor_once_and_alerts(tmp_path, broker):
    stages = tmp_path / "stages.yaml"
    stages.write_text(
        "stages:\n"
        f"  - {{name: a, input: {TOPIC}, output: mon.b, entry: 'jaas.kup.stages:copy'}}\n"
        "  - {name: b, input: mon.b, entry: 'jaas.kup.stages:noop'}\n"
    )
    sd = tmp_path / "state"
    settings = KupSettings(state_dir=sd, stages=str(stages), bootstrap=broker.bootstrap)
    sd.mkdir()
    settings.save()
    raw = tmp_path / "r.raw"
    raw.write_bytes(b"x")
    led = Ledger(settings.database, settings.pipeline())
    led.submit_files([raw])
    store = AlertStore(led.engine)
    t0 = dt.datetime.now(dt.UTC)
    store.sync([Alert("failure_rate", "a", Severity.WARNING, "3 of 9 attempts failed")], t0)
    store.sync([], t0 + dt.timedelta(seconds=1))  # resolved
    store.sync([Alert("stuck_queued", "b", Severity.WARNING, "1 job(s) queued")], t0)
    led.close()

    assert [c.name for c in COMMANDS] == ["monitor", "alerts", "metrics"]
    runner = CliRunner()
    res = runner.invoke(monitor, [str(sd), "--once"])
    assert res.exit_code == 0, res.output
    assert f"broker {broker.bootstrap} up (cluster" in res.output
    (row_a,) = [ln for ln in res.output.splitlines() if ln.startswith("a ")]
    assert row_a.split()[1:3] == ["1", "0"]  # 1 queued, 0 running
    assert "alerts: 1 active" in res.output
    assert "stuck_queued" in res.output

    res = runner.invoke(alerts, [str(sd)])
    assert res.exit_code == 0, res.output
    assert "alerts: 1 active" in res.output and "failure_rate" not in res.output
    res = runner.invoke(alerts, [str(sd), "--all"])
    assert "alerts raised in the last 24 h: 2" in res.output
    (line,) = [ln for ln in res.output.splitlines() if "failure_rate" in ln]
    assert "WARNING" in line and "resolved" in line and "3 of 9 attempts failed" in line


def test_run_forever_stores_alerts_history_and_prunes(tmp_path, broker):
    import threading

    from jaas.kup.alerts import AlertRules
    from jaas.kup.monitor import Snapshot, StageSnapshot, run_forever

    sd = tmp_path / "state"
    sd.mkdir()
    stages = tmp_path / "stages.yaml"
    # a topic of its own (never created): no lag alerts from the other tests' messages
    stages.write_text("stages:\n  - {name: a, input: mon.q, entry: 'jaas.kup.stages:noop'}\n")
    settings = KupSettings(state_dir=sd, stages=str(stages), bootstrap=broker.bootstrap)
    settings.save()
    raw = tmp_path / "q.raw"
    raw.write_bytes(b"x")
    led = Ledger(settings.database, settings.pipeline())
    led.submit_files([raw])  # queued, and no worker will ever start it
    old = Snapshot(
        time.time() - 8 * 86400, snap_broker(broker), [StageSnapshot("a", TOPIC, "g", 1.0, {})]
    )
    Monitor(led, None).record(old)

    changes: list[tuple[list, list]] = []
    stop = threading.Event()
    th = threading.Thread(
        target=run_forever,
        args=(sd, 0.1),
        kwargs={
            "stop": stop,
            "on_change": lambda r, s: changes.append((r, s)),
            "rules": AlertRules(queued_stall=0.3),
        },
    )
    th.start()
    try:
        deadline = time.monotonic() + 20
        while not changes and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        stop.set()
        th.join(10)
    assert not th.is_alive()
    (raised, resolved), *_ = changes
    assert [(a.rule, a.subject) for a in raised] == [("stuck_queued", "a")]
    assert resolved == []
    assert [a["rule"] for a in AlertStore(led.engine).active()] == ["stuck_queued"]
    hist = read_history(led, stage="a")
    assert len(hist) >= 2  # the 8-day-old row is gone, the new ones are there
    assert all(h["at"] > dt.datetime.now(dt.UTC) - dt.timedelta(days=1) for h in hist)
    assert hist[-1]["queued"] == 1
    led.close()


def snap_broker(broker):
    from jaas.kup.monitor import BrokerState

    return BrokerState(broker.bootstrap, up=True)
