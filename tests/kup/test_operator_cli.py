"""Operators' tools: `jaas kup retry` (bulk replay), `reset` (audited, exact chain), reasons."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from jaas.cli.kup import kup
from jaas.cli.kup_text import format_status
from jaas.kup.config import KupSettings
from jaas.kup.ledger import Ledger
from jaas.kup.pipeline import status
from jaas.kup.states import Classification, JobKey, State

STAGES = """\
stages:
  - {name: a, input: op.a, output: op.b, entry: "jaas.kup.stages:copy", retries: 0}
  - {name: b, input: op.b, output: op.c, entry: "jaas.kup.stages:noop", retries: 0}
  - {name: c, input: op.c, entry: "jaas.kup.stages:copy", retries: 0}
"""
DET = Classification.DETERMINISTIC


class Pipe:
    """A pipeline state dir whose ledger the test drives by hand (no broker, no workers)."""

    def __init__(self, root: Path) -> None:
        (root / "stages.yaml").write_text(STAGES)
        self.settings = KupSettings(state_dir=root / "kup", stages=str(root / "stages.yaml"))
        self.settings.state_dir.mkdir()
        self.settings.save()
        self.sd = self.settings.state_dir
        self.ledger = Ledger(self.settings.database, self.settings.pipeline())
        self.drop = root / "drop"
        self.drop.mkdir()

    def raw(self, name: str) -> Path:
        p = self.drop / name
        p.write_bytes(name.encode() * 10)
        return p

    def run(self, file: str, stage: str, *, fail: str | None = None) -> Path | None:
        ticket = self.ledger.start(JobKey(file, stage, "1"), worker="t")
        assert ticket is not None, (file, stage)
        if fail is not None:
            self.ledger.finish(ticket, exit_code=65, reason=fail, classification=DET)
            return None
        out = None
        if stage != "b":  # b is a no-op: its "product" is its input
            out = self.settings.data / stage / file
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(b"product of " + stage.encode())
        output = str(out) if out else ticket.input_path
        self.ledger.finish(ticket, exit_code=0, output_path=output)
        return out

    def state(self, file: str, stage: str) -> State:
        job = self.ledger.job(JobKey(file, stage, "1"))
        assert job is not None
        return job.state


@pytest.fixture
def pipe(tmp_path):
    p = Pipe(tmp_path)
    yield p
    p.ledger.close()


def invoke(*args: str) -> tuple[int, str]:
    res = CliRunner().invoke(kup, list(args))
    return res.exit_code, res.output


def test_status_shows_the_last_failure_reason_per_file(pipe):
    f = pipe.raw("run3_0001.raw")
    pipe.ledger.submit_files([f])
    pipe.run(f.name, "a", fail="first: bad magic")
    pipe.ledger.retry(file=f.name, who="t")
    pipe.run(f.name, "a", fail="second: CRC mismatch at byte 812")
    text = format_status(status(pipe.sd))
    (line,) = [ln for ln in text.splitlines() if f.name in ln]
    assert "dead" in line and "second: CRC mismatch at byte 812" in line
    assert "first" not in line


def test_retry_replays_by_state_stage_and_run_and_audits_who_and_why(pipe):
    files = [pipe.raw(n) for n in ("run3_0001.raw", "run3_0002.raw", "run4_0001.raw")]
    pipe.ledger.submit_files(files)
    for f in files:
        pipe.run(f.name, "a", fail="bad header")
    code, out = invoke("retry", str(pipe.sd), "--run", "3", "--state", "dead", "--why", "fixed")
    assert code == 0, out
    assert "re-queued 2 job(s)" in out
    assert pipe.state("run3_0001.raw", "a") is State.QUEUED
    assert pipe.state("run3_0002.raw", "a") is State.QUEUED
    assert pipe.state("run4_0001.raw", "a") is State.DEAD  # other run untouched
    audit = pipe.ledger.audit_log("run3_0001.raw")
    assert [(a["action"], a["from_state"], a["to_state"], a["note"]) for a in audit] == [
        ("retry", "dead", "queued", "fixed")
    ]
    assert "@" in audit[0]["who"] and audit[0]["at"] is not None

    code, out = invoke("retry", str(pipe.sd), "--stage", "b")
    assert (code, "re-queued 0 job(s) (nothing matched)" in out) == (0, True)
    res = CliRunner().invoke(kup, ["retry", str(pipe.sd), "--stage", "nope"])
    assert res.exit_code != 0 and "no stage 'nope' (stages: a, b, c)" in str(res.exception)
    code, out = invoke("retry", str(pipe.sd), "--file", "run4_0001.raw")
    assert "re-queued 1 job(s)" in out


def test_reset_refuses_without_yes_and_shows_what_it_would_do(pipe):
    f = pipe.raw("run3_0001.raw")
    pipe.ledger.submit_files([f])
    a_out = pipe.run(f.name, "a")
    pipe.run(f.name, "b")
    c_out = pipe.run(f.name, "c")
    code, out = invoke("reset", str(pipe.sd), f.name, "--stage", "b")
    assert code == 1
    assert "nothing changed" in out
    assert f"delete product {c_out}" in out
    assert f"keep {a_out} (input of stage 'b' or before: stays valid)" in out
    assert f"delete product {a_out}" not in out
    assert pipe.state(f.name, "c") is State.DONE and c_out.exists()
    assert pipe.ledger.audit_log() == []


def test_reset_yes_resets_exactly_the_chain_deletes_owned_products_and_audits(pipe):
    f, g = pipe.raw("run3_0001.raw"), pipe.raw("run3_0002.raw")
    pipe.ledger.submit_files([f, g])
    outs = {}
    for file in (f.name, g.name):
        for stage in ("a", "b", "c"):
            outs[file, stage] = pipe.run(file, stage)
    code, out = invoke("reset", str(pipe.sd), f.name, "--stage", "a", "--yes")
    assert code != 0 and "--why is required" in out
    code, out = invoke(
        "reset", str(pipe.sd), f.name, "--stage", "a", "--yes", "--why", "new calibration"
    )
    assert code == 0, out
    assert "reset 3 job(s)" in out
    assert not outs[f.name, "a"].exists() and not outs[f.name, "c"].exists()
    assert f.exists()  # the RAW input is not the pipeline's: kept
    assert outs[g.name, "a"].exists() and outs[g.name, "c"].exists()  # other file untouched
    assert [pipe.state(f.name, s) for s in "abc"] == [State.QUEUED, State.PENDING, State.PENDING]
    assert [pipe.state(g.name, s) for s in "abc"] == [State.DONE] * 3
    audit = pipe.ledger.audit_log(f.name)
    assert [(a["stage"], a["action"], a["note"]) for a in audit] == [
        ("a", "reset", "new calibration"),
        ("b", "reset", "new calibration"),
        ("c", "reset", "new calibration"),
    ]
    assert pipe.ledger.audit_log(g.name) == []


def test_reset_of_an_unknown_file_names_it(pipe):
    res = CliRunner().invoke(kup, ["reset", str(pipe.sd), "nope.raw", "--stage", "a"])
    assert res.exit_code != 0
    assert "file 'nope.raw': no job at stage 'a'" in str(res.exception)
