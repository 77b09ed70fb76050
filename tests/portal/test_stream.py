"""Live stream over a real uvicorn server: typed frames with ids, resume, polling fallback."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import httpx

from jaas.kup.states import JobKey
from tests.portal.conftest import Served


def read_events(resp: httpx.Response | Iterator[str], n: int, timeout: float = 10.0) -> list[dict]:
    """The next ``n`` SSE events (id, event, data) of a streaming response or its lines."""
    events, cur = [], {}
    deadline = time.monotonic() + timeout
    lines = resp.iter_lines() if isinstance(resp, httpx.Response) else resp
    for line in lines:
        if time.monotonic() > deadline:
            break
        if line == "":
            if "data" in cur:
                events.append(cur)
                if len(events) == n:
                    break
            cur = {}
        elif not line.startswith(":"):
            k, _, v = line.partition(":")
            cur[k] = v.lstrip()
    return events


def test_stream_sends_snapshot_diffs_and_resumes(make_app, ledger, tmp_path):
    app = make_app(stream_interval=0.1, heartbeat=0.5)
    with Served(app) as srv, httpx.Client(base_url=srv.url, timeout=10) as c:
        with c.stream("GET", "/api/stream") as r:
            assert r.headers["content-type"].startswith("text/event-stream")
            (snap,) = read_events(r, 1)
        assert snap["event"] == "snapshot"
        frame = json.loads(snap["data"])
        assert frame["v"] == 1 and frame["data"]["summary"]["jobs"]["a"]["done"] == 6
        last = snap["id"]
        # a change while the client is away: one more done job at stage b
        t = ledger.start(JobKey("run1_0000.raw", "b", "7"), worker="w", log_dir=str(tmp_path))
        ledger.finish(t, exit_code=0)
        time.sleep(0.5)
        with c.stream("GET", "/api/stream", headers={"Last-Event-ID": last}) as r:
            events = []
            lines = r.iter_lines()
            for _ in range(4):  # until the quality frame: b is the last stage
                events += read_events(lines, 1)
                if events and events[-1]["event"] == "quality":
                    break
        assert events[0]["event"] == "summary.diff" and int(events[0]["id"]) > int(last)
        assert json.loads(events[-1]["data"])["data"] == {"stage": "b", "published": 1}
        merged: dict[str, int] = {}  # under load the hub may also see the job running
        for e in events[:-1]:
            assert e["event"] == "summary.diff"
            merged.update(json.loads(e["data"])["data"]["jobs"]["b"])
        assert {k: v for k, v in merged.items() if v} == {"queued": 5, "done": 1}
        # polling fallback gives the same frames; an unknown id gets a snapshot
        polled = c.get("/api/frames", params={"after": last}).json()
        assert [f["id"] for f in polled] == [int(e["id"]) for e in events]
        assert c.get("/api/frames", params={"after": 10**6}).json()[0]["type"] == "snapshot"


def test_stream_heartbeat_keeps_idle_connection_alive(make_app):
    app = make_app(stream_interval=0.1, heartbeat=0.3)
    with Served(app) as srv, httpx.Client(base_url=srv.url, timeout=10) as c:
        last = c.get("/api/frames").json()[0]["id"]
        with c.stream("GET", "/api/stream", headers={"Last-Event-ID": str(last)}) as r:
            start = time.monotonic()
            for line in r.iter_lines():
                if line.startswith(":"):
                    break
            assert time.monotonic() - start < 3
