"""``jaas raw`` info, check and dump through click's CliRunner."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from jaas.cli.raw import raw
from jaas.formats.raw import RawWriter
from tests.formats._rawdata import make_events


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    ev = make_events(30, seed=7, max_hits=5)
    good = tmp_path / "good.raw"
    with RawWriter(good, run=12, file_seq=4, start_time=1_700_000_000 * 10**9) as w:
        w.write_batch(ev)
    data = bytearray(good.read_bytes())
    first = 40  # header bytes; the first record starts here
    data[first + 20] ^= 0x01  # event 0's time: CRC mismatch
    bad = tmp_path / "bad.raw"
    bad.write_bytes(bytes(data))
    return good, bad


def test_info(files: tuple[Path, Path]) -> None:
    good, _ = files
    res = CliRunner().invoke(raw, ["info", str(good)])
    assert res.exit_code == 0, res.output
    assert "run 12, file 4" in res.output
    assert "events 30" in res.output and f"size {good.stat().st_size} bytes" in res.output
    assert "2023-11-14 22:13:20" in res.output  # start time rendered in UTC


def test_check_ok_and_corrupt(files: tuple[Path, Path]) -> None:
    good, bad = files
    res = CliRunner().invoke(raw, ["check", str(good)])
    assert res.exit_code == 0 and "OK, 30 events" in res.output
    res = CliRunner().invoke(raw, ["check", str(good), str(bad)])
    assert res.exit_code == 1
    assert "good.raw: OK" in res.output
    assert "bad.raw, byte offset 40, event 0: CRC-32C mismatch" in res.output


def test_check_salvage_prints_report(files: tuple[Path, Path]) -> None:
    _, bad = files
    res = CliRunner().invoke(raw, ["check", "--salvage", str(bad)])
    assert res.exit_code == 1
    assert "29 events recovered" in res.output and "event id 1000 lost" in res.output


def test_dump(files: tuple[Path, Path]) -> None:
    good, _ = files
    res = CliRunner().invoke(raw, ["dump", str(good), "--events", "2"])
    assert res.exit_code == 0, res.output
    assert "event 0: id 1000" in res.output and "event 1: id 1001" in res.output
    assert "event 2:" not in res.output
