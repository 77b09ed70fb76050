"""The operator's walk-through on a live pipeline (issue 10), and the lag views behind it.

A real ``jaas kup up`` pipeline (embedded Kafka-protocol broker, SQLite ledger, local
executor, monitor every second) in a tmp state dir, the portal served on it, real
Chromium: counts move as RAW files flow; a corrupt file fails with its reason; a read
token gets no retry button and a 403; an operate token retries it to completion; a stage
worker stopped (SIGSTOP) while files keep arriving turns its group's lag alert red within
the window the stages YAML configures.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from jaas.kup.bus import BrokerState
from jaas.kup.config import KupSettings, PipelineConfig
from jaas.kup.lag import LagStatus
from jaas.kup.ledger import Ledger
from jaas.kup.monitor import Monitor
from jaas.kup.pipeline import down, ingest, status, up
from jaas.kup.snapshot import PartitionLag, Snapshot, StageSnapshot
from jaas.portal.app import create_app
from jaas.portal.auth import TokenStore
from jaas.portal.settings import PortalSettings
from jaas.portal.source import LedgerSource
from tests.portal.conftest import Served
from tests.portal.test_browser import browser, shot  # noqa: F401 (the fixture)

WINDOW, INTERVAL, SESSION_MS = 3, 1.0, 3000
# stage b fails (exit 65, deterministic) on a file starting with BAD until FIXED exists
CHECK = (
    "import os, sys; data = open(sys.argv[1], 'rb').read(); "
    "bad = data.startswith(b'BAD') and not os.path.exists(sys.argv[2]); "
    "print('checked', sys.argv[1]); "
    "bad and print('corrupt header: expected RAW magic, got BAD', file=sys.stderr); "
    "sys.exit(65 if bad else 0)"
)


def stages_yaml(fixed: Path) -> str:
    return f"""\
stages:
  - {{name: a, input: live.a, output: live.b, entry: 'jaas.kup.stages:copy', timeout: 30}}
  - name: b
    input: live.b
    command: ["{{python}}", "-c", {json.dumps(CHECK)}, "{{input}}", "{fixed}"]
    timeout: 30
    retries: 0
monitor:
  window: {WINDOW}
  rules: {{failure_window: 120, queued_stall: 300}}
"""


def raw(d: Path, seq: int, bad: bool = False) -> Path:
    p = d / f"run7_{seq:04d}.raw"
    p.write_bytes((b"BAD" if bad else b"RAW") + p.name.encode())
    return p


def _cell(page, cell: str, value: int, timeout: float = 60000) -> None:
    page.wait_for_function(
        f"Number(document.querySelector('[data-cell=\"{cell}\"]')?.innerText.trim()) >= {value}",
        timeout=timeout,
    )


@pytest.mark.slow
def test_operator_walkthrough_on_a_live_pipeline(browser, spa, tmp_path):  # noqa: F811
    fixed = tmp_path / "fixed"
    stages = tmp_path / "stages.yaml"
    stages.write_text(stages_yaml(fixed), encoding="utf-8")
    sd = tmp_path / "kup"
    drop = tmp_path / "raw"
    drop.mkdir()
    settings = KupSettings(state_dir=sd, stages=str(stages), session_timeout_ms=SESSION_MS)
    state = up(settings, monitor_interval=INTERVAL, supervise=False)
    worker_a = int(state["workers"]["a"])
    stopped = False
    try:
        store = TokenStore(Ledger(settings.database, settings.pipeline()).engine)
        read_tok = store.create("reader", "read")[0]
        op_tok = store.create("shifter", "operate")[0]
        portal = PortalSettings(
            db_url=settings.database, stages=stages, state_dir=sd, static_dir=spa,
            stream_interval=0.5,
        )  # fmt: skip
        with Served(create_app(portal)) as srv:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(srv.url + "/")
            page.get_by_text("(live)").wait_for(timeout=15000)
            # counts move as files flow: 3 files, then 3 more
            ingest(sd, [raw(drop, i) for i in range(1, 4)])
            _cell(page, "b:done", 3)
            ingest(sd, [raw(drop, i) for i in range(4, 7)])
            _cell(page, "b:done", 6)
            shot(page, "live-dashboard")

            # a corrupt file fails at b: its page shows the reason (the log's last line)
            bad = raw(drop, 7, bad=True)
            ingest(sd, [bad])
            _cell(page, "b:dead", 1)
            page.goto(f"{srv.url}/files/{bad.name}")
            page.get_by_text("b (v1): dead").wait_for(timeout=15000)
            assert "corrupt header: expected RAW magic, got BAD" in page.inner_text("main")
            assert "exit code 65" in page.inner_text("main")
            # ... and the tail of the attempt's log, earlier lines included
            tail = page.locator('[data-test="log-tail"]').first
            assert "checked " in tail.inner_text()  # the stdout line before the error
            assert "corrupt header: expected RAW magic, got BAD" in tail.inner_text()
            # a read token: no retry button, and the API refuses the action
            page.get_by_label("API token").fill(read_tok)
            page.get_by_role("button", name="Use token").click()
            page.get_by_text("token:reader (read)").wait_for(timeout=10000)
            assert page.locator('[data-test="retry"]').count() == 0
            refused = page.evaluate(
                """async ([t, f]) => (await fetch('/api/actions/retry', {method: 'POST',
                     headers: {'Authorization': 'Bearer ' + t,
                               'Content-Type': 'application/json'},
                     body: JSON.stringify({file: f})})).status""",
                [read_tok, bad.name],
            )
            assert refused == 403
            # the cause is fixed; an operate token retries it and it completes
            fixed.write_text("fixed", encoding="utf-8")
            page.get_by_label("API token").fill(op_tok)
            page.get_by_role("button", name="Use token").click()
            page.get_by_text("token:shifter (operate)").wait_for(timeout=10000)
            page.locator('[data-test="retry"]').click()
            page.locator('[data-test="confirm"]').click()
            page.get_by_text("1 job(s) re-queued by token:shifter").wait_for(timeout=10000)
            deadline = time.monotonic() + 60
            while "b (v1): done" not in page.inner_text("main"):
                assert time.monotonic() < deadline, page.inner_text("main")
                time.sleep(1)
                page.reload()
            shot(page, "live-retried")

            # stop stage a's worker while files keep arriving: its lag alert turns red
            page.goto(srv.url + "/")
            page.get_by_text("(polling)").wait_for(timeout=15000)
            os.kill(worker_a, signal.SIGSTOP)
            stopped = True
            t0 = time.monotonic()
            banner = page.get_by_role("alert").filter(has_text="lag on jaas-kup.a")
            seq = 8
            while banner.count() == 0:
                assert time.monotonic() - t0 < 60, "no lag alert for the stopped stage"
                ingest(sd, [raw(drop, seq)])
                seq += 1
                time.sleep(0.5)
            took = time.monotonic() - t0
            text = banner.first.inner_text()
            assert "CRITICAL" in text and "✖" in text, text
            assert "sev-critical" in (banner.first.get_attribute("class") or "")
            # the window: session timeout (the group empties) + window x interval to STOP,
            # + the page's 2 s poll and one monitor interval of slack
            bound = SESSION_MS / 1000 + 2 * WINDOW * INTERVAL + 2 + 2 * INTERVAL
            print(f"lag alert red after {took:.1f} s (bound {bound:.1f} s)", file=sys.stderr)
            assert took <= bound, f"lag alert after {took:.1f} s, over {bound:.1f} s"
            # the per-partition history shows the stopped group's partitions red with text
            rows = page.locator('[data-lag-partition^="jaas-kup.a:"]')
            red = rows.locator("td.lag-STOP, td.lag-STALL, td.lag-ERR")
            red.first.wait_for(timeout=15000)
            assert red.first.inner_text().strip() in ("⏹ STOP", "⏸ STALL", "✖ ERR")
            shot(page, "live-lag-alert")
            os.kill(worker_a, signal.SIGCONT)
            stopped = False
            # resumed: it catches up; the alert clears
            page.get_by_text("No active alerts").wait_for(timeout=60000)
    finally:
        if stopped:
            os.kill(worker_a, signal.SIGCONT)
        down(sd, timeout=10)
    assert not any(status(sd).processes.values())


# ---- the API behind the views (no browser, no broker) --------------------------------------

CONFIG = PipelineConfig.model_validate(
    {
        "stages": [
            {"name": "a", "input": "t.a", "output": "t.b", "entry": "m:f"},
            {"name": "b", "input": "t.b", "entry": "m:f"},
        ],
        "monitor": {
            "window": 4,
            "lag_warn": 20,
            "rules": {"failure_warn": 0.1, "failure_critical": 0.3, "queued_stall": 90},
        },
    }
)


@pytest.fixture
def configured(tmp_path):
    led = Ledger(f"sqlite:///{tmp_path / 'kup.db'}", CONFIG)
    app = create_app(PortalSettings(db_url=led.url), LedgerSource(led))
    with TestClient(app) as c:
        yield led, c
    led.close()


def test_rules_list_the_pipelines_configured_thresholds(configured):
    _, client = configured
    rules = {r["name"]: r["thresholds"] for r in client.get("/api/alerts/rules").json()}
    assert rules["failure_rate"] == {
        "failure_window": 900.0, "failure_warn": 0.1, "failure_critical": 0.3,
        "min_attempts": 3.0,
    }  # fmt: skip
    assert rules["stuck_queued"] == {"queued_stall": 90.0}
    assert rules["lag"] == {"window": 4.0, "lag_warn": 20.0}  # no lag_error configured


def _snap(at: float, parts: list[tuple[int, int, int, LagStatus]]) -> Snapshot:
    st = StageSnapshot("a", "t.a", "jaas-kup.a", 60.0, {})
    st.partitions = [
        PartitionLag("jaas-kup.a", "t.a", p, c, h, h - c, s, f"{s.value} because")
        for p, c, h, s in parts
    ]
    return Snapshot(at, BrokerState("127.0.0.1:1", up=True), [st])


def test_lag_partitions_give_each_partitions_trend_seconds_behind_and_status(configured):
    led, client = configured
    mon = Monitor(led, None)
    t = float(int(time.time()) - 120)
    ok, stop = LagStatus.OK, LagStatus.STOP
    mon.record(_snap(t, [(0, 0, 10, ok), (1, 5, 5, ok)]))
    mon.record(_snap(t + 10, [(0, 5, 20, ok), (1, 5, 9, ok)]))  # p0 consumed 5 in 10 s
    mon.record(_snap(t + 20, [(0, 10, 30, ok), (1, 5, 12, stop)]))  # p1 consumes nothing
    body = client.get("/api/dashboard/lag-partitions", params={"minutes": 10}).json()
    got = {p["partition"]: p for p in body["partitions"]}
    assert set(got) == {0, 1}
    p0, p1 = got[0], got[1]
    assert (p0["stage"], p0["group"], p0["topic"]) == ("a", "jaas-kup.a", "t.a")
    assert p0["lags"] == [10, 15, 20] and p0["trend"] == 10 and p0["lag"] == 20
    assert p0["at"] == [t, t + 10, t + 20]
    # 10 consumed over 20 s = 0.5 msg/s: 20 behind is 40 s; the first sample has no rate
    assert p0["behind"] == [None, 30.0, 40.0] and p0["seconds_behind"] == 40.0
    assert p1["lags"] == [0, 4, 7] and p1["behind"] == [0.0, None, None]
    assert (p1["status"], p1["statuses"]) == ("STOP", ["OK", "OK", "STOP"])
    assert p1["reason"] == "STOP because"
    # outside the window: nothing; a bad window is a 422 naming the parameter
    old = client.get("/api/dashboard/lag-partitions", params={"minutes": 1}).json()
    assert old["partitions"] == []
    r = client.get("/api/dashboard/lag-partitions", params={"minutes": 0})
    assert r.status_code == 422 and "minutes" in r.text
