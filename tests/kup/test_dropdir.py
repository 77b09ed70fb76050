"""Drop directory: complete files ingested once (stable size or .done marker), nothing moved."""

from __future__ import annotations

import json
import os
import threading

import pytest
from click.testing import CliRunner

from jaas.cli.kup import kup
from jaas.errors import ConfigError
from jaas.kup.dropdir import DropDirWatcher
from jaas.kup.manifest import registered_manifests
from jaas.kup.states import JobKey, State
from tests.kup.test_operator_cli import Pipe


@pytest.fixture
def pipe(tmp_path):
    p = Pipe(tmp_path)
    yield p
    p.ledger.close()


def listing(d):
    return sorted((p.name, p.stat().st_size) for p in d.iterdir())


def test_a_growing_file_waits_until_its_size_is_stable(pipe):
    f = pipe.drop / "run1_0000.raw"
    with DropDirWatcher(pipe.sd, pipe.drop, stable_polls=2) as w:
        f.write_bytes(b"x" * 100)
        assert w.scan().waiting == [f.name]  # first sight
        with open(f, "ab") as out:
            out.write(b"y" * 100)  # the DAQ is still writing
        os.utime(f, ns=(f.stat().st_atime_ns, f.stat().st_mtime_ns + 1_000_000))
        assert w.scan().waiting == [f.name]
        assert pipe.ledger.job(JobKey(f.name, "a", "1")) is None
        assert w.scan().ingested == [f.name]  # unchanged across two scans
        assert w.scan().ingested == []  # never twice
    job = pipe.ledger.job(JobKey(f.name, "a", "1"))
    assert job is not None and job.state is State.QUEUED


def test_done_marker_ingests_at_once_and_nothing_is_moved(pipe):
    for name in ("run1_0001.raw", "run1_0002.raw", ".hidden.raw", "notes.txt"):
        (pipe.drop / name).write_bytes(name.encode())
    (pipe.drop / "run1_0001.raw.done").write_bytes(b"")
    (pipe.drop / ".run1_0003.raw.abc.part").write_bytes(b"partial")
    before = listing(pipe.drop)
    with DropDirWatcher(pipe.sd, pipe.drop) as w:
        res = w.scan()
    assert res.ingested == ["run1_0001.raw"]
    assert res.waiting == ["run1_0002.raw"]
    assert listing(pipe.drop) == before
    assert [j["file"] for j in pipe.ledger.jobs_of()] == ["run1_0001.raw"]


def test_a_restarted_watcher_does_not_ingest_twice(pipe):
    f = pipe.drop / "run1_0004.raw"
    f.write_bytes(b"abc")
    (pipe.drop / "run1_0004.raw.done").touch()
    with DropDirWatcher(pipe.sd, pipe.drop) as w:
        assert w.scan().ingested == [f.name]
    with DropDirWatcher(pipe.sd, pipe.drop) as w:  # fresh memory: the ledger knows the file
        assert w.scan().ingested == []
    assert len(pipe.ledger.jobs_of()) == 1


def test_empty_files_are_never_complete_without_a_marker(pipe):
    (pipe.drop / "run1_0005.raw").touch()
    with DropDirWatcher(pipe.sd, pipe.drop, stable_polls=1) as w:
        assert w.scan().ingested == []


def test_manifests_dropped_with_the_run_are_registered_and_bad_ones_reported(pipe):
    good = {"run": 8, "files": [{"name": "run8_0000.raw", "adler32": "0a0b0c0d"}]}
    (pipe.drop / "run8.manifest.json").write_text(json.dumps(good))
    (pipe.drop / "run9.manifest.json").write_text("{not json")
    with DropDirWatcher(pipe.sd, pipe.drop, stable_polls=1) as w:
        res = w.scan()
        assert res.manifests == ["run 8 (1 files)"]
        assert len(res.errors) == 1 and "run9.manifest.json" in res.errors[0]
        assert w.scan().manifests == []  # unchanged: not registered again
    assert [m.run for m in registered_manifests(pipe.sd)] == [8]


def test_run_loop_stops_on_event_and_missing_dir_is_an_error(pipe, tmp_path):
    (pipe.drop / "run1_0006.raw").write_bytes(b"z")
    stop = threading.Event()
    with DropDirWatcher(pipe.sd, pipe.drop) as w:
        assert w.run(interval=0.01, stop=stop, max_scans=3) == 1
    with pytest.raises(ConfigError, match="drop directory does not exist"):
        DropDirWatcher(pipe.sd, tmp_path / "nope")


def test_watch_cli_once(pipe):
    (pipe.drop / "run2_0000.raw").write_bytes(b"q")
    (pipe.drop / "run2_0000.raw.done").touch()
    (pipe.drop / "run2_0001.raw").write_bytes(b"q")
    res = CliRunner().invoke(kup, ["watch", str(pipe.sd), str(pipe.drop), "--once"])
    assert res.exit_code == 0, res.output
    assert "ingested run2_0000.raw" in res.output
    assert "still being written: run2_0001.raw" in res.output


def test_same_bytes_under_a_new_name_are_reported_not_ingested(pipe):
    (pipe.drop / "run2_0001.raw").write_bytes(b"same bytes")
    (pipe.drop / "run2_0001.raw.done").write_bytes(b"")
    with DropDirWatcher(pipe.sd, pipe.drop) as w:
        assert w.scan().ingested == ["run2_0001.raw"]
        (pipe.drop / "copy.raw").write_bytes(b"same bytes")
        (pipe.drop / "copy.raw.done").write_bytes(b"")
        res = w.scan()
    assert res.ingested == []
    assert res.errors == [
        "not ingested: copy.raw: same content as run2_0001.raw (already ingested)"
    ]
    assert [j["file"] for j in pipe.ledger.jobs_of()] == ["run2_0001.raw"]
