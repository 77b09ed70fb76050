"""Portal benchmarks (issue 10): API latency under 50 concurrent clients on a ledger of
100,000 jobs, and SSE fan-out of live frames to 100 clients.

The portal runs in its own process (real uvicorn on 127.0.0.1, ``--workers`` worker
processes, auth on, SQLite ledger filled with ``--jobs`` jobs); every request carries a
bearer API token (``Authorization``), as a shift crew's browser does.

1. Latency, ``--loadgen wrk`` (the default when ``wrk`` is installed): the C load
   generator ``wrk`` (one thread, ``--clients`` connections, closed loop), one run of
   ``--duration`` seconds per endpoint (after a 1 s warm-up run that fills every worker's
   cache), then a mixed run cycling through every endpoint; its Lua ``done()`` hook prints
   the latency percentiles as JSON. For every run also the server's CPU time per request
   (user + system of the uvicorn processes / requests answered): what the machine's load
   does not change. The bound is ``/api/healthz`` (FastAPI + uvicorn, no work) in the same
   pass. ``--pin both`` (default on 2+ cores) repeats the pass with wrk on core 0 and the
   server on the others (``taskset``). ``--ab-src DIR`` starts a second server from another
   source tree (e.g. the lead's ``/work/main/src``) and alternates its runs with this
   one's: server CPU per request old vs new in the same pass. ``--ab-http`` does the same
   for uvicorn's HTTP parser (``h11`` vs ``httptools``).
   ``--loadgen httpx``: the previous generator, httpx async clients in this process
   (they saturate a core themselves: it measures Python's client more than the server).
2. Fan-out: ``--sse`` clients follow ``/api/stream``; the ledger changes every 1.5 s; for
   every frame, the delay from the frame's ``at`` (made by the server) to each client's
   receipt: max and p95 (aim: every client within 1 s).

    .venv/bin/python bench/bench_portal.py [--jobs 100000] [--clients 50] [--sse 100]
        [--workers 2] [--loadgen wrk|httpx] [--pin off|on|both] [--ab-src DIR] [--ab-http]
        [--quick]

The last line is the verdict against the aim (p95 < 50 ms with 50 clients) and the bound.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil
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


@dataclass
class Server:
    """One portal server process under test (see :func:`serve`)."""

    label: str
    proc: subprocess.Popen[bytes]
    base: str

    def cpu(self) -> float:
        """User + system CPU seconds of the uvicorn processes so far (workers included)."""
        procs = [psutil.Process(self.proc.pid)]
        procs += procs[0].children(recursive=True)
        total = 0.0
        for p in procs:
            with contextlib.suppress(psutil.NoSuchProcess):
                t = p.cpu_times()
                total += t.user + t.system
        return total

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(60)


def serve(
    url: str,
    config: Path,
    workers: int,
    *,
    label: str = "this tree",
    src: Path | None = None,
    http: str | None = None,
    cores: str | None = None,
) -> Server:
    """The server process: the portal app on 127.0.0.1 (auth on, otherwise default
    settings), in ``workers`` uvicorn worker processes (as ``jaas portal --workers``);
    ``src``: import jaas from that source tree; ``http``: force uvicorn's HTTP parser
    (default: what the portal picks); ``cores``: pinned there with ``taskset -c``."""
    from jaas.portal.app import SETTINGS_ENV
    from jaas.portal.settings import PortalSettings

    settings = PortalSettings(db_url=url, stages=config, auth=True)
    port = free_port()
    cmd = [sys.executable, "-m", "uvicorn", "jaas.portal.app:app_from_env", "--factory"]
    cmd += ["--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]
    cmd += ["--log-level", "warning", *server_options(http)]
    if cores is not None:
        cmd = ["taskset", "-c", cores, *cmd]
    env = {**os.environ, SETTINGS_ENV: settings.model_dump_json()}
    if src is not None:
        env["PYTHONPATH"] = str(src)
    server = Server(label, subprocess.Popen(cmd, env=env), f"http://127.0.0.1:{port}")
    deadline = time.monotonic() + 180
    while True:
        try:
            if httpx.get(f"{server.base}/api/healthz", timeout=1).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline or server.proc.poll() is not None:
            server.proc.kill()
            raise SystemExit(f"the portal ({label}) did not start")
        time.sleep(0.2)


def server_options(http: str | None) -> list[str]:
    """uvicorn options: ``http`` forced, else what ``jaas portal`` uses (httptools and
    uvloop when importable)."""
    if http is not None:
        return ["--http", http, *(["--loop", "asyncio"] if http == "h11" else [])]
    try:
        from jaas.portal.server import uvicorn_options
    except ImportError:  # a tree older than jaas.portal.server: uvicorn's own choice
        return []
    return [f"--{k}={v}" for k, v in uvicorn_options().items()]


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


def endpoint_paths(n: int) -> dict[str, str]:
    """The benched endpoints' paths on a ledger of ``n`` jobs (the file history of a file
    that exists)."""
    k = min(1234, n // 4)
    file = f"run{k // 1000}_{k:06d}.raw"
    return {name: v.format(file=file) for name, v in ENDPOINTS.items()}


async def latency(
    base: str, clients: int, requests: int, n: int, token: str
) -> dict[str, list[float]]:
    names = list(ENDPOINTS)
    paths = endpoint_paths(n)
    out: dict[str, list[float]] = {n: [] for n in names}
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=60, headers=headers) as http:

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


async def fanout(base: str, url: str, n_clients: int, changes: int, token: str) -> dict[str, Any]:
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
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(
        base_url=base, limits=limits, timeout=None, headers=headers
    ) as http:
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


# wrk's Lua hooks: the paths come after `--`; request() cycles through them; done() prints
# one JSON line of the run's latency percentiles (microseconds) and error counts
WRK_LUA = """
local paths, i = {}, 0
function init(args)
  for _, p in ipairs(args) do paths[#paths + 1] = p end
end
function request()
  i = i % #paths + 1
  return wrk.format("GET", paths[i])
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK {"requests": %d, "duration_us": %d, "errors": %d, "non_2xx": %d, '
    .. '"p50": %d, "p90": %d, "p95": %d, "p99": %d, "max": %d}\\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout, e.status,
    latency:percentile(50), latency:percentile(90), latency:percentile(95),
    latency:percentile(99), latency.max))
end
"""


@dataclass
class WrkRun:
    """One wrk run against one server: latency in ms, server CPU ms per request."""

    requests: int
    rps: float
    p50: float
    p95: float
    p99: float
    max: float
    cpu_ms: float  # server CPU per request
    wrk_cpu_ms: float  # wrk's own CPU per request


def wrk(
    server: Server,
    paths: list[str],
    *,
    token: str,
    clients: int,
    seconds: float,
    script: Path,
    cores: str | None,
) -> WrkRun:
    """One closed-loop run of wrk (1 thread, ``clients`` connections) over ``paths``."""
    cmd = ["wrk", "-t1", f"-c{clients}", f"-d{seconds:g}s", "--timeout", "30s"]
    cmd += ["-H", f"Authorization: Bearer {token}", "-s", str(script), server.base, "--", *paths]
    if cores is not None:
        cmd = ["taskset", "-c", cores, *cmd]
    cpu0, own0 = server.cpu(), resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    cpu1, own1 = server.cpu(), resource.getrusage(resource.RUSAGE_CHILDREN)
    line = next((x for x in out.splitlines() if x.startswith("WRK ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no result: {out[-500:]}")
    r = json.loads(line[4:])
    if r["errors"] or r["non_2xx"]:
        raise RuntimeError(f"{paths}: {r['errors']} socket errors, {r['non_2xx']} non-2xx")
    n = max(r["requests"], 1)
    own = own1.ru_utime + own1.ru_stime - own0.ru_utime - own0.ru_stime
    return WrkRun(
        requests=r["requests"],
        rps=r["requests"] / (r["duration_us"] / 1e6),
        p50=r["p50"] / 1e3,
        p95=r["p95"] / 1e3,
        p99=r["p99"] / 1e3,
        max=r["max"] / 1e3,
        cpu_ms=(cpu1 - cpu0) * 1e3 / n,
        wrk_cpu_ms=own * 1e3 / n,
    )


MIXED = "mixed (all but healthz)"


def wrk_pass(
    servers: list[Server], paths: dict[str, str], args: argparse.Namespace, pinned: bool, tmp: Path
) -> dict[str, dict[str, WrkRun]]:
    """Per endpoint and then mixed, each server in turn (interleaved): label -> name -> run."""
    script = tmp / "bench_portal.lua"
    script.write_text(WRK_LUA)
    cores = "0" if pinned else None
    runs: dict[str, dict[str, WrkRun]] = {s.label: {} for s in servers}
    todo = {name: [path] for name, path in paths.items()}
    todo[MIXED] = [p for name, p in paths.items() if name != "healthz (bound)"]
    for name, ps in todo.items():
        for s in servers:
            kw = {"token": args.token, "clients": args.clients, "script": script, "cores": cores}
            wrk(s, ps, seconds=1, **kw)  # warm-up: every worker's cache, every connection
            runs[s.label][name] = wrk(s, ps, seconds=args.duration, **kw)
    where = "pinned (wrk on core 0, server on the others)" if pinned else "unpinned"
    for s in servers:
        print(
            f"\nwrk, {args.clients} connections, 1 thread, {args.duration:g} s per endpoint, "
            f"server {s.label!r}, {where}"
            f" (load {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores), ms:"
        )
        print(
            f"  {'endpoint':24} {'req/s':>7} {'p50':>7} {'p95':>7} {'p99':>7} {'max':>7} "
            f"{'p95/bound':>9} {'srv CPU/req':>11} {'wrk CPU/req':>11}"
        )
        bound = runs[s.label]["healthz (bound)"].p95
        for name, r in runs[s.label].items():
            print(
                f"  {name:24} {r.rps:7.0f} {r.p50:7.1f} {r.p95:7.1f} {r.p99:7.1f} {r.max:7.1f} "
                f"{r.p95 / bound:9.1f} {r.cpu_ms:11.3f} {r.wrk_cpu_ms:11.3f}"
            )
    if len(servers) == 2:
        a, b = (runs[s.label] for s in servers)
        print(f"\nserver CPU per request, {servers[1].label!r} / {servers[0].label!r}:")
        for name in a:
            print(
                f"  {name:24} {b[name].cpu_ms:7.3f} / {a[name].cpu_ms:7.3f} ms = "
                f"{b[name].cpu_ms / a[name].cpu_ms:5.2f}x"
            )
    return runs


def wrk_verdict(runs: dict[str, WrkRun], args: argparse.Namespace, how: str) -> str:
    """One line: the mixed run's p95 vs the aim, the bound, and what the CPU allows."""
    mixed, bound = runs[MIXED], runs["healthz (bound)"]
    met = "MET" if mixed.p95 < args.aim else "NOT MET"
    cores = os.cpu_count() or 1
    # Little's law: with `clients` always in flight, the mean latency is at least
    # clients x (CPU per request) / cores when the server's CPU is the only limit
    floor = args.clients * (mixed.cpu_ms + mixed.wrk_cpu_ms) / cores
    return (
        f"VERDICT ({how}): p95 {mixed.p95:.1f} ms over the endpoints (wrk, mixed) with "
        f"{args.clients} concurrent clients, {args.workers} worker(s), {args.jobs} jobs: "
        f"aim p95 < {args.aim:g} ms {met} (bound /api/healthz p95 {bound.p95:.1f} ms in the "
        f"same pass, ratio {mixed.p95 / bound.p95:.1f}; {mixed.rps:.0f} req/s; server CPU "
        f"{mixed.cpu_ms:.3f} ms/request + wrk {mixed.wrk_cpu_ms:.3f}: mean latency >= "
        f"{floor:.1f} ms on {cores} cores; load {os.getloadavg()[0]:.1f})"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=100_000)
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--requests", type=int, default=40, help="per httpx latency client")
    ap.add_argument("--sse", type=int, default=100)
    ap.add_argument("--changes", type=int, default=5, help="ledger changes during fan-out")
    ap.add_argument(
        "--workers", type=int, default=2, help="uvicorn worker processes (jaas portal's default)"
    )
    ap.add_argument("--aim", type=float, default=50.0, help="p95 aim in ms (issue 10)")
    ap.add_argument(
        "--loadgen",
        choices=["wrk", "httpx"],
        default="wrk" if shutil.which("wrk") else "httpx",
        help="load generator (default: wrk when installed)",
    )
    ap.add_argument("--duration", type=float, default=5.0, help="seconds per wrk run")
    ap.add_argument(
        "--pin",
        choices=["off", "on", "both"],
        default="both" if (os.cpu_count() or 1) > 1 else "off",
        help="wrk on core 0, the server on the other cores (taskset); both: a pass each",
    )
    ap.add_argument("--http", choices=["h11", "httptools"], help="force uvicorn's parser")
    ap.add_argument("--ab-src", type=Path, help="second server from this source tree (A/B)")
    ap.add_argument("--ab-http", action="store_true", help="A/B: h11 vs httptools servers")
    ap.add_argument("--quick", action="store_true", help="5000 jobs, 10 + 10 clients, 2 s runs")
    args = ap.parse_args()
    if args.quick:
        args.jobs, args.clients, args.requests, args.sse, args.changes = 5000, 10, 5, 10, 2
        args.duration = 2.0
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'kup.db'}"
        config = Path(tmp) / "stages.yaml"
        config.write_text(json.dumps(CONFIG))  # JSON is YAML
        t0 = time.perf_counter()
        fill(url, args.jobs)
        print(f"ledger: {args.jobs} jobs in {time.perf_counter() - t0:.1f} s", flush=True)
        args.token = make_token(url)
        runs_peer(url)
        if args.loadgen == "wrk":
            lines = wrk_latency(url, config, args, Path(tmp))
        else:
            lines = [httpx_latency(url, config, args)]
        server = serve(url, config, args.workers)
        try:
            fan = asyncio.run(fanout(server.base, url, args.sse, args.changes, args.token))
        finally:
            server.stop()
        print(f"\nSSE fan-out to {fan['clients']} clients, {args.changes} ledger changes:")
        for k, v in fan.items():
            print(f"  {k}: {v:.3f} s" if isinstance(v, float) else f"  {k}: {v}")
    print(f"load average (1 min) at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    for line in lines:
        print(line)


def make_token(url: str) -> str:
    """A read token in the ledger's database (as `jaas portal token create` makes)."""
    from jaas.portal.auth import TokenStore

    ledger = Ledger(url, PipelineConfig.model_validate(CONFIG))
    secret, _ = TokenStore(ledger.engine).create("bench", "read")
    ledger.close()
    return secret


def httpx_latency(url: str, config: Path, args: argparse.Namespace) -> str:
    """The httpx generator: one client alone, then ``--clients`` in this process."""
    server = serve(url, config, args.workers, http=args.http)
    try:
        serial = asyncio.run(latency(server.base, 1, 5 * len(ENDPOINTS), args.jobs, args.token))
        report(serial, 1)  # service time: one client, no queueing
        load = asyncio.run(latency(server.base, args.clients, args.requests, args.jobs, args.token))
        report(load, args.clients)
    finally:
        server.stop()
    return verdict(load, args)


def wrk_latency(url: str, config: Path, args: argparse.Namespace, tmp: Path) -> list[str]:
    """The wrk passes (unpinned and/or pinned); one VERDICT line per pass."""
    cores = os.cpu_count() or 1
    passes = {"off": [False], "on": [True], "both": [False, True]}[args.pin]
    if cores < 2:
        passes = [False]
    lines = []
    for pinned in passes:
        where = f"1-{cores - 1}" if pinned else None
        variants: list[dict[str, Any]] = [{"label": "this tree", "http": args.http}]
        if args.ab_http:
            variants = [
                {"label": "h11", "http": "h11"},
                {"label": "httptools", "http": "httptools"},
            ]
        elif args.ab_src is not None:
            variants.insert(0, {"label": str(args.ab_src), "src": args.ab_src, "http": args.http})
        servers = []
        try:
            for v in variants:
                servers.append(serve(url, config, args.workers, cores=where, **v))
            runs = wrk_pass(servers, endpoint_paths(args.jobs), args, pinned, tmp)
        finally:
            for s in servers:
                s.stop()
        how = "pinned" if pinned else "unpinned"
        lines += [wrk_verdict(runs[s.label], args, f"{how}, {s.label}") for s in servers]
    return lines


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
