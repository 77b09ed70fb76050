"""Per-partition lag history (table kup_lag_partitions) and the stages YAML's monitor section."""

from __future__ import annotations

import datetime as dt
import time
from collections import Counter

import pytest
from confluent_kafka import Producer

from jaas.errors import ConfigError
from jaas.kup.alerts import AlertRules
from jaas.kup.broker import EmbeddedBroker, ensure_topics
from jaas.kup.bus import BusConfig
from jaas.kup.config import KupSettings, load_stages
from jaas.kup.kafka import make_consumer
from jaas.kup.lag import LagThresholds
from jaas.kup.monitor import open_monitor, read_partition_history

TOPIC = "mp.a"
STAGES = f"""\
stages:
  - {{name: a, input: {TOPIC}, entry: 'jaas.kup.stages:noop'}}
monitor:
  window: 3
  lag_warn: 4
  lag_error: 50
  rules: {{failure_window: 60, queued_stall: 30}}
"""


@pytest.fixture(scope="module")
def broker():
    with EmbeddedBroker() as b:
        ensure_topics(b.bootstrap, [TOPIC], partitions=2)
        yield b


def test_stages_yaml_configures_window_thresholds_and_rules(tmp_path, broker):
    stages = tmp_path / "stages.yaml"
    stages.write_text(STAGES, encoding="utf-8")
    sd = tmp_path / "kup"
    sd.mkdir()
    KupSettings(state_dir=sd, stages=str(stages), bootstrap=broker.bootstrap).save()
    mon = open_monitor(sd)
    try:
        assert mon.window == 3 and mon.tracker.window == 3
        assert mon.thresholds == LagThresholds(4, 50)
        assert mon.rules == AlertRules(failure_window=60, queued_stall=30)
    finally:
        mon.close()
        mon.ledger.close()
    default = load_stages().monitor  # the shipped chain says nothing: the defaults
    assert default.window == 10 and default.thresholds is None and default.rules == AlertRules()


@pytest.mark.parametrize(
    ("section", "expected"),
    [
        ("  rules: {queued_stal: 30}", "monitor.rules.queued_stal"),
        ("  rules: {failure_warn: 0.9, failure_critical: 0.5}", "failure_warn (0.9)"),
        ("  lag_warn: 50\n  lag_error: 5", "warn=50 is above error=5"),
        ("  window: 1", "monitor.window"),
        ("  windw: 3", "monitor.windw"),
    ],
)
def test_a_bad_monitor_section_is_refused_with_file_line_and_key(tmp_path, section, expected):
    stages = tmp_path / "stages.yaml"
    stages.write_text(STAGES.split("monitor:")[0] + "monitor:\n" + section + "\n")
    with pytest.raises(ConfigError, match=r"stages\.yaml:\d+: monitor") as err:
        load_stages(stages)
    assert expected in str(err.value)


def produce(bootstrap: str, per_partition: dict[int, int]) -> None:
    p = Producer({"bootstrap.servers": bootstrap, "batch.num.messages": 1, "log_level": 3})
    for part, n in per_partition.items():
        for i in range(n):
            p.produce(TOPIC, value=f"{part}:{i}".encode(), partition=part)
    assert p.flush(10) == 0


def test_each_partition_gets_its_lag_series_and_old_samples_are_pruned(tmp_path, broker):
    stages = tmp_path / "stages.yaml"
    stages.write_text(STAGES, encoding="utf-8")
    sd = tmp_path / "kup"
    sd.mkdir()
    KupSettings(
        state_dir=sd, stages=str(stages), bootstrap=broker.bootstrap, group_prefix="mp"
    ).save()
    produce(broker.bootstrap, {0: 3, 1: 7})
    mon = open_monitor(sd)
    t = float(int(time.time()) - 100)  # whole seconds: exact through DateTime
    try:
        mon.record(mon.collect(now=t))
        consumer = make_consumer(BusConfig(broker.bootstrap, 3000), "mp.a", [TOPIC])
        got: Counter[int] = Counter()
        try:
            deadline = time.monotonic() + 20
            while sum(got.values()) < 10 and time.monotonic() < deadline:
                msg = consumer.poll(0.2)
                if msg is not None and not msg.error() and msg.partition() == 0:
                    consumer.commit(message=msg, asynchronous=False)
                    got[0] += 1
                if got[0] == 3:
                    break
        finally:
            consumer.close()
        assert got[0] == 3
        for i in range(1, 4):
            mon.record(mon.collect(now=t + i))
        rows = read_partition_history(mon.ledger)
        by = {(r["partition"], r["at"].timestamp()): r for r in rows}
        assert {r["group"] for r in rows} == {"mp.a"} and {r["stage"] for r in rows} == {"a"}
        assert [by[(0, t + i)]["lag"] for i in range(4)] == [3, 0, 0, 0]
        assert [by[(1, t + i)]["lag"] for i in range(4)] == [7, 7, 7, 7]
        assert by[(0, t + 3)]["committed"] == 3 and by[(0, t + 3)]["status"] == "OK"
        # partition 1: never committed, lag 7 >= lag_warn 4 of the YAML: not OK
        assert by[(1, t + 3)]["status"] != "OK" and by[(1, t + 3)]["high"] == 7
        assert by[(1, t + 3)]["reason"]
        mon.prune_history(dt.datetime.fromtimestamp(t + 2, dt.UTC))
        left = read_partition_history(mon.ledger)
        assert sorted({r["at"].timestamp() for r in left}) == [t + 2, t + 3]
        since = read_partition_history(mon.ledger, dt.datetime.fromtimestamp(t + 3, dt.UTC))
        assert sorted(r["partition"] for r in since) == [0, 1]
    finally:
        mon.close()
        mon.ledger.close()
