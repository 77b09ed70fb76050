"""`jaas kup up` refuses bad settings before starting any process and cleans up on failure."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from jaas.cli.kup import kup
from jaas.errors import ConfigError, DatabaseError, JaasError, PipelineError
from jaas.kup import pipeline
from jaas.kup.config import KupSettings
from jaas.kup.pipeline import pid_alive, up


def no_process_started(state_dir: Path) -> bool:
    path = state_dir / "state.json"
    if not path.is_file():
        return True
    state = json.loads(path.read_text(encoding="utf-8"))
    pids = [state.get(r) for r in ("broker", "relay", "monitor")]
    pids += list(state.get("workers", {}).values())
    return not any(pid_alive(p) for p in pids)


def write(path: Path, data: bytes) -> str:
    path.write_bytes(data)
    return str(path)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"db_url": "postgresql:/x"}, DatabaseError, "malformed database URL 'postgresql:/x'"),
        (
            {"db_url": "postgresql+psycopg://u:secret@127.0.0.1:1/x"},
            DatabaseError,
            r"u:\*\*\*@127.0.0.1:1/x: .*(refused|failed)",
        ),
        ({"executor": "nope"}, ConfigError, "unknown executor 'nope'; available: .*local"),
    ],
)
def test_bad_settings_are_refused_before_any_process(tmp_path, kwargs, error, match):
    sd = tmp_path / "kup"
    with pytest.raises(error, match=match) as info:
        up(KupSettings(state_dir=sd, **kwargs), monitor_interval=None)
    assert "secret" not in str(info.value)
    assert no_process_started(sd)


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (
            b"stages:\n  - name: a\n    input: x\n    entry: nosuch.mod:fn\n",
            "stage 'a': entry point 'nosuch.mod:fn': cannot import 'nosuch.mod'",
        ),
        (b"stages:\n  - name: a\n    input: x\n    entry: jaas.kup.stages:nope\n", "no function"),
        (b"stages: \xff\xfe\n", "not UTF-8"),
        (b"a: &x [*x]\n", "recursive alias"),
    ],
)
def test_bad_stages_are_refused_before_any_process(tmp_path, content, match):
    sd = tmp_path / "kup"
    stages = write(tmp_path / "stages.yaml", content)
    with pytest.raises(ConfigError, match=match):
        up(KupSettings(state_dir=sd, stages=stages), monitor_interval=None)
    assert no_process_started(sd)


def test_uncreatable_state_dir(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(PipelineError, match="cannot create it"):
        up(KupSettings(state_dir=blocker / "kup"), monitor_interval=None)


def test_cli_refuses_with_one_line(tmp_path):
    runner = CliRunner()
    res = runner.invoke(kup, ["up", str(tmp_path / "k"), "--slots", "0"])
    assert res.exit_code != 0 and "0 is not in the range x>=1" in res.output
    res = runner.invoke(kup, ["up", str(tmp_path / "k"), "--executor", "nope"])
    assert res.exit_code != 0 and isinstance(res.exception, JaasError)
    assert no_process_started(tmp_path / "k")


def test_failure_after_the_broker_started_stops_it(tmp_path, monkeypatch):
    sd = tmp_path / "kup"
    seen: list[int] = []

    def broken(*_a, **_k):
        seen.append(json.loads((sd / "state.json").read_text(encoding="utf-8"))["broker"])
        assert pid_alive(seen[0])
        raise PipelineError("cannot create topics")

    monkeypatch.setattr(pipeline, "ensure_topics", broken)
    before = set(pipeline._CHILDREN)  # other tests' pipelines may still be tracked
    with pytest.raises(PipelineError, match="cannot create topics"):
        up(KupSettings(state_dir=sd), monitor_interval=None)
    state = json.loads((sd / "state.json").read_text(encoding="utf-8"))
    assert state["broker"] is None and state.get("relay") is None
    assert no_process_started(sd) and seen and not pid_alive(seen[0])
    assert not set(pipeline._CHILDREN) - before  # nothing of this `up` left to reap
