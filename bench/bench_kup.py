"""Keep-up orchestration overhead on embedded defaults (Tansu + SQLite + local executor).

Measures, with chains of 1 and 3 no-op stages: files/s end to end and the latency from a
job's outbox message (creation and broker acknowledgement) to its attempt's start in the
ledger, with warm workers (attempts forked from a pre-imported runner, the default) and
cold ones (a new ``python -m jaas.kup.stages`` per attempt, ``warm: false``), the two
interleaved in the same run. Peers measured in the same run: the per-attempt floor
(spawning the stage runner process, a warm fork of it through the local executor, and a
bare ``python -c pass``) and a bare Kafka produce -> consume round trip on the same broker.

Usage: .venv/bin/python bench/bench_kup.py [--quick] [--files N] [--slots S] [--reps R]
       [--poll SECONDS]
       .venv/bin/python bench/bench_kup.py --latency [--trickle N] [--poll SECONDS]
           only the 1-stage warm chain (1 burst file, then N one at a time): outbox row ->
           attempt start; with PYTHONPATH at two source trees, interleaved, for A/B runs
       .venv/bin/python bench/bench_kup.py --idle SECONDS
           CPU seconds used by the relay and the stage worker of an idle 1-stage pipeline
           (after one file went through) over SECONDS: run it with PYTHONPATH pointing
           at two source trees, interleaved, to compare relay loops.
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
from jaas.kup.executors.base import JobSpec
from jaas.kup.executors.local import LocalExecutor
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


def run_chain(
    n_stages: int,
    n_files: int,
    n_trickle: int,
    slots: int,
    work: Path,
    warm: bool = True,
    poll: float = 0.2,
) -> dict:
    """One pipeline: warm up, a burst of ``n_files`` (throughput), then ``n_trickle`` files
    one at a time on an idle pipeline (message-to-start latency without queueing)."""
    tag = f"chain{n_stages}.{'warm' if warm else 'cold'}.{len(list(work.glob('chain*')))}"
    sd = work / tag
    (work / "stages").mkdir(exist_ok=True)
    stages = work / "stages" / f"chain{n_stages}.yaml"
    stages.write_text(stages_yaml(n_stages))
    drop = work / f"drop.{tag}"
    drop.mkdir()
    files = []
    for i in range(1 + n_files + n_trickle):
        p = drop / f"f{i:05d}.raw"
        p.write_bytes(os.urandom(64))
        files.append(p)
    first, burst, trickle = files[:1], files[1 : 1 + n_files], files[1 + n_files :]
    last = f"s{n_stages - 1}"
    settings = KupSettings(
        state_dir=sd,
        stages=str(stages),
        slots=slots,
        session_timeout_ms=3000,
        warm=warm,
        poll_interval=poll,
    )
    up(settings, monitor_interval=None)
    ledger = Ledger(settings.database, settings.pipeline())
    try:

        def wait_done(n: int, limit: float = 600.0) -> None:
            deadline = time.monotonic() + limit
            while ledger.counts()[last].get("done", 0) < n:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"chain of {n_stages}: stuck at {ledger.counts()}")
                time.sleep(0.02)

        ingest(sd, first)  # warm-up: every consumer group joined
        wait_done(1)
        t0 = time.perf_counter()
        ingest(sd, burst)
        wait_done(1 + n_files)
        elapsed = time.perf_counter() - t0
        rng = random.Random(2)
        for i, f in enumerate(trickle):
            time.sleep(rng.uniform(0.0, 0.3))  # files arrive at random moments
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


def warm_floor(reps: int, work: Path) -> float:
    """Seconds per no-op attempt forked by the local executor's warm runner (parent up)."""
    inp = work / "x.raw"
    inp.write_bytes(b"x")
    ex = LocalExecutor(slots=1, prestart=True)

    def one(i: int) -> None:
        argv = [sys.executable, "-m", "jaas.kup.stages", "jaas.kup.stages:noop", "--file", "x",
                "--stage", "s", "--input", str(inp), "--output-dir", str(work), "--result",
                str(work / f"w{i}.json")]  # fmt: skip
        h = ex.submit(JobSpec(f"w{i}", argv, work / "w.log", marker=work / f"w{i}.running"))
        while not ex.poll(h).finished:
            ex.wait(1.0)
        ex.forget(h)

    try:
        one(-1)  # waits for the parent's imports
        t0 = time.perf_counter()
        for i in range(reps):
            one(i)
        return (time.perf_counter() - t0) / reps
    finally:
        ex.shutdown()


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


def _cpu_s(pid: int) -> float:
    """utime + stime of a process and its reaped children, seconds (/proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(x) for x in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def idle_cpu(seconds: float, work: Path) -> None:
    """Relay + worker CPU of an idle warm 1-stage pipeline over ``seconds``."""
    import json

    import jaas

    sd = work / "idle"
    (work / "stages").mkdir(exist_ok=True)
    stages = work / "stages" / "chain1.yaml"
    stages.write_text(stages_yaml(1))
    f = work / "idle0.raw"
    f.write_bytes(os.urandom(64))
    settings = KupSettings(state_dir=sd, stages=str(stages), slots=2, session_timeout_ms=3000)
    up(settings, monitor_interval=None)
    ledger = Ledger(settings.database, settings.pipeline())
    try:
        ingest(sd, [f])
        deadline = time.monotonic() + 120
        while ledger.counts()["s0"].get("done", 0) < 1:
            if time.monotonic() > deadline:
                raise RuntimeError(f"stuck at {ledger.counts()}")
            time.sleep(0.05)
        time.sleep(3.0)  # settle: group joined, attempt reaped
        state = json.loads((sd / "state.json").read_text())
        pids = {"relay": state["relay"], **{f"worker {k}": v for k, v in state["workers"].items()}}
        before = {k: _cpu_s(p) for k, p in pids.items()}
        l0 = os.getloadavg()[0]
        time.sleep(seconds)
        used = {k: _cpu_s(p) - before[k] for k, p in pids.items()}
    finally:
        ledger.close()
        down(sd, timeout=5)
    src = Path(jaas.__file__).resolve().parents[2]
    print(f"idle {seconds:g} s, source {src}, load average {l0:.1f} -> {os.getloadavg()[0]:.1f}")
    for k, v in used.items():
        print(f"  {k:<12} {v:6.2f} CPU s  ({100 * v / seconds:5.2f} % of a core)")
    total = sum(used.values())
    print(f"  {'total':<12} {total:6.2f} CPU s  ({100 * total / seconds:5.2f} % of a core)")


def summarize(runs: list[dict]) -> dict:
    """Best files/s and median latencies over the repetitions of one chain and mode."""
    out = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    out["files_per_s"] = max(r["files_per_s"] for r in runs)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="few files (CI smoke run)")
    ap.add_argument("--files", type=int, help="burst files per chain (default 12 quick, 60 full)")
    ap.add_argument("--trickle", type=int, help="files sent one at a time (default 5 / 20)")
    ap.add_argument("--slots", type=int, default=2, help="executor slots per stage worker")
    ap.add_argument("--poll", type=float, default=0.2, help="poll_interval of relay and workers")
    ap.add_argument("--reps", type=int, help="repetitions of each (chain, mode) (1 / 2)")
    ap.add_argument("--idle", type=float, metavar="SECONDS", help="idle CPU of relay + worker")
    ap.add_argument("--latency", action="store_true", help="only the 1-stage warm latency")
    a = ap.parse_args()
    if a.latency:
        import jaas

        with tempfile.TemporaryDirectory(prefix="bench_kup_lat_") as tmp:
            l0 = os.getloadavg()[0]
            r = run_chain(1, 1, a.trickle or 20, a.slots, Path(tmp), True, a.poll)
        src = Path(jaas.__file__).resolve().parents[2]
        print(
            f"source {src}, poll_interval {a.poll:g} s, load average {l0:.1f} -> "
            f"{os.getloadavg()[0]:.1f}\n  idle: created->start p50 {r['created_p50'] * 1e3:.0f} "
            f"/ p95 {r['created_p95'] * 1e3:.0f} ms, published->start p50 "
            f"{r['published_p50'] * 1e3:.0f} / p95 {r['published_p95'] * 1e3:.0f} ms"
        )
        return
    if a.idle:
        with tempfile.TemporaryDirectory(prefix="bench_kup_idle_") as tmp:
            idle_cpu(a.idle, Path(tmp))
        return
    n = a.files or (12 if a.quick else 60)
    nt = a.trickle or (5 if a.quick else 20)
    reps = a.reps or (1 if a.quick else 2)
    load0 = os.getloadavg()[0]
    runs: dict[tuple[int, bool], list[dict]] = {}
    with tempfile.TemporaryDirectory(prefix="bench_kup_") as tmp:
        work = Path(tmp)
        bare, runner = spawn_floor(5 if a.quick else 20, work)
        forked = warm_floor(10 if a.quick else 40, work)
        k50, k95 = kafka_floor(10 if a.quick else 40)
        for rep in range(reps):  # interleaved: cold, warm, then warm, cold...
            for s in (1, 3):
                for warm in (False, True) if rep % 2 == 0 else (True, False):
                    r = run_chain(s, n, nt, a.slots, work, warm, a.poll)
                    runs.setdefault((s, warm), []).append(r)
        bare2, runner2 = spawn_floor(5 if a.quick else 20, work)  # load changes: keep the best
        forked2 = warm_floor(10 if a.quick else 40, work)
        bare, runner, forked = min(bare, bare2), min(runner, runner2), min(forked, forked2)
    res = {key: summarize(v) for key, v in runs.items()}

    cores = os.cpu_count() or 1
    load = os.getloadavg()[0]
    print(f"\nkeep-up orchestration: burst of {n} files, then {nt} one at a time, per chain;")
    print(
        f"poll_interval {a.poll:g} s, {a.slots} slots per stage, {cores} cores, "
        f"{reps} interleaved repetition(s) per mode,"
    )
    print(f"load average {load0:.1f} at the start, {load:.1f} at the end")
    print(f"  peer: python -c pass           {bare * 1e3:8.1f} ms/process")
    print(f"  peer: stage runner (noop)      {runner * 1e3:8.1f} ms/attempt (cold, best of 2)")
    print(f"  peer: warm forked runner       {forked * 1e3:8.1f} ms/attempt (best of 2)")
    print(f"  peer: Kafka produce->consume   p50 {k50 * 1e3:6.1f} ms  p95 {k95 * 1e3:6.1f} ms")
    print()
    head = (
        f"{'chain':<9}{'mode':<6}{'files/s':>8}{'bound':>7}{'ratio':>6}{'attempt s':>10}"
        f"{'busy':>6}{'idle: created->start':>22}{'published->start':>19}"
        f"{'burst: created->start':>23}"
    )
    print(head)
    print(f"{'':<36}{'p50':>10}{'':>6}{'p50 / p95 ms':>22}{'p50 / p95 ms':>19}{'p50 / p95 ms':>23}")
    print("-" * len(head))
    for (s, warm), r in sorted(res.items()):
        # bound: every attempt costs one runner (a process, or a fork when warm); at most
        # min(cores, slots * s) at once
        bound = min(cores, a.slots * s) / (s * (forked if warm else runner))
        print(
            f"{s} stage{'s' if s > 1 else ' ':<2}{'warm' if warm else 'cold':<5}"
            f"{r['files_per_s']:>8.2f}{bound:>7.1f}"
            f"{r['files_per_s'] / bound:>6.2f}{r['attempt_wall']:>10.3f}{r['busy']:>6.0%}"
            f"{r['created_p50'] * 1e3:>14.0f} / {r['created_p95'] * 1e3:<5.0f}"
            f"{r['published_p50'] * 1e3:>11.0f} / {r['published_p95'] * 1e3:<5.0f}"
            f"{r['burst_p50'] * 1e3:>15.0f} / {r['burst_p95'] * 1e3:<6.0f}"
        )
    print()
    for s in (1, 3):
        w, c = res[(s, True)], res[(s, False)]
        gain = w["files_per_s"] / c["files_per_s"]
        print(
            f"{s} stage{'s' if s > 1 else ' '}: warm / cold files/s {gain:.1f}x;"
            f" idle published->start p95 {w['published_p95'] * 1e3:.0f} ms warm vs "
            f"{c['published_p95'] * 1e3:.0f} ms cold (aim < 100 ms); "
            f"warm files/s {w['files_per_s']:.1f} (aim >= 15 for 1 stage)"
        )
    print(
        "\nbound = min(cores, slots x stages) / (stages x per-attempt runner time); "
        "ratio = measured / bound;\nattempt s = start -> end of an attempt in the ledger "
        "(runner + executor polling + DB writes);\nbusy = share of the executor "
        "slots (slots x stages) that attempts occupied during the burst;\n"
        "latency: from a job's outbox row (created, or acknowledged "
        "by the broker) to its attempt row;\nidle = files sent one at a time, burst = the "
        "throughput run (includes waiting for a free slot)."
    )


if __name__ == "__main__":
    main()
