"""`jaas portal STATE_DIR` serves a `jaas kup` state dir; `jaas portal token ...` manages tokens."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from jaas.cli.main import main
from jaas.kup.config import KupSettings
from jaas.kup.ledger import Ledger
from tests.portal.conftest import free_port

JAAS = [sys.executable, "-m", "jaas.cli.main"]


def jaas(*args: str) -> subprocess.CompletedProcess[str]:
    """Run `jaas ARGS` in this process (exit code, stdout, stderr like a subprocess)."""
    out, err = io.StringIO(), io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(list(args))
        except SystemExit as exc:
            code = int(exc.code or 0)
    return subprocess.CompletedProcess(list(args), code, out.getvalue(), err.getvalue())


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    settings = KupSettings(state_dir=tmp_path / "kup")
    settings.save()
    led = Ledger(settings.database, settings.pipeline())
    raw = tmp_path / "a.raw"
    raw.write_bytes(b"x")
    led.submit_files([raw])
    led.close()
    return settings.state_dir


def test_token_create_list_revoke(state_dir):
    r = jaas("portal", "token", "create", str(state_dir), "--name", "shift", "--scope", "operate")
    assert r.returncode == 0, r.stderr
    secret = r.stdout.strip()
    assert secret.startswith("jaas_") and "operate" in r.stderr
    listed = jaas("portal", "token", "list", str(state_dir)).stdout
    assert "shift" in listed and "active" in listed and secret not in listed
    assert jaas("portal", "token", "revoke", str(state_dir), "1").returncode == 0
    assert "revoked" in jaas("portal", "token", "list", str(state_dir)).stdout
    bad = jaas("portal", "token", "revoke", str(state_dir), "7")
    assert bad.returncode == 1 and bad.stderr.strip() == (
        "error: no active token with id 7 (see `jaas portal token list`)"
    )


def test_serve_refuses_public_bind_without_auth_and_unknown_dir(state_dir, tmp_path):
    r = jaas("portal", str(state_dir), "--host", "0.0.0.0")
    assert r.returncode == 1 and "without auth" in r.stderr and "Traceback" not in r.stderr
    r = jaas("portal", str(tmp_path / "nothing"))
    assert r.returncode == 1 and "no pipeline here" in r.stderr


@pytest.mark.slow
def test_serve_answers_on_the_state_dirs_ledger(state_dir, tmp_path):
    port = free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    log = tmp_path / "portal.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [*JAAS, "portal", str(state_dir), "--port", str(port)], env=env, stdout=out, stderr=out
        )
    try:
        deadline = time.monotonic() + 120  # two spawned workers (the default) import jaas
        while True:
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/api/summary", timeout=2)
                break
            except httpx.TransportError:
                assert proc.poll() is None, log.read_text()
                assert time.monotonic() < deadline, "portal did not start"
                time.sleep(0.2)
        assert r.status_code == 200
        first = next(iter(r.json()["jobs"].values()))
        assert first == {"queued": 1}
    finally:
        proc.terminate()
        try:
            proc.wait(60)  # two workers shut down in turn; slow under load
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
