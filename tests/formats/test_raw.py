"""RAW files: round trip, determinism, time order, streaming, atomic writes, info."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from jaas.errors import ConfigError
from jaas.formats.events import HitEvents
from jaas.formats.raw import RawHeader, RawReader, RawWriter, raw_info, read_raw
from tests.formats._rawdata import assert_same, make_events


def _write(path: Path, ev: HitEvents, **kw: object) -> Path:
    with RawWriter(path, run=kw.pop("run", 42), file_seq=kw.pop("file_seq", 3), **kw) as w:  # type: ignore[arg-type]
        w.write_batch(ev)
    return path


def test_round_trip_values_order_and_header(tmp_path: Path) -> None:
    ev = make_events(500)
    path = _write(tmp_path / "a.raw", ev, start_time=123, metadata='{"det": "CD"}')
    with RawReader(path) as r:
        assert r.header == RawHeader(
            version=1, run=42, file_seq=3, start_time=123, metadata='{"det": "CD"}'
        )
        back = HitEvents.concatenate(list(r))
    assert_same(back, ev)


def test_write_event_and_write_batch_give_identical_bytes(tmp_path: Path) -> None:
    ev = make_events(200, seed=5)
    a = _write(tmp_path / "a.raw", ev)
    b = _write(tmp_path / "b.raw", ev)
    with RawWriter(tmp_path / "c.raw", run=42, file_seq=3) as w:
        for i in range(len(ev)):
            e = ev.event(i)
            w.write_event(e["event_id"], e["t"], e["trigger"], e["pmt"], e["charge"], e["time"])  # type: ignore[arg-type]
        assert w.n_events == 200
    assert a.read_bytes() == b.read_bytes() == (tmp_path / "c.raw").read_bytes()


def test_write_batch_in_pieces_equals_one_batch(tmp_path: Path) -> None:
    ev = make_events(300, seed=2)
    one = _write(tmp_path / "one.raw", ev)
    with RawWriter(tmp_path / "two.raw", run=42, file_seq=3) as w:
        w.write_batch(HitEvents.concatenate([]))
        for s in (slice(0, 1), slice(1, 150), slice(150, 300)):
            idx = np.arange(300)[s]
            part = HitEvents.concatenate([_slice(ev, i) for i in idx])
            w.write_batch(part)
        size = w.bytes_written
    assert (tmp_path / "two.raw").read_bytes() == one.read_bytes()
    assert one.stat().st_size == size + 48  # end-of-file record added by close


def _slice(ev: HitEvents, i: int) -> HitEvents:
    a, b = ev.offsets[i], ev.offsets[i + 1]
    return HitEvents(
        event_id=ev.event_id[i : i + 1],
        t=ev.t[i : i + 1],
        trigger=ev.trigger[i : i + 1],
        offsets=np.array([0, b - a], np.int64),
        pmt=ev.pmt[a:b],
        charge=ev.charge[a:b],
        time=ev.time[a:b],
    )


def test_refuses_out_of_order_times(tmp_path: Path) -> None:
    with RawWriter(tmp_path / "a.raw", run=1, file_seq=0) as w:
        w.write_event(1, 1000, 1, [1], [1.0], [0.0])
        w.write_event(2, 1000, 1, [], [], [])  # equal times are fine
        with pytest.raises(ConfigError, match=r"event id 3 at t=999 ns is earlier.*t=1000"):
            w.write_event(3, 999, 1, [1], [1.0], [0.0])
        ev = make_events(3)
        ev.t[:] = [2000, 1999, 3000]
        with pytest.raises(ConfigError, match=r"event id 1001 at t=1999"):
            w.write_batch(ev)
        ev.t[:] = [500, 600, 700]
        with pytest.raises(ConfigError, match=r"earlier than the previous"):
            w.write_batch(ev)
        assert w.n_events == 2
    assert len(read_raw(tmp_path / "a.raw")) == 2


def test_refuses_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="run"):
        RawWriter(tmp_path / "a.raw", run=-1, file_seq=0)
    assert list(tmp_path.iterdir()) == []
    with RawWriter(tmp_path / "a.raw", run=1, file_seq=0) as w:
        with pytest.raises(ConfigError, match="equal length"):
            w.write_event(1, 0, 1, [1, 2], [1.0], [0.0, 1.0])
        with pytest.raises(ConfigError, match="trigger"):
            w.write_event(1, 0, 1 << 16, [], [], [])


def test_exception_leaves_no_file(tmp_path: Path) -> None:
    def write_then_fail() -> None:
        with RawWriter(tmp_path / "a.raw", run=1, file_seq=0) as w:
            w.write_batch(make_events(50))
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        write_then_fail()
    assert list(tmp_path.iterdir()) == []


def test_nothing_visible_before_close(tmp_path: Path) -> None:
    w = RawWriter(tmp_path / "a.raw", run=1, file_seq=0)
    w.write_batch(make_events(10))
    assert not (tmp_path / "a.raw").exists()
    w.close()
    assert len(read_raw(tmp_path / "a.raw")) == 10
    w2 = RawWriter(tmp_path / "b.raw", run=1, file_seq=0)
    w2.abort()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.raw"]


@pytest.mark.parametrize(("batch_events", "batch_bytes"), [(7, 1 << 20), (10_000, 600)])
def test_streaming_batches_are_bounded(tmp_path: Path, batch_events: int, batch_bytes: int) -> None:
    ev = make_events(400, seed=3)
    path = _write(tmp_path / "a.raw", ev)
    with RawReader(path, batch_events=batch_events, chunk_bytes=1024, batch_bytes=batch_bytes) as r:
        batches = list(r)
    assert len(batches) > 1
    for b in batches:
        assert len(b) <= batch_events
        # a batch exceeds the hit budget only when it is a single large event
        assert len(b) == 1 or 12 * int(b.offsets[-1]) <= batch_bytes
    assert_same(HitEvents.concatenate(batches), ev)


def test_event_larger_than_chunk_and_batch(tmp_path: Path) -> None:
    muon = make_events(3, seed=4, max_hits=2)
    big = HitEvents(
        event_id=np.array([7], np.uint64),
        t=np.array([muon.t[-1] + 1], np.int64),
        trigger=np.array([3], np.uint16),
        offsets=np.array([0, 17_612], np.int64),
        pmt=np.arange(17_612, dtype=np.uint32),
        charge=np.linspace(0, 5, 17_612, dtype=np.float32),
        time=np.linspace(-50, 500, 17_612, dtype=np.float32),
    )
    ev = HitEvents.concatenate([muon, big])
    path = _write(tmp_path / "m.raw", ev)
    with RawReader(path, chunk_bytes=4096, batch_bytes=4096) as r:
        assert_same(HitEvents.concatenate(list(r)), ev)


def test_empty_file_and_info(tmp_path: Path) -> None:
    path = tmp_path / "e.raw"
    with RawWriter(path, run=5, file_seq=1, start_time=9):
        pass
    assert len(read_raw(path)) == 0
    info = raw_info(path)
    assert (info["run"], info["file_seq"], info["n_events"], info["t_first"]) == (5, 1, 0, None)


def test_info_reads_footer(tmp_path: Path) -> None:
    ev = make_events(123, seed=9)
    path = _write(tmp_path / "a.raw", ev, start_time=77)
    info = raw_info(path)
    assert info["n_events"] == 123
    assert info["n_hits"] == int(ev.offsets[-1])
    assert (info["t_first"], info["t_last"]) == (int(ev.t[0]), int(ev.t[-1]))
    assert info["size"] == path.stat().st_size
    assert (info["run"], info["file_seq"], info["start_time"]) == (42, 3, 77)


def test_large_values_survive(tmp_path: Path) -> None:
    ev = make_events(2, seed=1, max_hits=3)
    ev.event_id[:] = [2**63 + 5, 2**64 - 1]
    ev.t[:] = [-(2**62), 2**62]
    path = _write(tmp_path / "a.raw", ev)
    assert_same(read_raw(path), ev)
