"""The relay wakes on new outbox rows (SQLite data_version, PostgreSQL LISTEN/NOTIFY)
instead of waiting out its poll interval, and stays asleep while nothing changes."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from jaas.kup.config import PipelineConfig
from jaas.kup.ledger import Ledger
from jaas.kup.membus import MemoryBus
from jaas.kup.relay import OutboxWatch, Relay

CONFIG = PipelineConfig.model_validate(
    {"stages": [{"name": "a", "input": "w.a", "entry": "jaas.kup.stages:noop"}]}
)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'kup.db'}"
    return request.getfixturevalue("pg_database_url")


def raw_file(tmp_path: Path, i: int) -> Path:
    p = tmp_path / f"run1_{i:04d}.raw"
    p.write_bytes(b"x")
    return p


def test_watch_wakes_on_a_commit_of_another_ledger_and_sleeps_otherwise(url, tmp_path):
    relay_side, writer = Ledger(url, CONFIG), Ledger(url, CONFIG)  # as two processes
    watch = OutboxWatch(relay_side, check=0.01)
    stop = threading.Event()
    try:
        assert watch.wait(stop, 0.05) is False  # opens the watch; nothing happened
        relay_side.fire_due_retries()  # the relay's own idle sweeps change nothing
        relay_side.expire_leases()
        assert relay_side.unpublished() == []
        t0 = time.monotonic()
        assert watch.wait(stop, 0.3) is False
        assert time.monotonic() - t0 >= 0.29  # slept the whole timeout
        timer = threading.Timer(0.2, lambda: writer.submit_files([raw_file(tmp_path, 0)]))
        timer.start()
        t0 = time.monotonic()
        woke = watch.wait(stop, 20.0)
        waited = time.monotonic() - t0
        timer.join()
        assert woke is True
        assert waited < 10.0, f"woke after {waited:.2f} s, not on the commit"
        assert [m.key for m in relay_side.unpublished()] == ["run1_0000.raw"]
    finally:
        watch.close()
        relay_side.close()
        writer.close()


def test_watch_stops_when_told(url):
    led = Ledger(url, CONFIG)
    watch = OutboxWatch(led)
    stop = threading.Event()
    threading.Timer(0.2, stop.set).start()
    t0 = time.monotonic()
    try:
        assert watch.wait(stop, 30.0) is False
        assert time.monotonic() - t0 < 10.0
    finally:
        watch.close()
        led.close()


def test_relay_publishes_a_new_row_long_before_its_poll_interval(url, tmp_path):
    relay_side, writer = Ledger(url, CONFIG), Ledger(url, CONFIG)
    bus = MemoryBus()
    relay = Relay(relay_side, bus, sentinel="w.epoch")
    stop = threading.Event()
    t = threading.Thread(target=relay.run, args=(stop, 30.0, 60.0))  # poll: 30 s
    t.start()
    try:
        time.sleep(0.3)  # the relay has reconciled and is waiting
        writer.submit_files([raw_file(tmp_path, 1)])
        t0 = time.monotonic()
        while writer.unpublished() and time.monotonic() - t0 < 20.0:
            time.sleep(0.01)
        assert writer.unpublished() == [], "the relay waited for its 30 s poll"
        assert time.monotonic() - t0 < 10.0
    finally:
        stop.set()
        t.join(15)
        relay_side.close()
        writer.close()
    assert not t.is_alive()
    assert relay.watch._conn is None  # the kept connection was closed with the loop


def test_watch_of_an_in_memory_ledger_just_sleeps():
    led = Ledger("sqlite://", CONFIG)
    watch = OutboxWatch(led)
    t0 = time.monotonic()
    try:
        assert watch.wait(threading.Event(), 0.1) is False
        assert time.monotonic() - t0 >= 0.09
    finally:
        led.close()
