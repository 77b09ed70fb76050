"""Keep-up identifies input files by content and (run, sequence), not by base name."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

from jaas.cli.kup import kup
from jaas.errors import PipelineError
from jaas.formats.raw import RawWriter
from jaas.kup.config import KupSettings
from jaas.kup.ledger import Ledger
from jaas.kup.pipeline import ingest, ingest_report


@pytest.fixture
def sd(tmp_path):
    settings = KupSettings(state_dir=tmp_path / "kup")
    settings.state_dir.mkdir()
    settings.save()
    return settings.state_dir


def raw(path, run: int, seq: int, salt: int):
    path.parent.mkdir(parents=True, exist_ok=True)
    with RawWriter(path, run=run, file_seq=seq, start_time=1_000) as w:
        pmt = np.array([salt, salt + 1], dtype=np.uint32)
        w.write_event(0, 2_000, 1, pmt, np.ones(2, np.float32), np.ones(2, np.float32))
    return path


def unpublished_files(sd) -> list[str]:
    s = KupSettings.load(sd)
    led = Ledger(s.database, s.pipeline())
    try:
        return sorted(m.key for m in led.unpublished())
    finally:
        led.close()


def test_known_name_with_other_content_is_refused(sd, tmp_path):
    first = raw(tmp_path / "a" / "run1_0001.raw", 1, 1, salt=1)
    assert [k.file for k in ingest(sd, [first])] == ["run1_0001.raw"]
    assert ingest(sd, [first]) == []  # the same file again: already known
    other = raw(tmp_path / "b" / "run1_0001.raw", 1, 2, salt=7)  # new bytes, known name
    with pytest.raises(PipelineError, match="a different file under a known name"):
        ingest(sd, [other])
    res = CliRunner().invoke(kup, ["ingest", str(sd), str(other)])
    assert res.exit_code == 1
    assert "refused: run1_0001.raw: a different file under a known name" in res.output
    assert unpublished_files(sd) == ["run1_0001.raw"]  # one message, for the first file


def test_same_content_under_another_name_is_not_published_again(sd, tmp_path):
    a = raw(tmp_path / "run1_0001.raw", 1, 1, salt=1)
    b = tmp_path / "copy_of_run1_0001.raw"
    b.write_bytes(a.read_bytes())
    rep = ingest_report(sd, [a, b])
    assert [k.file for k in rep.queued] == ["run1_0001.raw"]
    assert rep.duplicates == [("copy_of_run1_0001.raw", "run1_0001.raw")]
    res = CliRunner().invoke(kup, ["ingest", str(sd), str(b)])
    assert res.exit_code == 0, res.output
    assert "1 duplicate(s) of known content, not published again" in res.output
    assert "same content as run1_0001.raw" in res.output
    assert unpublished_files(sd) == ["run1_0001.raw"]


def test_run_and_sequence_taken_by_other_content_is_refused(sd, tmp_path):
    a = raw(tmp_path / "run1_0001.raw", 1, 1, salt=1)
    b = raw(tmp_path / "renamed.raw", 1, 1, salt=9)  # other bytes claiming run 1 seq 1
    c = raw(tmp_path / "run1_0002.raw", 1, 2, salt=3)
    rep = ingest_report(sd, [a, b, c])
    assert sorted(k.file for k in rep.queued) == ["run1_0001.raw", "run1_0002.raw"]
    ((name, why),) = rep.refused
    assert name == "renamed.raw"
    assert "run 1 sequence 1 is already ingested as run1_0001.raw" in why
