"""A real SQLite ledger (made by the real Ledger) with jobs in every interesting state."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient

from jaas.kup.config import PipelineConfig
from jaas.kup.ledger import Ledger
from jaas.kup.states import Classification, JobKey
from jaas.portal.app import create_app
from jaas.portal.auth import TokenStore
from jaas.portal.settings import PortalSettings
from jaas.portal.source import LedgerSource

CONFIG = PipelineConfig.model_validate(
    {
        "stages": [
            {"name": "a", "input": "t.a", "output": "t.b", "entry": "m:f", "retries": 1},
            {"name": "b", "input": "t.b", "entry": "m:f", "version": "7"},
        ]
    }
)
N_DONE = 6


def fill(ledger: Ledger, tmp: Path) -> None:
    """6 files done at stage a (queued at b), one dead at a, one running at a."""
    names = [f"run1_{i:04d}.raw" for i in range(N_DONE + 2)]
    for n in names:
        (tmp / n).write_bytes(b"x")
    ledger.submit_files([tmp / n for n in names])
    for i, n in enumerate(names):
        t = ledger.start(JobKey(n, "a", CONFIG.stage("a").version), worker="w1", log_dir=str(tmp))
        assert t is not None
        if i < N_DONE:
            ledger.finish(t, exit_code=0, output_path=str(tmp / f"{n}.out"))
        elif i == N_DONE:
            ledger.finish(
                t,
                exit_code=3,
                reason="bad header at byte 12",
                classification=Classification.DETERMINISTIC,
            )


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    led = Ledger(f"sqlite:///{tmp_path / 'kup.db'}", CONFIG)
    fill(led, tmp_path)
    yield led
    led.close()


@pytest.fixture
def make_app(ledger: Ledger):
    def make(**kw: object) -> FastAPI:
        settings = PortalSettings(db_url=ledger.url, **kw)  # type: ignore[arg-type]
        return create_app(settings, LedgerSource(ledger))

    return make


@pytest.fixture
def client(make_app) -> Iterator[TestClient]:
    with TestClient(make_app()) as c:
        yield c


@pytest.fixture
def tokens(ledger: Ledger) -> dict[str, str]:
    store = TokenStore(ledger.engine)
    return {s: store.create(f"{s}-user", s)[0] for s in ("read", "operate", "admin")}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Served:
    def __init__(self, app: FastAPI) -> None:
        self.port = free_port()
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Served:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


REPO = Path(__file__).resolve().parents[2]


def need(ok: bool, why: str) -> None:
    """Skip when something a test needs is missing; under CI=true fail instead."""
    if not ok:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{why} (required under CI=true)")
        pytest.skip(why)


@pytest.fixture
def spa() -> Path:
    dist = REPO / "frontend" / "dist"
    need((dist / "index.html").is_file(), f"{dist}: SPA not built (run `make portal-ui`)")
    return dist
