"""The real Nginx with deploy/nginx/nginx.conf.template in front of the real back end."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from jaas.kup.states import JobKey
from tests.portal.conftest import REPO, Served, free_port, need
from tests.portal.test_stream import read_events

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


@pytest.fixture
def nginx(tmp_path: Path, make_app, spa: Path):
    need(Path(NGINX).is_file(), "nginx not installed (Debian package nginx)")
    app = make_app(stream_interval=0.1, heartbeat=0.5, static_dir=spa)
    with Served(app) as api:
        prefix = tmp_path / "nginx"
        (prefix / "tmp").mkdir(parents=True)
        port = free_port()
        template = (REPO / "deploy" / "nginx" / "nginx.conf.template").read_text()
        values = {
            "PORTAL_LISTEN": f"127.0.0.1:{port}",
            "PORTAL_UPSTREAM": f"127.0.0.1:{api.port}",
            "PORTAL_ROOT": str(spa),
        }
        conf = template  # like `envsubst '${PORTAL_LISTEN} ...'`: only these three names
        for name, value in values.items():
            conf = conf.replace("${" + name + "}", value)
        (prefix / "nginx.conf").write_text(conf)
        cmd = [NGINX, "-p", str(prefix), "-c", str(prefix / "nginx.conf"), "-e", "stderr"]
        if os.geteuid() == 0:  # workers would run as nobody and not read the tmp dirs
            cmd += ["-g", "user root;"]
        subprocess.run([*cmd, "-t"], check=True, capture_output=True, timeout=30)
        subprocess.run(cmd, check=True, capture_output=True, timeout=30)
        try:
            url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 10
            while True:
                try:
                    httpx.get(url, timeout=1)
                    break
                except httpx.TransportError:
                    assert time.monotonic() < deadline, (prefix / "error.log").read_text()
                    time.sleep(0.1)
            yield url
        finally:
            subprocess.run([*cmd, "-s", "stop"], capture_output=True, timeout=30)


@pytest.mark.slow
def test_spa_and_api_through_nginx(nginx):
    index = httpx.get(nginx + "/", timeout=5)
    assert index.status_code == 200 and '<div id="app">' in index.text
    # a client-side route is served the SPA too (bookmarkable views)
    deep = httpx.get(nginx + "/jobs?stage=a&state=dead", timeout=5)
    assert deep.status_code == 200 and '<div id="app">' in deep.text
    summary = httpx.get(nginx + "/api/summary", timeout=5).json()
    assert summary["jobs"]["a"]["done"] == 6
    r = httpx.get(nginx + "/api/jobs", params={"limit": 10**6}, timeout=5)
    assert r.status_code == 422


@pytest.mark.slow
def test_sse_frames_arrive_unbuffered_through_nginx(nginx, ledger, tmp_path):
    with httpx.Client(timeout=10) as c, c.stream("GET", nginx + "/api/stream") as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        it = r.iter_lines()
        (snap,) = read_events(it, 1)
        assert snap["event"] == "snapshot"
        t = ledger.start(JobKey("run1_0001.raw", "b", "7"), worker="w", log_dir=str(tmp_path))
        changed = time.monotonic()
        ledger.finish(t, exit_code=0)
        (frame,) = read_events(it, 1)
        delay = time.monotonic() - changed
    assert frame["event"] == "summary.diff"
    assert json.loads(frame["data"])["data"]["jobs"]["b"]["done"] == 1
    assert delay < 1.0, f"frame took {delay:.2f} s through nginx: buffered?"
