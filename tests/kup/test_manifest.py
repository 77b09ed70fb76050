"""End-of-run manifests: validation, registration, run completeness in `jaas kup status`."""

from __future__ import annotations

import json
import zlib

import pytest
from click.testing import CliRunner

from jaas.cli.kup import kup
from jaas.cli.kup_text import format_status
from jaas.errors import ConfigError
from jaas.kup.manifest import (
    files_of_run,
    load_manifest,
    register_manifest,
    run_of_file,
    run_reports,
    write_manifest,
)
from jaas.kup.pipeline import status
from tests.kup.test_operator_cli import Pipe


@pytest.fixture
def pipe(tmp_path):
    p = Pipe(tmp_path)
    yield p
    p.ledger.close()


def test_write_then_load_roundtrip_with_independent_adler32(tmp_path):
    f = tmp_path / "run9_0000.raw"
    f.write_bytes(bytes(range(256)) * 40)
    m = write_manifest(tmp_path / "run9.manifest.json", 9, [f])
    assert m.files[0].adler32 == f"{zlib.adler32(f.read_bytes()) & 0xFFFFFFFF:08x}"
    again = load_manifest(tmp_path / "run9.manifest.json")
    assert (again.run, again.files) == (9, m.files)
    y = tmp_path / "run9.manifest.yaml"
    y.write_text("run: 9\nfiles:\n  - {name: run9_0000.raw, adler32: " + m.files[0].adler32 + "}\n")
    assert load_manifest(y).files[0].adler32 == m.files[0].adler32


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"files": []}, "'run' must be a non-negative integer"),
        ({"run": 1, "files": [{"name": "a.raw", "adler32": "xyz"}]}, "files[0] (a.raw): 'adler32'"),
        ({"run": 1, "files": [{"name": "../a.raw", "adler32": "1"}]}, "bare file name"),
        (
            {"run": 1, "files": [{"name": "a", "adler32": "1"}, {"name": "a", "adler32": "2"}]},
            "files[1]: a is listed twice",
        ),
    ],
)
def test_bad_manifests_are_refused_with_file_and_entry(tmp_path, data, message):
    p = tmp_path / "bad.manifest.json"
    p.write_text(json.dumps(data))
    with pytest.raises(ConfigError) as err:
        load_manifest(p)
    assert str(p) in str(err.value) and message in str(err.value)


def test_run_of_file_and_files_of_run(pipe, tmp_path):
    assert run_of_file("run12_0003.raw") == 12
    assert run_of_file("run012.raw") == 12
    assert run_of_file("calib.raw") is None
    m = tmp_path / "r.manifest.json"
    m.write_text(json.dumps({"run": 5, "files": [{"name": "odd_name.raw", "adler32": "1"}]}))
    register_manifest(pipe.sd, m)
    assert files_of_run(pipe.sd, 5, ["run5_0001.raw", "run50_0001.raw"]) == {
        "run5_0001.raw",
        "odd_name.raw",
    }


def test_run_is_complete_only_when_every_file_is_done_everywhere_with_matching_checksum(pipe):
    files = [pipe.raw(f"run5_{i:04d}.raw") for i in range(3)]
    ghost = pipe.drop / "run5_0003.raw"  # announced, never arrives
    ghost.write_bytes(b"never ingested")
    manifest = write_manifest(pipe.drop / "run5.manifest.json", 5, [*files, ghost])
    ghost.unlink()
    register_manifest(pipe.sd, pipe.drop / "run5.manifest.json")
    pipe.ledger.submit_files(files)
    for f in files:
        pipe.run(f.name, "a")
    (rep,) = run_reports(pipe.sd)
    assert (rep.expected, rep.seen["a"], rep.done["a"], rep.seen["b"]) == (4, 3, 3, 3)
    assert rep.done["b"] == 0 and rep.missing == ["run5_0003.raw"]
    assert not rep.complete
    for f in files:
        pipe.run(f.name, "b")
        pipe.run(f.name, "c")
    # drop the ghost from the manifest: now complete
    m2 = pipe.drop / "run5b.manifest.json"
    m2.write_text(
        json.dumps(
            {
                "run": 5,
                "files": [{"name": e.name, "adler32": e.adler32} for e in manifest.files[:3]],
            }
        )
    )
    register_manifest(pipe.sd, m2)
    (rep,) = run_reports(pipe.sd)
    assert rep.complete, rep
    text = format_status(status(pipe.sd))
    assert "runs (end-of-run manifests):" in text
    (line,) = [ln for ln in text.splitlines() if ln.startswith("5 ")]
    assert line.split()[1:] == ["3", "3/3", "3/3", "3/3", "complete"]
    # the RAW file changes on disk after ingestion: the checksum no longer matches
    files[1].write_bytes(b"corrupted by a later copy")
    (rep,) = run_reports(pipe.sd)
    assert not rep.complete
    want = manifest.files[1].adler32
    got = f"{zlib.adler32(b'corrupted by a later copy') & 0xFFFFFFFF:08x}"
    assert rep.mismatched == [("run5_0001.raw", want, got)]
    assert f"checksum differs for run5_0001.raw: manifest {want}, ingested {got}" in format_status(
        status(pipe.sd)
    )


def test_manifest_cli_registers_and_checks(pipe):
    f = pipe.raw("run6_0000.raw")
    write_manifest(pipe.drop / "run6.manifest.json", 6, [f])
    runner = CliRunner()
    res = runner.invoke(
        kup, ["manifest", str(pipe.sd), str(pipe.drop / "run6.manifest.json"), "--check"]
    )
    assert res.exit_code == 1
    assert "registered run 6: 1 file(s)" in res.output
    assert "missing file run6_0000.raw" in res.output and "INCOMPLETE" in res.output
    pipe.ledger.submit_files([f])
    for stage in "abc":
        pipe.run(f.name, stage)
    res = runner.invoke(kup, ["manifest", str(pipe.sd), "--run", "6", "--check"])
    assert res.exit_code == 0, res.output
    assert "complete" in res.output and "INCOMPLETE" not in res.output
