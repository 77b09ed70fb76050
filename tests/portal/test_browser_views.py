"""Real Chromium on the new views: history charts and lag, runs, alert handling, reset, replicas."""

from __future__ import annotations

import time

import pytest

from jaas.kup.alerts import Alert, AlertStore, Severity
from jaas.kup.states import JobKey
from tests.portal import test_browser
from tests.portal.conftest import Served
from tests.portal.test_views_runs import _record
from tests.portal.test_views_transfers import replicate

browser = test_browser.browser  # the real-Chromium fixture
shot = test_browser.shot

pytestmark = pytest.mark.slow


def _sign_in(page, token: str, who: str) -> None:
    page.get_by_label("API token").fill(token)
    page.get_by_role("button", name="Use token").click()
    page.get_by_text(who).wait_for(timeout=10000)


@pytest.mark.parametrize("width", [1280, 2560])
def test_dashboard_charts_lag_and_broker_follow_the_history(
    browser,
    make_app,
    spa,
    ledger,
    width,
):
    now = time.time()
    for i, (lag, consumed) in enumerate([(2, 0), (4, 2), (6, 3)]):
        _record(ledger, now - 120 + 60 * i, lag, consumed, fpm=1.5 * i)
    with Served(make_app(stream_interval=0.2, static_dir=spa)) as srv:
        page = browser.new_page(viewport={"width": width, "height": 1000})
        page.goto(srv.url + "/")
        row = page.locator('[data-lag="b"]')
        row.wait_for(timeout=15000)
        assert "⏸ STALL" in row.inner_text() and "↑ +4" in row.inner_text()
        assert "4 min" in row.inner_text()  # 6 messages behind at 3 per 2 min
        assert "✔ OK" in page.locator('[data-lag="a"]').inner_text()
        assert "Broker UP" in page.locator('[data-test="broker"]').inner_text()
        assert page.locator(".chart canvas").count() == 2
        last = page.locator('[data-last="Consumer lag per stage:b"]')
        assert last.inner_text().strip() == "b 6"
        # no horizontal scrolling at laptop or wall-screen width
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        shot(page, f"dashboard-history-{width}")
        _record(ledger, time.time(), 1, 9, fpm=4.0)  # the monitor writes a new row
        page.wait_for_function(
            "document.querySelector('[data-lag=\"b\"]').innerText.includes('OK')",
            timeout=15000,
        )
        assert last.inner_text().strip() == "b 1"


def test_runs_view_shows_completeness_and_manifest(browser, make_app, spa):
    with Served(make_app(static_dir=spa)) as srv:
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.goto(srv.url + "/runs")
        line = page.locator('[data-run="1"]')
        line.wait_for(timeout=15000)
        assert line.inner_text().startswith("run 1: a 75 %, b 0 %")
        assert "75 % (6/8)" in page.locator('[data-cell="1:a"]').inner_text()
        assert "– none" in page.inner_text("table")
        shot(page, "runs")


def test_alerts_ack_and_silence_with_operate_only(browser, make_app, spa, ledger, tokens):
    AlertStore(ledger.engine).sync(
        [Alert("lag", "jaas-kup.b", Severity.CRITICAL, "consumer group jaas-kup.b: STALL")]
    )
    with Served(make_app(static_dir=spa)) as srv:
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.goto(srv.url + "/alerts")
        alert = page.locator('[data-alert="lag:jaas-kup.b"]')
        alert.wait_for(timeout=15000)
        page.locator('[data-test="rules"]').get_by_text("failure_warn = 0.2").wait_for(
            timeout=10000
        )
        _sign_in(page, tokens["read"], "token:read-user (read)")
        assert page.locator('[data-test="ack"]').count() == 0
        status = page.evaluate(
            """async (t) => (await fetch('/api/alerts/silence', {method: 'POST',
                 headers: {'Authorization': 'Bearer ' + t, 'Content-Type': 'application/json'},
                 body: '{"subject": "a", "minutes": 5}'})).status""",
            tokens["read"],
        )
        assert status == 403
        _sign_in(page, tokens["operate"], "token:operate-user (operate)")
        page.get_by_label("note", exact=True).fill("on it")
        page.locator('[data-test="ack"]').click()
        alert.get_by_text("acknowledged by token:operate-user (on it)").wait_for(timeout=10000)
        page.get_by_label("silence minutes").fill("45")
        page.locator('[data-test="silence"]').click()
        alert.get_by_text("silenced until").wait_for(timeout=10000)
        audit_list = page.locator('[data-test="alert-audit"]')
        audit_list.get_by_text("token:operate-user silence lag on jaas-kup.b until").wait_for(
            timeout=10000
        )
        audit = audit_list.inner_text()
        assert "token:operate-user ack lag on jaas-kup.b: on it" in audit
        shot(page, "alerts-handled")


def test_reset_from_the_file_page_previews_then_confirms(browser, make_app, spa, tokens):
    with Served(make_app(static_dir=spa)) as srv:
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.goto(f"{srv.url}/files/run1_0001.raw")
        page.get_by_text("a (v1): done").wait_for(timeout=15000)
        assert page.locator('[data-test="reset-a"]').count() == 0  # anonymous read
        _sign_in(page, tokens["operate"], "token:operate-user (operate)")
        page.locator('[data-test="reset-a"]').click()
        page.get_by_label("note", exact=True).fill("recalibrated")
        page.locator('[data-test="preview"]').click()
        plan = page.locator('[data-test="plan"]')
        plan.get_by_text("This reset changes 2 job(s) and remakes 1 product(s)").wait_for(
            timeout=10000
        )
        assert "run1_0001.raw b (v7): queued" in plan.inner_text()
        shot(page, "reset-preview")
        page.locator('[data-test="confirm"]').click()
        page.get_by_text("✔ 2 job(s) changed by token:operate-user (reset)").wait_for(timeout=10000)
        page.get_by_role("link", name="run1_0001.raw").first.click()
        page.get_by_text("a (v1): queued").wait_for(timeout=10000)
        assert "reset a: done → pending recalibrated" in page.inner_text("main")
        shot(page, "reset-done")


def test_replicas_on_the_file_page_and_transfers_view(browser, make_app, spa, ledger):
    replicate(ledger, ("CNAF",))
    with Served(make_app(static_dir=spa)) as srv:
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.goto(f"{srv.url}/files/run1_0001.raw")
        reps = page.locator('[data-test="replicas"]')
        reps.get_by_text("✔ CNAF: ok").wait_for(timeout=15000)
        assert "via IHEP -> CNAF" in reps.inner_text()
        page.get_by_role("link", name="Transfers").click()
        page.get_by_text("run 1: 0/2 files at CNAF verified").wait_for(timeout=10000)
        page.get_by_role("link", name="/juno/raw/run1_0001.raw").click()
        page.get_by_text("a (v1): done").wait_for(timeout=10000)
        shot(page, "transfers")


def test_quality_rates_update_when_files_publish(browser, make_app, spa, ledger, tmp_path):
    from tests.portal.test_views_quality import _ibd, _index, _publish

    first = [(1.0, 500.0, 1), (2.0, 500.0, 1), *_ibd(100.0)]
    _publish(ledger.url, _index(tmp_path / "a.index.parquet", 0, first), 0)
    with Served(make_app(stream_interval=0.2, static_dir=spa)) as srv:
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.goto(srv.url + "/quality")
        row = page.locator('[data-hour="0"]')
        row.wait_for(timeout=120000)  # the first ibd() compiles its kernels
        # the seconds of data in the hour (file span 1 s .. 100 s), then the counts
        assert row.inner_text().split("\t")[1:] == ["99 s of data", "4", "2", "1"]
        assert "1 file(s) published" in page.inner_text("h2")
        page.wait_for_timeout(1000)  # the stream is open before the next file publishes
        later = [(3600.0 + 10, 500.0, 1), *_ibd(3600.0 + 100), *_ibd(3600.0 + 200)]
        _publish(ledger.url, _index(tmp_path / "b.index.parquet", 1, later), 1)
        t = ledger.start(JobKey("run1_0000.raw", "b", "7"), worker="w", log_dir=str(tmp_path))
        assert t is not None
        ledger.finish(t, exit_code=0)  # the last stage published a file: a quality frame
        page.locator('[data-hour="1"]').wait_for(timeout=60000)
        hour1 = page.locator('[data-hour="1"]').inner_text().split("\t")[1:]
        assert hour1 == ["190 s of data", "5", "1", "2"]  # file span 3610 s .. 3800 s
        shot(page, "quality")


def test_replay_a_run_from_the_actions_page(browser, make_app, spa, tokens):
    with Served(make_app(static_dir=spa)) as srv:
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.goto(f"{srv.url}/actions?action=replay&run=1")
        page.get_by_text("Actions need a token with the operate scope").wait_for(timeout=15000)
        assert page.locator('[data-test="preview"]').count() == 0
        _sign_in(page, tokens["operate"], "token:operate-user (operate)")
        page.get_by_label("stage", exact=True).fill("a")
        page.locator('[data-test="preview"]').click()
        plan = page.locator('[data-test="plan"]')
        plan.get_by_text("This replay changes 1 job(s)").wait_for(timeout=10000)
        assert "run1_0006.raw a (v1): dead" in plan.inner_text()
        page.locator('[data-test="confirm"]').click()
        page.get_by_text("✔ 1 job(s) changed by token:operate-user (replay)").wait_for(
            timeout=10000
        )
        assert "dead\tqueued" in page.inner_text("table")
        shot(page, "replay-done")


def test_dashboard_lists_each_partition_and_the_brokers_topics(
    browser, make_app, spa, ledger, tmp_path
):
    from jaas.kup.broker import EmbeddedBroker, ensure_topics
    from tests.portal.test_views_live import produce, state_dir

    with EmbeddedBroker() as b:
        ensure_topics(b.bootstrap, ["t.a", "t.b"], partitions=2)
        produce(b.bootstrap, {0: 3, 1: 1})
        app = make_app(static_dir=spa, state_dir=state_dir(tmp_path, ledger, b.bootstrap))
        with Served(app) as srv:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(srv.url + "/")
            row = page.locator('[data-partition="jaas-kup.a:0"]')
            row.wait_for(timeout=20000)
            cells = row.inner_text().split("\t")
            assert cells[:3] == ["jaas-kup.a", "t.a", "0"] and cells[5:7] == ["3", "3"]
            assert cells[3].strip().split(" ", 1)[1] in {"OK", "WARN", "ERR", "STALL", "STOP"}
            broker = page.locator('[data-test="broker"]').inner_text()
            assert "Broker UP" in broker and "t.a (2 partitions)" in broker
            shot(page, "dashboard-partitions")
