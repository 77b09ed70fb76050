"""Portal benchmarks (issue 10): API latency under 50 concurrent clients on a ledger of
100,000 jobs, and SSE fan-out of live frames to 100 clients.

The portal runs in its own process (real uvicorn on 127.0.0.1, SQLite ledger filled with
``--jobs`` jobs); the clients are httpx async clients in this process.

1. Latency: first one client alone (the service time of each endpoint, no queueing),
   then ``--clients`` workers each send ``--requests`` requests round-robin over the
   main read endpoints; p50/p95/max per endpoint, and the ratio of each p95 to the p95 of
   the static ``/api/healthz`` measured under the same load (the bound: what uvicorn +
   FastAPI cost with no work at all).
2. Fan-out: ``--sse`` clients follow ``/api/stream``; the ledger changes every 1.5 s; for
   every frame, the delay from the frame's ``at`` (made by the server) to each client's
   receipt: max and p95 (aim: every client within 1 s).

    .venv/bin/python bench/bench_portal.py [--jobs 100000] [--clients 50] [--sse 100]
        [--workers 2] [--quick]

The last line is the verdict against the aim (p95 < 50 ms with 50 clients) and the bound.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import insert, select, update

from jaas.kup.config import PipelineConfig
from jaas.kup.ledger import Ledger, jobs

CONFIG = {
    "stages": [
        {"name": "a", "input": "t.a", "output": "t.b", "entry": "m:f"},
        {"name": "b", "input": "t.b", "entry": "m:f", "version": "7"},
    ]
}
STATES = ["done", "queued", "dead", "failed", "running", "done", "done", "queued"]
ENDPOINTS = {
    "healthz (bound)": "/api/healthz",
    "summary": "/api/summary",
    "jobs page 1": "/api/jobs?limit=50",
    "jobs dead at a": "/api/jobs?stage=a&state=dead&limit=50",
    "jobs latest": "/api/jobs?sort=updated&order=desc&limit=50",
    "file history": "/api/files/{file}",
    "runs": "/api/runs",
    "alerts": "/api/alerts",
    "frames": "/api/frames",
}


def fill(url: str, n: int) -> None:
    """A ledger with ``n`` jobs over two stages in mixed states (straight SQL inserts)."""
    ledger = Ledger(url, PipelineConfig.model_validate(CONFIG))
    now = dt.datetime.now(dt.UTC)
    rows = [
        {
            "file": f"run{i // 2000}_{i // 2:06d}.raw",  # 1000 files per run
            "stage": "ab"[i % 2],
            "version": "1" if i % 2 == 0 else "7",
            "state": STATES[i % len(STATES)],
            "attempts": i % 4,
            "created": now,
            "updated": now + dt.timedelta(microseconds=i),
        }
        for i in range(n)
    ]
    with ledger.engine.begin() as conn:
        for k in range(0, n, 10_000):
            conn.execute(insert(jobs), rows[k : k + 10_000])
    ledger.close()


def serve(url: str, port: int, config: Path, workers: int) -> subprocess.Popen[bytes]:
    """The server process: the portal app on 127.0.0.1:port (default settings), in
    ``workers`` uvicorn worker processes (as ``jaas portal --workers``)."""
    from jaas.portal.app import SETTINGS_ENV
    from jaas.portal.settings import PortalSettings

    settings = PortalSettings(db_url=url, stages=config)
    cmd = [sys.executable, "-m", "uvicorn", "jaas.portal.app:app_from_env", "--factory"]
    cmd += ["--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]
    env = {**os.environ, SETTINGS_ENV: settings.model_dump_json()}
    return subprocess.Popen([*cmd, "--log-level", "warning"], env=env)


def runs_peer(url: str, rounds: int = 3) -> None:
    """/api/runs' SQL aggregate vs its peer, the per-job Python it replaced (interleaved)."""
    from jaas.kup.manifest import run_of_file
    from jaas.kup.readmodels import job_arrivals, run_progress

    ledger = Ledger(url, PipelineConfig.model_validate(CONFIG))
    stages = [(s.name, s.version) for s in ledger.config.stages]
    current = dict(stages)

    def per_job() -> int:
        files: dict[int, dict[str, float]] = {}
        done: dict[tuple[int, str], set[str]] = {}
        for file, stage, version, state, created in job_arrivals(ledger.engine):
            run = run_of_file(file)
            if run is None or current.get(stage) != version:
                continue
            if stage == stages[0][0]:
                files.setdefault(run, {})[file] = created.timestamp()
            if state == "done":
                done.setdefault((run, stage), set()).add(file)
        return len(files)

    t_sql: list[float] = []
    t_py: list[float] = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        n_sql = len(run_progress(ledger.engine, stages))
        t_sql.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        n_py = per_job()
        t_py.append(time.perf_counter() - t0)
    ledger.close()
    a, b = min(t_sql) * 1e3, min(t_py) * 1e3
    print(
        f"runs: SQL aggregate {a:.1f} ms vs per-job Python {b:.1f} ms (best of {rounds}, "
        f"interleaved; {n_sql} = {n_py} runs): {b / a:.1f}x",
        flush=True,
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pct(xs: list[float], q: float) -> float:
    return statistics.quantiles(xs, n=100, method="inclusive")[q - 1] if len(xs) > 1 else xs[0]


async def latency(base: str, clients: int, requests: int, n: int) -> dict[str, list[float]]:
    names = list(ENDPOINTS)
    k = min(1234, n // 4)
    file = f"run{k // 1000}_{k:06d}.raw"
    paths = {k: v.format(file=file) for k, v in ENDPOINTS.items()}
    out: dict[str, list[float]] = {n: [] for n in names}
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=60) as http:

        async def worker(w: int) -> None:
            for i in range(requests):
                name = names[(w + i) % len(names)]
                t0 = time.perf_counter()
                r = await http.get(paths[name])
                out[name].append(time.perf_counter() - t0)
                if r.status_code != 200:
                    raise RuntimeError(f"{paths[name]}: {r.status_code} {r.text[:200]}")

        for name in names:  # warm-up: one request each (a cold cache: the queries' cost)
            t0 = time.perf_counter()
            await http.get(paths[name])
            if clients == 1:
                print(f"  cold {name:18} {(time.perf_counter() - t0) * 1e3:7.1f} ms")
        await asyncio.gather(*(worker(w) for w in range(clients)))
    return out


async def fanout(base: str, url: str, n_clients: int, changes: int) -> dict[str, Any]:
    delays: list[float] = []
    seen: list[set[int]] = [set() for _ in range(n_clients)]
    ready = asyncio.Event()
    connected = 0

    async def client(k: int, http: httpx.AsyncClient) -> None:
        nonlocal connected
        async with http.stream("GET", "/api/stream") as r:
            connected += 1
            if connected == n_clients:
                ready.set()
            async for line in r.aiter_lines():
                if line.startswith("data:"):
                    frame = json.loads(line[5:])
                    at = dt.datetime.fromisoformat(frame["at"])
                    if frame["type"] != "snapshot":
                        delays.append((dt.datetime.now(dt.UTC) - at).total_seconds())
                        seen[k].add(frame["id"])

    limits = httpx.Limits(max_connections=n_clients + 5)
    ledger = Ledger(url, PipelineConfig.model_validate(CONFIG))
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=None) as http:
        tasks = [asyncio.create_task(client(k, http)) for k in range(n_clients)]
        await asyncio.wait_for(ready.wait(), 60)
        await asyncio.sleep(1.0)
        for _ in range(changes):  # each change: 10 queued jobs become done
            with ledger.engine.begin() as conn:
                ids = conn.execute(
                    select(jobs.c.id).where(jobs.c.state == "queued").limit(10)
                ).scalars()
                conn.execute(update(jobs).where(jobs.c.id.in_(list(ids))).values(state="done"))
            await asyncio.sleep(1.5)
        await asyncio.sleep(1.0)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    ledger.close()
    # each worker process has its own hub, numbering its frames from its own base (id >> 32)
    by_worker: dict[int, set[int]] = {}
    for s in seen:
        for f in s:
            by_worker.setdefault(f >> 32, set()).add(f)
    frames = set().union(*seen)
    return {
        "clients": n_clients,
        "frames": len(frames),
        "workers seen": len(by_worker),
        "every client saw every frame of its worker": all(
            s == by_worker[next(iter(s)) >> 32] for s in seen if s
        )
        and all(seen),
        "deliveries": len(delays),
        "max": max(delays) if delays else float("nan"),
        "p95": pct(delays, 95) if delays else float("nan"),
        "p50": pct(delays, 50) if delays else float("nan"),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=100_000)
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--requests", type=int, default=40, help="per latency client")
    ap.add_argument("--sse", type=int, default=100)
    ap.add_argument("--changes", type=int, default=5, help="ledger changes during fan-out")
    ap.add_argument(
        "--workers", type=int, default=2, help="uvicorn worker processes (jaas portal's default)"
    )
    ap.add_argument("--aim", type=float, default=50.0, help="p95 aim in ms (issue 10)")
    ap.add_argument("--quick", action="store_true", help="5000 jobs, 10 + 10 clients")
    args = ap.parse_args()
    if args.quick:
        args.jobs, args.clients, args.requests, args.sse, args.changes = 5000, 10, 5, 10, 2
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'kup.db'}"
        config = Path(tmp) / "stages.yaml"
        config.write_text(json.dumps(CONFIG))  # JSON is YAML
        t0 = time.perf_counter()
        fill(url, args.jobs)
        print(f"ledger: {args.jobs} jobs in {time.perf_counter() - t0:.1f} s", flush=True)
        runs_peer(url)
        port = free_port()
        server = serve(url, port, config, args.workers)
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 180
            while True:
                try:
                    if httpx.get(f"{base}/api/healthz", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline or server.poll() is not None:
                    raise SystemExit("the portal did not start")
                time.sleep(0.2)
            serial = asyncio.run(latency(base, 1, 5 * len(ENDPOINTS), args.jobs))
            report(serial, 1)  # service time: one client, no queueing
            load = asyncio.run(latency(base, args.clients, args.requests, args.jobs))
            report(load, args.clients)
            fan = asyncio.run(fanout(base, url, args.sse, args.changes))
            print(f"\nSSE fan-out to {fan['clients']} clients, {args.changes} ledger changes:")
            for k, v in fan.items():
                print(f"  {k}: {v:.3f} s" if isinstance(v, float) else f"  {k}: {v}")
        finally:
            server.terminate()
            server.wait(60)
    print(f"load average (1 min) at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(verdict(load, args))


def verdict(out: dict[str, list[float]], args: argparse.Namespace) -> str:
    """One line: the p95 over every endpoint with ``--clients`` clients vs the aim."""
    work = [x for name, xs in out.items() if name != "healthz (bound)" for x in xs]
    p95, bound = pct(work, 95) * 1e3, pct(out["healthz (bound)"], 95) * 1e3
    met = "MET" if p95 < args.aim else "NOT MET"
    return (
        f"VERDICT: p95 {p95:.1f} ms over the endpoints with {args.clients} concurrent clients, "
        f"{args.workers} worker(s), {args.jobs} jobs: aim p95 < {args.aim:g} ms {met} "
        f"(bound /api/healthz p95 {bound:.1f} ms in the same pass, ratio {p95 / bound:.1f}; "
        f"load {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)"
    )


def report(out: dict[str, list[float]], clients: int) -> None:
    bound = pct(out["healthz (bound)"], 95)
    every = [x for xs in out.values() for x in xs]
    print(f"\nAPI latency, {clients} concurrent client(s), {len(every)} requests, ms:")
    print(f"  {'endpoint':18} {'n':>5} {'p50':>7} {'p95':>7} {'max':>7} {'p95/bound':>9}")
    for name, xs in out.items():
        p50, p95 = pct(xs, 50) * 1e3, pct(xs, 95) * 1e3
        print(
            f"  {name:18} {len(xs):5d} {p50:7.1f} {p95:7.1f} {max(xs) * 1e3:7.1f} "
            f"{p95 / 1e3 / bound:9.1f}"
        )
    print(f"  {'all':18} {len(every):5d} {pct(every, 50) * 1e3:7.1f} {pct(every, 95) * 1e3:7.1f}")


if __name__ == "__main__":
    main()
