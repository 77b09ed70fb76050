"""The read cache: answers kept until the database changes (a real SQLite file and a real
in-memory database), the SQL run aggregate equal to the per-job computation it replaced."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from pathlib import Path

from sqlalchemy import insert

from jaas.kup.ledger import Ledger, jobs
from jaas.kup.manifest import run_of_file
from jaas.kup.readmodels import job_arrivals, run_progress
from jaas.portal.cache import ChangeToken, ViewCache
from jaas.portal.source import LedgerSource
from tests.portal.conftest import CONFIG


def test_answers_are_kept_until_another_connection_commits(ledger: Ledger, tmp_path: Path):
    source = LedgerSource(ledger)
    before = source.summary()
    assert source.summary() is before  # the same object: no query
    other = Ledger(ledger.url, CONFIG)  # another connection, as a pipeline worker
    raw = tmp_path / "run9_0001.raw"
    raw.write_bytes(b"z")
    other.submit_files([raw])
    other.close()
    after = source.summary()
    assert after is not before
    assert after.jobs["a"]["queued"] == before.jobs["a"].get("queued", 0) + 1
    assert source.cache.hits >= 1 and source.cache.misses == 2
    source.close()


def test_in_memory_database_sees_its_own_writes():
    led = Ledger("sqlite://", CONFIG)
    cache = ViewCache(ChangeToken(led.engine))
    calls = []

    def count() -> int:
        calls.append(1)
        return sum(sum(s.values()) for s in led.counts().values())

    assert cache.get("n", count) == 0 and cache.get("n", count) == 0 and len(calls) == 1
    now = dt.datetime.now(dt.UTC)
    with led.engine.begin() as conn:
        conn.execute(
            insert(jobs).values(
                file="f",
                stage="a",
                version="1",
                state="queued",
                attempts=0,
                created=now,
                updated=now,
            )
        )
    assert cache.get("n", count) == 1 and len(calls) == 2
    led.close()


def test_interval_bounds_how_long_a_stale_answer_is_served(ledger: Ledger, tmp_path: Path):
    cache = ViewCache(ChangeToken(ledger.engine), interval=3600)
    n = cache.get("n", lambda: len(ledger.jobs_of([f"run1_{i:04d}.raw" for i in range(8)])))
    (tmp_path / "run1_0100.raw").write_bytes(b"z")
    ledger.submit_files([tmp_path / "run1_0100.raw"])
    assert cache.get("n", lambda: -1) == n  # within the interval: not re-checked
    cache.clear()  # what the app does after a write request
    assert cache.get("n", lambda: -1) == -1


def _reference(url: str) -> dict[int, tuple[int, dict[str, int], float, float | None]]:
    """The per-job Python computation /api/runs did before the SQL aggregate."""
    current = {s.name: s.version for s in CONFIG.stages}
    first, last = CONFIG.stages[0].name, CONFIG.stages[-1].name
    led = Ledger(url, CONFIG)
    files: dict[int, dict[str, float]] = defaultdict(dict)
    done: dict[tuple[int, str], set[str]] = defaultdict(set)
    for file, stage, version, state, created in job_arrivals(led.engine):
        run = run_of_file(file)
        if run is None or current.get(stage) != version:
            continue
        if stage == first:
            files[run][file] = created.timestamp()
        if state == "done":
            done[(run, stage)].add(file)
    led.close()
    out = {}
    for run, arrivals in files.items():
        waiting = [t for f, t in arrivals.items() if f not in done[(run, last)]]
        out[run] = (
            len(arrivals),
            {s: len(done[(run, s)]) for s in current},
            max(arrivals.values()),
            min(waiting) if waiting else None,
        )
    return out


def test_run_aggregate_matches_the_per_job_computation(tmp_path: Path):
    led = Ledger(f"sqlite:///{tmp_path / 'r.db'}", CONFIG)
    t0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    names = ["run5_0001.raw", "run005_0002.raw", "run5.0003.raw", "run12-0001.raw"]
    names += ["run5abc_0001.raw", "run_0001.raw", "bulk_0001.raw", "Run7_0001.raw"]
    names += ["run0_0001.raw", "run3_0001.raw"]
    rows = []
    for i, f in enumerate(names):
        for stage, version, state in [("a", "1", "done"), ("b", "7", ["done", "queued"][i % 2])]:
            if f == "run3_0001.raw" and stage == "a":
                version = "0"  # an old version of the first stage: not an arrival
            t = t0 + dt.timedelta(minutes=i)
            key = {"file": f, "stage": stage, "version": version}
            rows.append({**key, "state": state, "attempts": 1, "created": t, "updated": t})
    with led.engine.begin() as conn:
        conn.execute(insert(jobs), rows)
    got = {
        p.run: (
            p.files,
            p.done,
            p.newest.timestamp(),
            None if p.oldest_waiting is None else p.oldest_waiting.timestamp(),
        )
        for p in run_progress(led.engine, [(s.name, s.version) for s in CONFIG.stages])
    }
    led.close()
    assert got == _reference(f"sqlite:///{tmp_path / 'r.db'}")
    assert sorted(got) == [0, 5, 12]
