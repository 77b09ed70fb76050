"""Two users of a real JupyterHub in real Chromium run the example selection-panel notebook
(``examples/selection_panel.ipynb``, on the hub's data): the panel runs on the shared jaas
cluster, the dt slider changes the pair count and histogram, and the second user's first
query is served from the cluster's column cache."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import nbformat
import pytest

from jaas.sim import SimConfig, simulate
from tests.hub.conftest import PASSWORD, Hub

SHOTS = Path(os.environ["JAAS_HUB_SHOTS"]) if os.environ.get("JAAS_HUB_SHOTS") else None
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "selection_panel.ipynb"
# every code cell shows its execution count: the notebook ran to its end
ALL_RAN = """() => {
  const p = [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')];
  return p.length > 0 && p.every(e => /\\[\\d+\\]/.test(e.innerText));
}"""


def _shot(page, name: str) -> None:
    if SHOTS is not None:
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def _cache(hub: Hub) -> tuple[int, int]:
    """(hits, misses) summed over the shared cluster's workers."""
    import jaas.cluster

    with jaas.cluster.connect(hub.scheduler) as c:
        stats = c.cache_stats().values()
    return sum(s.hits for s in stats), sum(s.misses for s in stats)


def _open_panel(browser, hub: Hub, user: str):  # type: ignore[no-untyped-def]
    """Log in, open the notebook in JupyterLab, run all cells; the page and pair count."""
    from playwright.sync_api import TimeoutError

    home = hub.home(user)
    home.mkdir(parents=True, exist_ok=True)
    nb = nbformat.read(EXAMPLE, as_version=4)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}  # fmt: skip
    nbformat.write(nb, home / EXAMPLE.name)
    page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
    page.set_default_timeout(180_000)
    page.goto(hub.url + "/hub/login")
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", PASSWORD)
    page.click("#login_submit")
    page.wait_for_url(re.compile(rf"/user/{user}/lab"))
    page.goto(f"{hub.url}/user/{user}/lab/tree/{EXAMPLE.name}?reset")
    page.locator(".jp-Notebook .jp-Cell").first.wait_for()
    page.get_by_text(re.compile(r"Python 3 \(ipykernel\) \| Idle")).wait_for()
    started = page.locator(".jp-InputPrompt", has_text=re.compile(r"\[[*\d]")).first
    for _attempt in range(3):  # a click while the kernel still connects can be lost
        page.get_by_role("menuitem", name="Run", exact=True).click()
        page.get_by_role("menuitem", name=re.compile(r"^Run All Cells")).click()
        try:
            started.wait_for(timeout=30_000)
            break
        except TimeoutError:
            continue
    count = page.locator(".widget-html", has_text=re.compile(r"\d pairs")).first
    try:
        count.wait_for()
        page.get_by_text("ran on dask").wait_for()
        page.wait_for_function(ALL_RAN)  # the example's last cells set dt and reload it
    except Exception:
        _shot(page, f"{user}-failed")
        raise
    _shot(page, f"{user}-panel")
    return page, count


def _pairs(count) -> int:  # type: ignore[no-untyped-def]
    return int(re.search(r"([\d,]+) pairs", count.inner_text()).group(1).replace(",", ""))


@pytest.mark.slow
def test_two_users_share_the_cluster_and_the_slider_updates(start_hub, browser, tmp_path):
    data = tmp_path / "run"
    simulate(SimConfig(run=1, duration_s=1800, seed=5, mode="index",
                       scale={"reactor_ibd": 40.0}), data)  # fmt: skip
    hub = start_hub(
        JAAS_HUB_USERS="alice,bob", JAAS_HUB_PASSWORD=PASSWORD, JAAS_DATA=str(data),
        JAAS_HUB_WORKERS="2", JAAS_HUB_CACHE_BYTES="256MiB", JAAS_HUB_MEM_LIMIT="2G",
    )  # fmt: skip
    assert _cache(hub) == (0, 0)

    page, count = _open_panel(browser, hub, "alice")
    before = _pairs(count)
    assert before > 0
    hists = page.locator(".jaas-hists").first  # the panel's SVG histograms
    drawn = hists.inner_html()
    hits_a, misses_a = _cache(hub)
    assert misses_a > 0  # alice's first query read the files on the workers

    # drag the upper handle of the dt window to the left: fewer pairs, a new histogram
    slider = page.locator(".widget-hslider", has_text="dt [us]").first
    handle = slider.locator(".noUi-handle-upper")
    track = slider.locator(".noUi-target").bounding_box()
    box = handle.bounding_box()
    assert track is not None and box is not None
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(track["x"] + track["width"] * 0.15, y, steps=8)
    page.mouse.up()
    page.wait_for_function(  # the exact result after release (not the drag estimate)
        "([el, n]) => !el.innerText.includes(n) && !el.innerText.includes('estimate')",
        arg=[count.element_handle(), f"{before:,} pairs"],
    )
    deadline = time.monotonic() + 60
    while hists.inner_html() == drawn and time.monotonic() < deadline:
        time.sleep(0.2)
    assert hists.inner_html() != drawn, "histogram did not change"
    after = _pairs(count)
    assert 0 < after < before
    _shot(page, "alice-slider")
    time.sleep(1)  # let the cluster's last task report its cache look-ups

    hits_a, misses_a = _cache(hub)
    _page_b, count_b = _open_panel(browser, hub, "bob")
    assert _pairs(count_b) == before  # bob's default cuts: alice's first result
    hits_b, misses_b = _cache(hub)
    assert misses_b == misses_a, "bob's first query read files again (cold cache)"
    assert hits_b > hits_a, "bob's first query was not served from the shared cache"
