"""`jaas demo --serve PORT`: the demo's pipeline stays up and the portal shows it."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from jaas.kup.pipeline import status


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=5) as r:  # loopback only
        return r.status, r.read()


@pytest.mark.slow
@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "kill"])
def test_demo_serve_shows_the_live_pipeline_then_stops_it(tmp_path: Path, stop: int) -> None:
    port = _free_port()
    out = tmp_path / "demo"
    proc = subprocess.Popen(
        [sys.executable, "-m", "jaas.cli.main", "demo", "--serve", str(port),
         "--pipeline-seconds", "6", "-o", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "JAAS_PROGRESS": "0"},
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 600
        summary = None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                code, body = _get(f"http://127.0.0.1:{port}/api/summary")
            except OSError:
                time.sleep(1)
                continue
            assert code == 200
            summary = json.loads(body)
            break
        assert summary is not None, proc.stdout.read() if proc.stdout else ""
        # the portal shows the demo's pipeline: every stage, the last one with files done
        assert list(summary["jobs"])[-1] == "publish"
        assert summary["jobs"]["publish"].get("done", 0) > 0, summary
        state = out / "kup-demo" / "kup"
        assert any(status(state).processes.values())  # the pipeline is still running
    finally:
        proc.send_signal(stop)
        try:
            output, _ = proc.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()
            output, _ = proc.communicate()
    assert "pipeline still running" in output
    assert f"http://127.0.0.1:{port}/" in output
    assert "stopped" in output.splitlines()[-1]
    assert not any(status(out / "kup-demo" / "kup").processes.values())  # nothing left
