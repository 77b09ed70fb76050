"""``/metrics`` scraped over HTTP: the series a Prometheus server and dashboards rely on."""

from __future__ import annotations

import time
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from jaas.kup.alerts import Alert, AlertStore, Severity
from jaas.kup.broker import EmbeddedBroker, ensure_topics
from jaas.kup.bus import BusConfig, Message
from jaas.kup.config import PipelineConfig
from jaas.kup.kafka import KafkaBus
from jaas.kup.ledger import Ledger
from jaas.kup.metrics import serve_metrics
from jaas.kup.monitor import Monitor
from jaas.kup.states import JobKey

CONFIG = PipelineConfig.model_validate(
    {
        "stages": [
            {"name": "a", "input": "met.a", "output": "met.b", "entry": "jaas.kup.stages:copy"},
            {"name": "b", "input": "met.b", "entry": "jaas.kup.stages:noop"},
        ]
    }
)


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(url, timeout=10) as resp:
        assert resp.status == 200
        text = resp.read().decode()
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_metrics_endpoint_serves_jobs_lag_alerts_and_broker_state(tmp_path):
    ledger = Ledger(f"sqlite:///{tmp_path / 'kup.db'}", CONFIG)
    files = []
    for i in range(5):
        p = tmp_path / f"run_{i}.raw"
        p.write_bytes(b"x")
        files.append(p)
    ledger.submit_files(files)
    for f in files[:3]:
        ticket = ledger.start(JobKey(f.name, "a", "1"), worker="w")
        assert ticket is not None
        ledger.finish(ticket, exit_code=0, output_path=str(f))
    AlertStore(ledger.engine).sync(
        [
            Alert("lag", "jaas-kup.b", Severity.CRITICAL, "STOP"),
            Alert("stuck_queued", "a", Severity.WARNING, "queued"),
            Alert("failure_rate", "b", Severity.WARNING, "failing"),
        ]
    )
    broker = EmbeddedBroker()
    broker.start()
    try:
        ensure_topics(broker.bootstrap, ["met.a", "met.b"])
        bus = KafkaBus(BusConfig(broker.bootstrap, 3000))
        bus.publish([Message("met.a", f"k{i}", {"i": i}, f"m{i}") for i in range(7)])
        consumer = bus.subscribe("jaas-kup.a", ["met.a"])
        committed = 0
        deadline = time.monotonic() + 20
        while committed < 4 and time.monotonic() < deadline:
            msg = consumer.poll(0.2)
            if msg is not None:
                consumer.commit(msg)
                committed += 1
        consumer.close()
        bus.close()
        assert committed == 4

        mon = Monitor(ledger, broker.bootstrap)
        srv = serve_metrics(mon, port=0, min_interval=0.0)
        try:
            assert srv.url.startswith("http://127.0.0.1:")
            m = scrape(srv.url)
            assert m[("jaas_kup_jobs", (("stage", "a"), ("state", "done")))] == 3
            assert m[("jaas_kup_jobs", (("stage", "a"), ("state", "queued")))] == 2
            assert m[("jaas_kup_jobs", (("stage", "b"), ("state", "queued")))] == 3
            assert m[("jaas_kup_jobs", (("stage", "b"), ("state", "dead")))] == 0
            assert m[("jaas_kup_files_per_minute", (("stage", "a"),))] > 0
            assert m[("jaas_kup_stage_failure_rate", (("stage", "a"),))] == 0
            assert m[("jaas_kup_topic_messages", (("topic", "met.a"),))] == 7
            lag_a = (("group", "jaas-kup.a"), ("partition", "0"), ("topic", "met.a"))
            assert m[("jaas_kup_consumer_lag", lag_a)] == 7 - committed
            assert (
                m[("jaas_kup_consumer_lag_status", (*lag_a[:2], ("status", "OK"), lag_a[2]))] == 1
            )
            assert m[("jaas_kup_alerts_active", (("severity", "critical"),))] == 1
            assert m[("jaas_kup_alerts_active", (("severity", "warning"),))] == 2
            assert m[("jaas_kup_alerts_active", (("severity", "info"),))] == 0
            assert m[("jaas_kup_broker_up", ())] == 1
            assert m[("jaas_kup_brokers", ())] == 1

            broker.stop()
            m = scrape(srv.url)
            assert m[("jaas_kup_broker_up", ())] == 0
            assert m[("jaas_kup_jobs", (("stage", "a"), ("state", "done")))] == 3
        finally:
            srv.stop()
            mon.close()
    finally:
        broker.stop()
        ledger.close()
    with pytest.raises(OSError):
        urllib.request.urlopen(srv.url, timeout=2)
