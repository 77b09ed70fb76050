"""`jaas portal --workers 2`: a real uvicorn with two worker processes on one port.

Which worker answered is visible in the live stream's frame ids: each worker's hub numbers
its frames from its own base (``id >> 32``). One portal serves the module's tests (it
starts three processes that import jaas afresh); no test changes another's jobs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from jaas.kup.config import KupSettings
from jaas.kup.ledger import Ledger
from tests.portal.conftest import free_port
from tests.portal.test_cli import JAAS, jaas
from tests.portal.test_stream import read_events


@pytest.fixture(scope="module")
def state_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A saved pipeline state with one queued job (as test_cli's fixture, for the module)."""
    root = tmp_path_factory.mktemp("workers")
    settings = KupSettings(state_dir=root / "kup")
    settings.save()
    led = Ledger(settings.database, settings.pipeline())
    raw = root / "a.raw"
    raw.write_bytes(b"x")
    led.submit_files([raw])
    led.close()
    return settings.state_dir


@pytest.fixture(scope="module")
def two_workers(state_dir: Path) -> Iterator[str]:
    port = free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    log = state_dir.parent / "portal.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [*JAAS, "portal", str(state_dir), "--port", str(port), "--workers", "2", "--auth"],
            env=env,
            stdout=out,
            stderr=out,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120  # spawned workers import jaas afresh
        while True:
            try:
                if httpx.get(f"{base}/api/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "portal did not start"
            time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(60)  # two workers shut down in turn; slow under load
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert "Traceback" not in log.read_text(), log.read_text()


def _worker_of(frame_id: int | str) -> int:
    return int(frame_id) >> 32


def test_token_made_by_the_cli_works_on_both_workers(two_workers, state_dir):
    r = jaas("portal", "token", "create", str(state_dir), "--name", "shift")
    assert r.returncode == 0, r.stderr
    auth = {"Authorization": f"Bearer {r.stdout.strip()}"}
    assert httpx.get(f"{two_workers}/api/summary").status_code == 401  # --auth: reads too
    answered: dict[int, int] = {}
    for _ in range(400):  # a new connection each time: either worker may accept it
        with httpx.Client(base_url=two_workers, headers=auth, timeout=10) as c:
            (snap,) = c.get("/api/frames").json()
            who = c.get("/api/whoami")
            assert who.status_code == 200 and who.json()["name"] == "token:shift"
            summary = c.get("/api/summary")
            assert summary.status_code == 200
            assert summary.json()["jobs"] == snap["data"]["summary"]["jobs"]
        answered[_worker_of(snap["id"])] = answered.get(_worker_of(snap["id"]), 0) + 1
        if len(answered) == 2:
            break
    assert len(answered) == 2, f"only one worker answered: {answered}"


def test_stream_resumes_with_last_event_id_across_two_workers(two_workers, state_dir, tmp_path):
    token = jaas("portal", "token", "create", str(state_dir), "--name", "ui").stdout.strip()
    auth = {"Authorization": f"Bearer {token}"}
    with (
        httpx.Client(base_url=two_workers, headers=auth, timeout=10) as c,
        c.stream("GET", "/api/stream") as r,
    ):
        (snap,) = read_events(r, 1)
    assert snap["event"] == "snapshot"
    last = snap["id"]
    settings = KupSettings.load(state_dir)
    led = Ledger(settings.database, settings.pipeline())
    raw = tmp_path / "b.raw"
    raw.write_bytes(b"y")
    led.submit_files([raw])  # a second queued job while the client is away
    led.close()
    time.sleep(2.5)  # both hubs poll every second
    stage = next(iter(json.loads(snap["data"])["data"]["summary"]["jobs"]))
    seen = set()
    for _ in range(400):
        with (
            httpx.Client(base_url=two_workers, headers=auth, timeout=10) as c,
            c.stream("GET", "/api/stream", headers={"Last-Event-ID": last}) as r,
        ):
            (event,) = read_events(r, 1)
        frame = json.loads(event["data"])
        if _worker_of(event["id"]) == _worker_of(last):
            # the same worker: exactly the missed frame, after the resumed id
            assert event["event"] == "summary.diff" and int(event["id"]) > int(last)
            assert frame["data"]["jobs"][stage] == {"queued": 2}
            seen.add("resumed")
        else:
            # the other worker does not know that id: a snapshot of the state now
            assert event["event"] == "snapshot"
            assert frame["data"]["summary"]["jobs"][stage] == {"queued": 2}
            seen.add("snapshot")
        if len(seen) == 2:
            break
    assert seen == {"resumed", "snapshot"}


# `jaas portal token revoke` refuses the very next request on both worker processes,
# although each had the token and the answer cached.
def test_revoked_token_is_refused_at_once_on_both_workers(
    two_workers: str, state_dir: Path
) -> None:
    made = jaas("portal", "token", "create", str(state_dir), "--name", "leaving")
    assert made.returncode == 0, made.stderr
    auth = {"Authorization": f"Bearer {made.stdout.strip()}"}
    clients: dict[int, httpx.Client] = {}  # worker -> a kept-alive connection to it
    try:
        for _ in range(400):
            c = httpx.Client(base_url=two_workers, headers=auth, timeout=10)
            (snap,) = c.get("/api/frames").json()
            w = _worker_of(snap["id"])
            if w in clients:
                c.close()
            else:
                clients[w] = c
            if len(clients) == 2:
                break
        assert len(clients) == 2, "only one worker answered"
        for c in clients.values():
            first, again = c.get("/api/summary"), c.get("/api/summary")  # kept, then replayed
            assert first.status_code == again.status_code == 200
            assert again.content == first.content and "etag" in again.headers
            assert c.get("/api/whoami").json()["name"] == "token:leaving"

        listed = jaas("portal", "token", "list", str(state_dir))
        assert "leaving" in listed.stdout
        tid = next(ln.split()[0] for ln in listed.stdout.splitlines() if "leaving" in ln)
        revoked = jaas("portal", "token", "revoke", str(state_dir), tid.strip("#"))
        assert revoked.returncode == 0, revoked.stderr

        other = jaas("portal", "token", "create", str(state_dir), "--name", "staying")
        still = {"Authorization": f"Bearer {other.stdout.strip()}"}
        for w, c in clients.items():
            for path in ("/api/summary", "/api/frames", "/api/whoami"):
                r = c.get(path)
                assert r.status_code == 401, f"worker {w} {path}: {r.status_code}"
                assert r.json()["detail"] == "unknown or revoked API token"
            (snap,) = c.get("/api/frames", headers=still).json()
            assert _worker_of(snap["id"]) == w  # it was that worker's connection
    finally:
        for c in clients.values():
            c.close()
