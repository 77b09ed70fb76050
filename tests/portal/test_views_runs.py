"""Dashboard history (throughput, lag, broker) and the runs view, on a real ledger."""

from __future__ import annotations

import json
import time

from fastapi.testclient import TestClient

from jaas.kup.alerts import Alert, AlertStore, Severity
from jaas.kup.bus import BrokerState
from jaas.kup.config import KupSettings
from jaas.kup.lag import LagStatus
from jaas.kup.manifest import register_manifest, write_manifest
from jaas.kup.monitor import Monitor
from jaas.kup.snapshot import Snapshot, StageSnapshot
from tests.portal.conftest import CONFIG, N_DONE


def _record(ledger, at: float, lag_b: int, consumed_b: int, fpm: float) -> None:
    a = StageSnapshot("a", "t.a", "jaas-kup.a", 60.0, {"done": N_DONE}, files_per_min=fpm)
    a.produced, a.consumed, a.lag = 8, 8, 0
    b = StageSnapshot("b", "t.b", "jaas-kup.b", 60.0, {"queued": N_DONE}, files_per_min=0.0)
    b.produced, b.consumed, b.lag = consumed_b + lag_b, consumed_b, lag_b
    b.lag_status = LagStatus.STALL if lag_b > 4 else LagStatus.OK
    Monitor(ledger, None).record(Snapshot(at, BrokerState("127.0.0.1:1", True), [a, b]))


def test_history_gives_series_lag_trend_and_broker_state(client, ledger):
    now = time.time()
    for i, (lag, consumed) in enumerate([(2, 0), (4, 2), (6, 3)]):
        _record(ledger, now - 120 + 60 * i, lag, consumed, fpm=1.5 * i)
    body = client.get("/api/dashboard/history", params={"minutes": 10}).json()
    a, b = body["stages"]
    assert (a["stage"], b["stage"]) == ("a", "b")
    assert a["files_per_min"] == [0.0, 1.5, 3.0] and len(a["at"]) == 3
    assert b["lag"] == [2, 4, 6]
    lag_b = body["lag"][1]
    assert lag_b["stage"] == "b" and lag_b["lag"] == 6 and lag_b["trend"] == 4
    assert lag_b["status"] == "STALL"
    # 3 messages consumed in 120 s: 6 behind is 240 s
    assert abs(lag_b["seconds_behind"] - 240.0) < 1.0
    assert body["lag"][0]["seconds_behind"] == 0.0
    assert body["broker"]["state"] == "up"
    AlertStore(ledger.engine).sync(
        [Alert("broker_down", "127.0.0.1:1", Severity.CRITICAL, "broker does not answer")]
    )
    body = client.get("/api/dashboard/history").json()
    assert body["broker"] == {"state": "down", "detail": "broker does not answer"}


def test_history_without_monitor_rows_is_empty_not_an_error(client):
    body = client.get("/api/dashboard/history").json()
    assert [s["at"] for s in body["stages"]] == [[], []]
    assert body["lag"][0]["lag"] is None and body["broker"]["state"] == "unknown"
    r = client.get("/api/dashboard/history", params={"minutes": 0})
    assert r.status_code == 422 and "minutes" in r.json()["detail"]


def test_runs_show_completeness_per_stage_and_lag_behind_newest_raw(client, ledger, tmp_path):
    (tmp_path / "run2_0000.raw").write_bytes(b"y")
    ledger.submit_files([tmp_path / "run2_0000.raw"])
    runs = client.get("/api/runs").json()
    assert [r["run"] for r in runs] == [2, 1]
    r1 = runs[1]
    assert r1["files"] == N_DONE + 2
    assert [(s["stage"], s["done"], s["percent"]) for s in r1["stages"]] == [
        ("a", N_DONE, 75.0),
        ("b", 0, 0.0),
    ]
    assert r1["behind_seconds"] >= 0 and r1["manifest"] == "none"
    assert r1["text"].startswith("run 1: a 75 %, b 0 %, ")
    assert "behind the newest RAW" in r1["text"]


def test_runs_match_the_end_of_run_manifest(make_app, ledger, tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    stages = tmp_path / "stages.yaml"
    stages.write_text(json.dumps(CONFIG.model_dump(mode="json")))
    KupSettings(state_dir=state, db_url=ledger.url, stages=str(stages)).save()
    raws = sorted(tmp_path.glob("run1_*.raw"))
    write_manifest(tmp_path / "run1.json", 1, raws)
    register_manifest(state, tmp_path / "run1.json")
    with TestClient(make_app(state_dir=state)) as c:
        run = c.get("/api/runs").json()[0]
        assert run["manifest"] == "incomplete"  # not every file done at every stage
        assert "8 file(s) in the manifest" in run["manifest_detail"]
        raws[0].write_bytes(b"changed")  # the RAW on disk no longer matches its manifest
        run = c.get("/api/runs").json()[0]
        assert run["manifest"] == "mismatched"
        assert "run1_0000.raw" in run["manifest_detail"]
