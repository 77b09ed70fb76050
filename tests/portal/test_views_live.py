"""Live lag per partition and broker topics, from a monitor on a real embedded broker."""

from __future__ import annotations

import json

import pytest
from confluent_kafka import Producer
from fastapi.testclient import TestClient

from jaas.kup.broker import EmbeddedBroker, ensure_topics
from jaas.kup.config import KupSettings
from tests.portal.conftest import CONFIG


@pytest.fixture
def broker():
    with EmbeddedBroker() as b:
        ensure_topics(b.bootstrap, ["t.a", "t.b"], partitions=2)
        yield b


def state_dir(tmp_path, ledger, bootstrap: str | None):
    state = tmp_path / "state"
    state.mkdir()
    stages = tmp_path / "stages.yaml"
    stages.write_text(json.dumps(CONFIG.model_dump(mode="json")))
    KupSettings(state_dir=state, db_url=ledger.url, stages=str(stages), bootstrap=bootstrap).save()
    return state


def produce(bootstrap: str, per_partition: dict[int, int]) -> None:
    p = Producer({"bootstrap.servers": bootstrap, "batch.num.messages": 1, "log_level": 3})
    for part, n in per_partition.items():
        for i in range(n):
            p.produce("t.a", value=b"%d" % i, partition=part)
    assert p.flush(10) == 0


def test_partitions_lag_and_topics_of_the_broker(make_app, ledger, tmp_path, broker):
    produce(broker.bootstrap, {0: 3, 1: 1})
    state = state_dir(tmp_path, ledger, broker.bootstrap)
    with TestClient(make_app(state_dir=state)) as c:
        body = c.get("/api/dashboard/live").json()
    assert body["broker"]["state"] == "up" and broker.bootstrap in body["broker"]["detail"]
    assert body["topics"]["t.a"] == 2 and body["topics"]["t.b"] == 2
    a = {x["partition"]: x for x in body["partitions"] if x["group"] == "jaas-kup.a"}
    assert {k: (v["lag"], v["high"]) for k, v in a.items()} == {0: (3, 3), 1: (1, 1)}
    assert a[0]["group"] == "jaas-kup.a" and a[0]["topic"] == "t.a"
    assert a[0]["status"] in {"OK", "WARN", "ERR", "STALL", "STOP", "REWIND"}


def test_without_a_pipeline_or_broker_the_state_is_unknown(client, make_app, ledger, tmp_path):
    body = client.get("/api/dashboard/live").json()
    assert body == {
        "broker": {"state": "unknown", "detail": "no pipeline state directory"},
        "topics": {},
        "partitions": [],
    }
    with TestClient(make_app(state_dir=state_dir(tmp_path, ledger, None))) as c:
        body = c.get("/api/dashboard/live").json()
    assert body["broker"]["state"] in {"unknown", "down"} and body["partitions"] == []
