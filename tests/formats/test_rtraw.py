"""RAW -> RTRAW conversion: values, order, counts, compression, atomicity, idempotency."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import uproot

from jaas._io import adler32_file
from jaas._version import __version__
from jaas.errors import ConfigError, CorruptRecordError, FormatError
from jaas.formats.events import HitEvents
from jaas.formats.raw import RawWriter
from jaas.formats.rtraw import (
    convert_raw,
    default_rtraw_path,
    iter_rtraw,
    parse_compression,
    read_meta,
    read_rtraw,
    take_hits,
    write_rtraw,
)

T0 = 1_700_000_000 * 10**9


def make_hits(n: int, seed: int = 1, mean_hits: float = 40.0, first_id: int = 0) -> HitEvents:
    """Synthetic time-ordered events; some have no hit at all."""
    rng = np.random.default_rng(seed)
    nh = rng.poisson(mean_hits, n)
    nh[::7] = 0
    offsets = np.zeros(n + 1, np.int64)
    np.cumsum(nh, out=offsets[1:])
    total = int(offsets[-1])
    return HitEvents(
        event_id=np.arange(first_id, first_id + n, dtype=np.uint64),
        t=T0 + np.cumsum(rng.integers(1, 2_000_000, n)).astype(np.int64),
        trigger=rng.choice(np.array([1, 2, 3, 4], np.uint16), n),
        offsets=offsets,
        pmt=rng.integers(0, 17612, total).astype(np.uint32),
        charge=rng.gamma(2.0, 0.6, total).astype(np.float32),
        time=rng.normal(120.0, 40.0, total).astype(np.float32),
    )


def write_raw(path: Path, hits: HitEvents, *, run: int = 1, file_seq: int = 0) -> Path:
    with RawWriter(path, run=run, file_seq=file_seq, start_time=int(hits.t[0])) as w:
        w.write_batch(hits)
    return path


def assert_same_hits(a: HitEvents, b: HitEvents) -> None:
    for name in ("event_id", "t", "trigger", "offsets", "pmt", "charge", "time"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
        assert getattr(a, name).dtype == getattr(b, name).dtype, name


@pytest.fixture
def raw_file(tmp_path: Path) -> tuple[Path, HitEvents]:
    hits = make_hits(600)
    return write_raw(tmp_path / "run000001_0000.raw", hits, run=1, file_seq=0), hits


def test_round_trip_keeps_values_order_and_counts(raw_file: tuple[Path, HitEvents]) -> None:
    raw, hits = raw_file
    # small batches and baskets: events cross batch and basket boundaries
    res = convert_raw(raw, progress=False, batch_events=97, basket_hits=500)
    assert res.output == raw.parent / "run000001_0000.rtraw.root"
    assert res.n_events == len(hits) and not res.skipped
    assert (res.t_min, res.t_max) == (int(hits.t[0]), int(hits.t[-1]))
    assert_same_hits(read_rtraw(res.output), hits)
    streamed = HitEvents.concatenate(list(iter_rtraw(res.output, step_size=128)))
    assert_same_hits(streamed, hits)
    tree = uproot.open(res.output)["rtraw"]
    assert tree["nhit"].array(library="np").tolist() == hits.nhits.tolist()
    assert tree.typenames()["pmt"] == "uint32_t[]"
    assert tree["pmt"].num_baskets >= len(hits.pmt) // 500  # the basket bound was applied


def test_metadata_names_source_and_checksum(raw_file: tuple[Path, HitEvents]) -> None:
    raw, hits = raw_file
    res = convert_raw(raw, progress=False)
    meta = read_meta(res.output)
    assert meta["run"] == 1 and meta["file_seq"] == 0
    assert meta["source"] == raw.name
    assert meta["source_adler32"] == adler32_file(raw)
    assert meta["software_version"] == __version__
    assert meta["n_events"] == len(hits)
    assert meta["compression"] == "zstd:5"


def test_read_selected_entries_in_given_order(raw_file: tuple[Path, HitEvents]) -> None:
    raw, hits = raw_file
    out = convert_raw(raw, progress=False, basket_hits=300).output
    entries = [599, 3, 3, 250, 0, 7]
    got = read_rtraw(out, entries=entries)
    assert_same_hits(got, take_hits(hits, entries))
    assert got.event(0)["event_id"] == 599
    with pytest.raises(FormatError, match=r"rtraw\.root.*entry 600 out of range"):
        read_rtraw(out, entries=[1, 600])


@pytest.mark.parametrize("spec", ["zstd:1", "lz4", "zlib:9", "none"])
def test_compression_options_round_trip(tmp_path: Path, spec: str) -> None:
    hits = make_hits(200, seed=3)
    raw = write_raw(tmp_path / "run000001_0000.raw", hits)
    res = convert_raw(raw, compression=spec, progress=False)
    assert_same_hits(read_rtraw(res.output), hits)
    assert read_meta(res.output)["compression"] == parse_compression(spec)[0] + (
        "" if spec == "none" else f":{parse_compression(spec)[1]}"
    )


def test_compression_shrinks_and_none_does_not(tmp_path: Path) -> None:
    # charges quantised like an ADC: compressible
    hits = make_hits(300, seed=4)
    hits.charge = np.round(hits.charge * 10).astype(np.float32) / 10
    sizes = {}
    for spec in ("zstd:9", "none"):
        out = tmp_path / f"{spec.split(':')[0]}.root"
        write_rtraw([hits], out, meta={}, compression=spec)
        sizes[spec] = out.stat().st_size
    assert sizes["zstd:9"] < 0.8 * sizes["none"]


@pytest.mark.parametrize(
    ("spec", "message"),
    [("brotli", "unknown compression"), ("zstd:30", r"1\.\.22"), ("lz4:x", "not an integer")],
)
def test_bad_compression_is_refused(spec: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_compression(spec)


def test_corrupt_raw_names_event_and_leaves_no_output(tmp_path: Path) -> None:
    hits = make_hits(300, seed=5)
    raw = write_raw(tmp_path / "run000001_0000.raw", hits)
    data = bytearray(raw.read_bytes())
    data[len(data) // 2] ^= 0xFF  # inside an event record, past the header
    raw.write_bytes(bytes(data))
    with pytest.raises(CorruptRecordError) as info:
        convert_raw(raw, progress=False, batch_events=50)
    err = info.value
    assert err.path == str(raw) and err.event is not None and err.offset is not None
    assert "run000001_0000.raw" in str(err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run000001_0000.raw"]


def test_rerun_is_skipped_and_forced_rerun_is_byte_identical(
    raw_file: tuple[Path, HitEvents],
) -> None:
    raw, _ = raw_file
    first = convert_raw(raw, progress=False)
    before = first.output.read_bytes()
    again = convert_raw(raw, progress=False)
    assert again.skipped and again.output == first.output
    assert again.n_events == first.n_events
    forced = convert_raw(raw, progress=False, force=True)
    assert not forced.skipped
    assert forced.output.read_bytes() == before
    assert sorted(p.name for p in raw.parent.iterdir()) == [raw.name, first.output.name]


def test_changed_options_are_not_skipped(raw_file: tuple[Path, HitEvents]) -> None:
    raw, _ = raw_file
    convert_raw(raw, progress=False)
    res = convert_raw(raw, compression="lz4", progress=False)
    assert not res.skipped
    assert read_meta(res.output)["compression"] == "lz4:4"


def test_empty_raw_gives_empty_tree(tmp_path: Path) -> None:
    raw = tmp_path / "run000001_0001.raw"
    with RawWriter(raw, run=1, file_seq=1):
        pass
    res = convert_raw(raw, progress=False)
    assert res.n_events == 0 and res.t_min is None
    assert len(read_rtraw(res.output)) == 0


def test_default_path() -> None:
    assert default_rtraw_path("/d/run000001_0000.raw") == Path("/d/run000001_0000.rtraw.root")
    assert default_rtraw_path("x/a.raw", "out") == Path("out/a.rtraw.root")
