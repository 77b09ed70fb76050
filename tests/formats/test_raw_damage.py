"""RAW damage: flipped bytes, truncation and salvage name exactly what is wrong or lost."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jaas.errors import CorruptRecordError, FormatError, TruncatedFileError
from jaas.formats.events import HitEvents
from jaas.formats.raw import RawReader, RawWriter, raw_info, read_raw
from tests.formats._rawdata import assert_same, make_events

HEADER = 40  # file header bytes without metadata (docs/raw-format.md)


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> tuple[HitEvents, bytes, np.ndarray]:
    """20 events, the file bytes, and the byte offset of every event record."""
    ev = make_events(20, seed=11, max_hits=6)
    path = tmp_path_factory.mktemp("raw") / "s.raw"
    with RawWriter(path, run=1, file_seq=0) as w:
        w.write_batch(ev)
    sizes = 36 + 12 * np.diff(ev.offsets)
    starts = HEADER + np.concatenate([[0], np.cumsum(sizes)[:-1]])
    return ev, path.read_bytes(), starts


def _put(tmp_path: Path, data: bytes, name: str = "d.raw") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def _flip(data: bytes, pos: int) -> bytes:
    b = bytearray(data)
    b[pos] ^= 0xFF
    return bytes(b)


def _yielded(path: Path, **kw: object) -> tuple[list[HitEvents], BaseException | None]:
    out: list[HitEvents] = []
    try:
        with RawReader(path, chunk_bytes=256, **kw) as r:  # type: ignore[arg-type]
            out.extend(r)
    except FormatError as exc:
        return out, exc
    return out, None


def _subset_of(ev: HitEvents, got: HitEvents) -> None:
    """Every event in ``got`` is identical to the original with the same id."""
    for i in range(len(got)):
        e = got.event(i)
        j = int(e["event_id"]) - int(ev.event_id[0])  # type: ignore[call-overload]
        o = ev.event(j)
        assert e["t"] == o["t"] and e["trigger"] == o["trigger"]
        for k in ("pmt", "charge", "time"):
            np.testing.assert_array_equal(e[k], o[k])  # type: ignore[arg-type]


def test_flipped_hit_byte_names_offset_event_and_crc(tmp_path: Path, sample) -> None:
    ev, data, starts = sample
    i = int(np.flatnonzero(ev.nhits[7:])[0]) + 7  # an event with hits
    nh = int(ev.nhits[i])
    path = _put(tmp_path, _flip(data, int(starts[i]) + 32 + 12 * nh - 1))
    with pytest.raises(CorruptRecordError) as err:
        read_raw(path)
    e = err.value
    assert (e.offset, e.event) == (int(starts[i]), i)
    assert "CRC-32C mismatch" in e.reason and "stored 0x" in e.reason and "computed 0x" in e.reason
    assert f"event id {1000 + i}" in str(e) and str(path) in str(e)


def test_flipped_magic_and_length(tmp_path: Path, sample) -> None:
    _, data, starts = sample
    with pytest.raises(
        CorruptRecordError, match=r"bad record magic b'JEV.*expected b'JEVT'"
    ) as err:
        read_raw(_put(tmp_path, _flip(data, int(starts[3]) + 3)))
    assert (err.value.offset, err.value.event) == (int(starts[3]), 3)
    with pytest.raises(CorruptRecordError, match=r"bad event record length") as err:
        read_raw(_put(tmp_path, _flip(data, int(starts[12]) + 4)))
    assert (err.value.offset, err.value.event) == (int(starts[12]), 12)
    assert "event id 1012" in str(err.value)


def test_flipped_event_id_is_a_crc_error(tmp_path: Path, sample) -> None:
    _, data, starts = sample
    with pytest.raises(CorruptRecordError, match="CRC-32C mismatch") as err:
        read_raw(_put(tmp_path, _flip(data, int(starts[0]) + 8)))
    assert (err.value.offset, err.value.event) == (int(starts[0]), 0)


def test_flipped_file_header(tmp_path: Path, sample) -> None:
    _, data, _ = sample
    with pytest.raises(FormatError, match=r"bad file header: CRC-32C mismatch") as err:
        RawReader(_put(tmp_path, _flip(data, 20)))
    assert err.value.offset == 0
    with pytest.raises(FormatError, match=r"not a RAW file"):
        RawReader(_put(tmp_path, _flip(data, 0)))
    with pytest.raises(FormatError, match=r"version 254 is not supported"):
        RawReader(_put(tmp_path, _flip(data, 8)))


def test_flipped_end_record(tmp_path: Path, sample) -> None:
    _, data, _ = sample
    path = _put(tmp_path, _flip(data, len(data) - 30))
    with pytest.raises(CorruptRecordError, match="end-of-file record CRC-32C mismatch") as err:
        read_raw(path)
    assert (err.value.offset, err.value.event) == (len(data) - 48, 20)
    with pytest.raises(CorruptRecordError):
        raw_info(path)


def test_every_flipped_byte_is_detected_and_salvage_is_exact(tmp_path: Path, sample) -> None:
    ev, data, starts = sample
    for pos in range(len(data)):
        path = _put(tmp_path, _flip(data, pos))
        with pytest.raises(FormatError):
            read_raw(path)
        if pos < HEADER:
            continue
        got, exc = _yielded(path, salvage=True)
        assert exc is None
        got_ev = HitEvents.concatenate(got)
        _subset_of(ev, got_ev)
        if pos < len(data) - 48:  # one damaged record: exactly that event is lost
            i = int(np.searchsorted(starts, pos, side="right")) - 1
            assert len(got_ev) == 19, pos
            assert 1000 + i not in got_ev.event_id.tolist()


def test_missing_end_record(tmp_path: Path, sample) -> None:
    _, data, _ = sample
    cut = len(data) - 48
    with pytest.raises(TruncatedFileError, match="missing end-of-file record") as err:
        read_raw(_put(tmp_path, data[:cut]))
    assert (err.value.offset, err.value.event) == (cut, 20)
    with pytest.raises(TruncatedFileError, match="missing end-of-file record"):
        raw_info(_put(tmp_path, data[:cut]))


def test_truncated_record_says_how_many_bytes_are_missing(tmp_path: Path, sample) -> None:
    ev, data, starts = sample
    cut = int(starts[5]) + 40
    size5 = 36 + 12 * int(ev.offsets[6] - ev.offsets[5])
    with pytest.raises(TruncatedFileError, match=f"expected {size5 - 40} more bytes") as err:
        read_raw(_put(tmp_path, data[:cut]))
    assert (err.value.offset, err.value.event) == (int(starts[5]), 5)


def test_removed_record_and_trailing_bytes(tmp_path: Path, sample) -> None:
    _, data, starts = sample
    gone = data[: int(starts[4])] + data[int(starts[5]) :]
    with pytest.raises(CorruptRecordError, match="counts 20 events, 19 were read"):
        read_raw(_put(tmp_path, gone))
    with pytest.raises(CorruptRecordError, match="unexpected 3 bytes after the end-of-file"):
        read_raw(_put(tmp_path, data + b"abc"))


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(frac=st.floats(0.0, 1.0, exclude_max=True))
def test_any_truncation_is_named_never_wrong_data(tmp_path: Path, sample, frac: float) -> None:
    ev, data, _ = sample
    cut = int(frac * len(data))
    path = _put(tmp_path, data[:cut], f"t{cut}.raw")
    got, exc = _yielded(path)
    assert isinstance(exc, TruncatedFileError | CorruptRecordError), (cut, exc)
    assert exc.offset is not None and exc.offset <= cut
    assert_same(HitEvents.concatenate(got), _prefix(ev, sum(len(g) for g in got)))
    if cut >= HEADER:  # salvage returns every complete record before the cut
        with RawReader(path, salvage=True) as r:
            n = sum(len(b) for b in r)
            assert r.report is not None and not r.report.ok and not r.report.end_record
            assert r.report.lost[-1].end == cut
        assert n >= sum(len(g) for g in got)


def _prefix(ev: HitEvents, n: int) -> HitEvents:
    h = int(ev.offsets[n])
    return HitEvents(
        ev.event_id[:n],
        ev.t[:n],
        ev.trigger[:n],
        ev.offsets[: n + 1],
        ev.pmt[:h],
        ev.charge[:h],
        ev.time[:h],
    )


def test_salvage_report_names_lost_ids(tmp_path: Path, sample) -> None:
    ev, data, starts = sample
    bad = _flip(_flip(data, int(starts[5]) + 33), int(starts[9]) + 1)
    bad = _flip(bad, int(starts[10]) + 2)  # 9 and 10 are consecutive: one lost range
    path = _put(tmp_path, bad)
    with RawReader(path, salvage=True, chunk_bytes=128) as r:
        got = HitEvents.concatenate(list(r))
        report = r.report
    assert report is not None
    assert len(got) == 17 and report.events_recovered == 17
    assert sorted(set(ev.event_id.tolist()) - set(got.event_id.tolist())) == [1005, 1009, 1010]
    assert [(x.start, x.end) for x in report.lost] == [
        (int(starts[5]), int(starts[6])),
        (int(starts[9]), int(starts[11])),
    ]
    assert [x.missing_ids for x in report.lost] == [range(1005, 1006), range(1009, 1011)]
    assert report.lost[0].nbytes == int(starts[6] - starts[5])
    assert report.events_lost_estimate == 3 and report.end_record
    text = str(report)
    assert "17 events recovered" in text and "event id 1005 lost" in text
    assert "event ids 1009..1010 lost (2 events)" in text and "CRC-32C mismatch" in text
    _subset_of(ev, got)


def test_salvage_of_a_good_file_reports_nothing(tmp_path: Path, sample) -> None:
    ev, data, _ = sample
    with RawReader(_put(tmp_path, data), salvage=True) as r:
        assert_same(HitEvents.concatenate(list(r)), ev)
        assert r.report is not None and r.report.ok and r.report.events_lost_estimate == 0
