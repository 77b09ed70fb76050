"""Real Chromium (Debian package, driven by Playwright) on the portal serving the built SPA."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from jaas.kup.alerts import Alert, AlertStore, Severity
from jaas.kup.states import JobKey
from tests.portal.conftest import N_DONE, Served, need

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SHOTS = (
    Path(os.environ.get("JAAS_PORTAL_SHOTS", "")) if os.environ.get("JAAS_PORTAL_SHOTS") else None
)


@contextlib.contextmanager
def launched() -> Iterator[Any]:
    """Real Chromium through Playwright, closed on exit (tests/conftest.py's ``chromium``)."""
    need(Path(CHROMIUM).is_file(), "chromium not installed (Debian package chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        need(False, "playwright not installed (pip extra portal)")
        raise
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def browser(chromium: Any) -> Iterator[Any]:
    """The module's Chromium for one test; the contexts (and pages) it opened are closed
    after it, so tests share no cookies, storage or open pages."""
    yield chromium
    for context in chromium.contexts:
        context.close()


def shot(page, name: str) -> None:
    if SHOTS is not None:
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


@pytest.mark.slow
def test_dashboard_shows_counts_and_follows_the_stream(browser, make_app, spa, ledger, tmp_path):
    app = make_app(stream_interval=0.2, static_dir=spa)
    with Served(app) as srv:
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.goto(srv.url + "/")
        done = page.locator('[data-cell="a:done"]')
        done.wait_for(timeout=15000)
        assert done.inner_text().strip() == str(N_DONE)
        assert page.locator('[data-cell="b:queued"]').inner_text().strip() == str(N_DONE)
        assert "No active alerts" in page.inner_text("main")
        page.get_by_text("(live)").wait_for(timeout=10000)
        shot(page, "dashboard")
        # counts move as a file flows on
        t = ledger.start(JobKey("run1_0002.raw", "b", "7"), worker="w", log_dir=str(tmp_path))
        ledger.finish(t, exit_code=0)
        page.wait_for_function(
            "document.querySelector('[data-cell=\"b:done\"]')?.innerText.trim() === '1'",
            timeout=10000,
        )
        # an alert raised by the monitor appears as a banner with icon and text
        AlertStore(ledger.engine).sync(
            [Alert("lag", "group:b", Severity.CRITICAL, "consumer lag STALL: 40 messages")]
        )
        banner = page.get_by_role("alert").filter(has_text="consumer lag STALL")
        banner.wait_for(timeout=10000)
        assert "CRITICAL" in banner.inner_text() and "✖" in banner.inner_text()
        shot(page, "dashboard")
        # drill down: a bookmarkable jobs URL, then the dead file's page
        page.goto(srv.url + "/jobs?stage=a&state=dead")
        page.get_by_text("1 jobs").wait_for(timeout=10000)
        shot(page, "jobs")
        page.get_by_role("link", name=f"run1_{N_DONE:04d}.raw").click()
        page.get_by_text("bad header at byte 12").first.wait_for(timeout=10000)
        shot(page, "file")
        page.goto(srv.url + "/alerts")
        page.get_by_text("group:b").wait_for(timeout=10000)
        shot(page, "alerts")


@pytest.mark.slow
def test_retry_needs_operate_token_in_the_browser(browser, make_app, spa, tokens):
    dead = f"run1_{N_DONE:04d}.raw"
    with Served(make_app(static_dir=spa)) as srv:
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.goto(f"{srv.url}/files/{dead}")
        page.get_by_text("bad header at byte 12").first.wait_for(timeout=15000)
        # a read token: no action button, and the API refuses the action anyway
        page.get_by_label("API token").fill(tokens["read"])
        page.get_by_role("button", name="Use token").click()
        page.get_by_text("token:read-user (read)").wait_for(timeout=10000)
        assert page.locator('[data-test="retry"]').count() == 0
        status = page.evaluate(
            """async (t) => (await fetch('/api/actions/retry', {method: 'POST',
                 headers: {'Authorization': 'Bearer ' + t, 'Content-Type': 'application/json'},
                 body: '{}'})).status""",
            tokens["read"],
        )
        assert status == 403
        # an operate token: preview, confirm, the job is queued again and audited
        page.get_by_label("API token").fill(tokens["operate"])
        page.get_by_role("button", name="Use token").click()
        page.locator('[data-test="retry"]').click()
        page.get_by_text("This re-queues 1 job(s)").wait_for(timeout=10000)
        shot(page, "retry-preview")
        page.locator('[data-test="confirm"]').click()
        page.get_by_text("1 job(s) re-queued by token:operate-user").wait_for(timeout=10000)
        page.get_by_text("a (v1): queued").wait_for(timeout=10000)
        assert "retried from the portal" in page.inner_text("main")
        shot(page, "retry-done")


@pytest.mark.slow
def test_dashboard_with_auth_on_polls_the_fallback(
    browser, make_app, spa, tokens, ledger, tmp_path
):
    with Served(make_app(auth=True, stream_interval=0.2, static_dir=spa)) as srv:
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.goto(srv.url + "/")
        page.get_by_text("not signed in").wait_for(timeout=15000)
        page.get_by_label("API token").fill(tokens["read"])
        page.get_by_role("button", name="Use token").click()
        page.get_by_text("token:read-user (read)").wait_for(timeout=10000)
        page.reload()
        page.get_by_text("(polling)").wait_for(timeout=10000)
        assert page.locator('[data-cell="a:done"]').inner_text().strip() == str(N_DONE)
        t = ledger.start(JobKey("run1_0003.raw", "b", "7"), worker="w", log_dir=str(tmp_path))
        ledger.finish(t, exit_code=0)
        page.wait_for_function(
            "document.querySelector('[data-cell=\"b:done\"]')?.innerText.trim() === '1'",
            timeout=10000,
        )
