"""Stage runner: outcomes written as JSON, failures classified by exit code."""

from __future__ import annotations

import json

from jaas.kup.stages import EXIT_DETERMINISTIC, EXIT_TRANSIENT, StageContext, run_entry


def ctx(tmp_path, name="run1_0001.raw", data=b"not a RAW file"):
    src = tmp_path / name
    src.write_bytes(data)
    return StageContext(name, "s", src, tmp_path / "out")


def test_copy_writes_output_and_result(tmp_path):
    c = ctx(tmp_path, data=b"abc")
    result = tmp_path / "r.json"
    assert run_entry("jaas.kup.stages:copy", c, result) == 0
    out = json.loads(result.read_text())
    assert out["ok"] is True
    assert (tmp_path / "out" / "run1_0001.raw").read_bytes() == b"abc"
    assert out["output"] == str(tmp_path / "out" / "run1_0001.raw")


def test_corrupt_raw_at_ingest_is_deterministic(tmp_path, capsys):
    result = tmp_path / "r.json"
    assert run_entry("jaas.kup.stages:ingest", ctx(tmp_path), result) == EXIT_DETERMINISTIC
    out = json.loads(result.read_text())
    assert out["classification"] == "deterministic"
    assert "run1_0001.raw" in out["reason"]  # the reason names the file


def test_unknown_entry_is_deterministic_and_other_errors_transient(tmp_path, capsys):
    result = tmp_path / "r.json"
    assert run_entry("jaas.kup.nosuch:fn", ctx(tmp_path), result) == EXIT_DETERMINISTIC
    assert "cannot import 'jaas.kup.nosuch'" in json.loads(result.read_text())["reason"]
    c = StageContext("f", "s", tmp_path / "missing.raw", tmp_path / "out")
    assert run_entry("jaas.kup.stages:copy", c, result) == EXIT_TRANSIENT
    assert json.loads(result.read_text())["classification"] == "transient"
