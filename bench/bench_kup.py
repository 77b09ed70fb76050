"""Keep-up orchestration overhead on embedded defaults (Tansu + SQLite + local executor).

Measures, with chains of 1 and 3 no-op stages: files/s end to end and the latency from a
job's outbox message (creation and broker acknowledgement) to its attempt's start in the
ledger. Peers measured in the same run: the per-attempt floor (spawning the stage runner
process, ``python -m jaas.kup.stages noop``, and a bare ``python -c pass``) and a bare
Kafka produce -> consume round trip on the same broker (the transport's latency floor).

Usage: .venv/bin/python bench/bench_kup.py [--quick] [--files N] [--slots S]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import select

from jaas.kup.broker import EmbeddedBroker, ensure_topics
from jaas.kup.bus import BusConfig, Message
from jaas.kup.config import KupSettings
from jaas.kup.kafka import Publisher, make_consumer
from jaas.kup.ledger import Ledger, attempts, jobs, outbox
from jaas.kup.pipeline import down, ingest, up


def stages_yaml(n: int) -> str:
    lines = ["stages:"]
    for i in range(n):
        out = f"    output: b.s{i + 1}\n" if i + 1 < n else ""
        lines.append(
            f"  - name: s{i}\n    input: b.s{i}\n{out}    entry: jaas.kup.stages:noop\n"
            "    timeout: 60\n    retries: 0"
        )
    return "\n".join(lines) + "\n"


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, round(q * (len(xs) - 1))))]


def _ts(t: dt.datetime) -> float:
    return (t if t.tzinfo else t.replace(tzinfo=dt.UTC)).timestamp()


def run_chain(n_stages: int, n_files: int, n_trickle: int, slots: int, work: Path) -> dict:
    """One pipeline: warm up, a burst of ``n_files`` (throughput), then ``n_trickle`` files
    one at a time on an idle pipeline (message-to-start latency without queueing)."""
    sd = work / f"chain{n_stages}"
    (work / "stages").mkdir(exist_ok=True)
    stages = work / "stages" / f"chain{n_stages}.yaml"
    stages.write_text(stages_yaml(n_stages))
    drop = work / f"drop{n_stages}"
    drop.mkdir()
    files = []
    for i in range(1 + n_files + n_trickle):
        p = drop / f"f{i:05d}.raw"
        p.write_bytes(os.urandom(64))
        files.append(p)
    warm, burst, trickle = files[:1], files[1 : 1 + n_files], files[1 + n_files :]
    last = f"s{n_stages - 1}"
    settings = KupSettings(state_dir=sd, stages=str(stages), slots=slots, session_timeout_ms=3000)
    up(settings, monitor_interval=None)
    ledger = Ledger(settings.database, settings.pipeline())
    try:

        def wait_done(n: int, limit: float = 600.0) -> None:
            deadline = time.monotonic() + limit
            while ledger.counts()[last].get("done", 0) < n:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"chain of {n_stages}: stuck at {ledger.counts()}")
                time.sleep(0.02)

        ingest(sd, warm)  # warm-up: every consumer group joined
        wait_done(1)
        t0 = time.perf_counter()
        ingest(sd, burst)
        wait_done(1 + n_files)
        elapsed = time.perf_counter() - t0
        for i, f in enumerate(trickle):
            ingest(sd, [f])
            wait_done(2 + n_files + i)
        burst_lat = latencies(ledger, {f.name for f in burst})
        durs = attempt_walls(ledger, {f.name for f in burst})
        idle_lat = latencies(ledger, {f.name for f in trickle})
    finally:
        ledger.close()
        down(sd, timeout=5)
    return {
        "files_per_s": n_files / elapsed,
        "attempt_wall": statistics.median(durs),
        "busy": sum(durs) / (slots * n_stages * elapsed),
        "burst_p50": pct(burst_lat[0], 0.5),
        "burst_p95": pct(burst_lat[0], 0.95),
        "created_p50": pct(idle_lat[0], 0.5),
        "created_p95": pct(idle_lat[0], 0.95),
        "published_p50": pct(idle_lat[1], 0.5),
        "published_p95": pct(idle_lat[1], 0.95),
    }


def latencies(ledger: Ledger, names: set[str]) -> tuple[list[float], list[float]]:
    """Per attempt: start - outbox created, start - outbox published (first message of a job)."""
    with ledger.engine.connect() as conn:
        msgs: dict[tuple[str, str], tuple[float, float]] = {}
        for r in conn.execute(select(outbox).order_by(outbox.c.id)):
            key = (r.key, r.payload.get("stage"))
            if r.key in names and key not in msgs and r.published_at is not None:
                msgs[key] = (_ts(r.created), _ts(r.published_at))
        q = select(jobs.c.file, jobs.c.stage, attempts.c.started).join(
            attempts, attempts.c.job_id == jobs.c.id
        )
        created, published = [], []
        for file, stage, started in conn.execute(q):
            if (file, stage) in msgs:
                c, p = msgs[(file, stage)]
                created.append(_ts(started) - c)
                published.append(_ts(started) - p)
    return created, published


def attempt_walls(ledger: Ledger, names: set[str]) -> list[float]:
    """Seconds from each attempt's start to its end, as the ledger recorded them."""
    q = select(jobs.c.file, attempts.c.started, attempts.c.ended).join(
        attempts, attempts.c.job_id == jobs.c.id
    )
    with ledger.engine.connect() as conn:
        return [_ts(e) - _ts(s) for f, s, e in conn.execute(q) if f in names and e is not None]


def spawn_floor(reps: int, work: Path) -> tuple[float, float]:
    """Seconds per ``python -c pass`` and per stage-runner process (noop)."""
    t0 = time.perf_counter()
    for _ in range(reps):
        subprocess.run([sys.executable, "-c", "pass"], check=True)
    bare = (time.perf_counter() - t0) / reps
    inp = work / "x.raw"
    inp.write_bytes(b"x")
    argv = [sys.executable, "-m", "jaas.kup.stages", "jaas.kup.stages:noop", "--file", "x",
            "--stage", "s", "--input", str(inp), "--output-dir", str(work), "--result",
            str(work / "r.json")]  # fmt: skip
    env = {**os.environ, "JAAS_PROGRESS": "0"}
    t0 = time.perf_counter()
    for _ in range(reps):
        subprocess.run(argv, check=True, env=env, stdout=subprocess.DEVNULL)
    return bare, (time.perf_counter() - t0) / reps


def kafka_floor(n: int, extra: dict[str, object] | None = None) -> tuple[float, float]:
    """p50 and p95 seconds from produce to a joined consumer's poll, one message at a time.

    Each message is sent at a random moment (uniform over 0.5 s), as files arrive, so that
    the consumer's pending fetch is in a random phase (Tansu answers a fetch only when
    ``fetch.wait.max.ms`` expires, not when data arrives).
    """
    rng = random.Random(1)
    with EmbeddedBroker() as b:
        ensure_topics(b.bootstrap, ["floor"])
        pub = Publisher(BusConfig(b.bootstrap))
        consumer = make_consumer(
            BusConfig(b.bootstrap, 3000, extra=dict(extra or {})), "g", ["floor"]
        )
        pub.publish([Message("floor", "w", {"t": 0}, "warm")])
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:  # wait for the join and the warm-up message
            m = consumer.poll(0.2)
            if m is not None and not m.error():
                break
        lat = []
        for i in range(n):
            time.sleep(rng.uniform(0.0, 0.5))
            t0 = time.perf_counter()
            pub.publish([Message("floor", "k", {"i": i}, f"m{i}")])
            while True:
                m = consumer.poll(1.0)
                if m is not None and not m.error():
                    consumer.commit(message=m, asynchronous=False)
                    break
            lat.append(time.perf_counter() - t0)
        consumer.close()
    return pct(lat, 0.5), pct(lat, 0.95)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="few files (CI smoke run)")
    ap.add_argument("--files", type=int, help="burst files per chain (default 12 quick, 60 full)")
    ap.add_argument("--trickle", type=int, help="files sent one at a time (default 5 / 20)")
    ap.add_argument("--slots", type=int, default=2, help="executor slots per stage worker")
    a = ap.parse_args()
    n = a.files or (12 if a.quick else 60)
    nt = a.trickle or (5 if a.quick else 20)
    with tempfile.TemporaryDirectory(prefix="bench_kup_") as tmp:
        work = Path(tmp)
        bare, runner = spawn_floor(5 if a.quick else 20, work)
        k50, k95 = kafka_floor(10 if a.quick else 40)
        f50, f95 = kafka_floor(10 if a.quick else 40, {"fetch.wait.max.ms": 10})
        res = {s: run_chain(s, n, nt, a.slots, work) for s in (1, 3)}
        bare2, runner2 = spawn_floor(5 if a.quick else 20, work)  # load changes: keep the best
        bare, runner = min(bare, bare2), min(runner, runner2)

    cores = os.cpu_count() or 1
    load = os.getloadavg()[0]
    print(f"\nkeep-up orchestration: burst of {n} files, then {nt} one at a time, per chain;")
    print(f"{a.slots} slots per stage, {cores} cores, load average {load:.1f} at the end")
    print(f"  peer: python -c pass           {bare * 1e3:8.1f} ms/process")
    print(f"  peer: stage runner (noop)      {runner * 1e3:8.1f} ms/attempt (best of 2 runs)")
    print(f"  peer: Kafka produce->consume   p50 {k50 * 1e3:6.1f} ms  p95 {k95 * 1e3:6.1f} ms")
    print(
        f"        (fetch.wait.max.ms=10)   p50 {f50 * 1e3:6.1f} ms  p95 {f95 * 1e3:6.1f} ms"
        "  (the bus uses librdkafka's default, 500)"
    )
    print()
    head = (
        f"{'chain':<10}{'files/s':>8}{'bound':>7}{'ratio':>6}{'attempt s':>10}{'busy':>6}"
        f"{'idle: created->start':>22}{'published->start':>19}{'/kafka':>7}"
        f"{'burst: created->start':>23}"
    )
    print(head)
    print(
        f"{'':<31}{'p50':>10}{'':>6}{'p50 / p95 ms':>22}{'p50 / p95 ms':>19}{'p50':>7}"
        f"{'p50 / p95 ms':>23}"
    )
    print("-" * len(head))
    for s, r in res.items():
        # bound: every attempt is one runner process; at most min(cores, slots * s) at once
        bound = min(cores, a.slots * s) / (s * runner)
        print(
            f"{s} stage{'s' if s > 1 else ' ':<4}{r['files_per_s']:>8.2f}{bound:>7.2f}"
            f"{r['files_per_s'] / bound:>6.2f}{r['attempt_wall']:>10.2f}{r['busy']:>6.0%}"
            f"{r['created_p50'] * 1e3:>14.0f} / {r['created_p95'] * 1e3:<5.0f}"
            f"{r['published_p50'] * 1e3:>11.0f} / {r['published_p95'] * 1e3:<5.0f}"
            f"{r['published_p50'] / k50:>6.1f}x"
            f"{r['burst_p50'] * 1e3:>15.0f} / {r['burst_p95'] * 1e3:<6.0f}"
        )
    print(
        "\nbound = min(cores, slots x stages) / (stages x runner process time); "
        "ratio = measured / bound;\nattempt s = start -> end of an attempt in the ledger "
        "(runner process + executor polling + DB writes);\nbusy = share of the executor "
        "slots (slots x stages) that attempts occupied during the burst;\n"
        "latency: from a job's outbox row (created, or acknowledged "
        "by the broker) to its attempt row;\nidle = files sent one at a time, burst = the "
        "throughput run (includes waiting for a free slot)."
    )


if __name__ == "__main__":
    main()
