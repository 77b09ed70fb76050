"""Slurm executor: pure parts (script, sbatch line, state mapping) and a real single-node Slurm."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from jaas.errors import PipelineError
from jaas.kup.executors import ExecutorStatus, JobSpec, JobStatus, get_executor
from jaas.kup.executors.slurm import (
    SlurmExecutor,
    batch_script,
    map_slurm_state,
    parse_exit_code,
    parse_slurm_time,
    sbatch_argv,
)

# ---- pure parts --------------------------------------------------------------------------


def test_batch_script_quotes_every_argument_and_runs_them_verbatim(tmp_path):
    nasty = ["it's", "$(touch pwned)", "a b", "`id`", "semi;colon", "new\nline", "*"]
    spec = JobSpec(
        "t",
        [sys.executable, "-c", "import sys; print(sys.argv[1:])", *nasty],
        tmp_path / "x.log",
        env={"JAAS_X": "v w'z"},
    )
    script = tmp_path / "run.sh"
    script.write_text(batch_script(spec))
    out = subprocess.run(["sh", str(script)], capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == repr(nasty)
    assert not (tmp_path / "pwned").exists()
    env_out = subprocess.run(
        [
            "sh",
            "-c",
            f". {script} >/dev/null; echo",
        ],
        capture_output=True,
        text=True,
    )
    assert env_out.returncode == 0
    assert "export JAAS_X='v w'\"'\"'z'" in script.read_text()


def test_batch_script_refuses_a_bad_environment_name(tmp_path):
    spec = JobSpec("t", ["true"], tmp_path / "x.log", env={"A;rm": "1"})
    with pytest.raises(PipelineError, match="'A;rm' is not valid"):
        batch_script(spec)


def test_sbatch_argv_carries_resources_log_name_and_time(tmp_path):
    spec = JobSpec(
        "reco:run1 0001.raw#2",
        ["true"],
        tmp_path / "a.log",
        timeout=90,
        cpus=3,
        memory_mb=2048,
        cwd=tmp_path,
    )
    argv = sbatch_argv(spec, tmp_path / "a.sbatch", partition="juno", extra=["--qos=short"])
    assert argv[:2] == ["sbatch", "--parsable"]
    assert "--cpus-per-task=3" in argv
    assert "--mem=2048M" in argv
    assert "--time=3" in argv  # ceil(90 s) = 2 min, plus one as a backstop
    assert f"--output={tmp_path / 'a.log'}" in argv
    assert "--job-name=reco:run1_0001.raw#2" in argv
    assert f"--chdir={tmp_path}" in argv
    assert argv[-2:] == ["--qos=short", str(tmp_path / "a.sbatch")]
    assert "--partition=juno" in argv


@pytest.mark.parametrize(
    ("state", "code", "expected"),
    [
        ("COMPLETED", 0, (ExecutorStatus.SUCCEEDED, 0)),
        ("FAILED", 3, (ExecutorStatus.FAILED, 3)),
        ("NODE_FAIL", None, (ExecutorStatus.FAILED, None)),
        ("OUT_OF_MEMORY", 0, (ExecutorStatus.FAILED, None)),
        ("TIMEOUT", -15, (ExecutorStatus.TIMED_OUT, -15)),
        ("CANCELLED by 0", None, (ExecutorStatus.CANCELLED, None)),
        ("PENDING", None, (ExecutorStatus.RUNNING, None)),
        ("RUNNING", None, (ExecutorStatus.RUNNING, None)),
        ("COMPLETING", None, (ExecutorStatus.RUNNING, None)),
    ],
)
def test_slurm_states_map_to_executor_statuses(state, code, expected):
    st = map_slurm_state(state, code)
    assert (st.status, st.exit_code) == expected


def test_exit_codes_and_durations_parse():
    assert parse_exit_code("3:0") == 3
    assert parse_exit_code("0:9") == -9
    assert parse_exit_code("") is None
    assert parse_slurm_time("1-02:03:04") == 86400 + 2 * 3600 + 3 * 60 + 4
    assert parse_slurm_time("5:07") == 307
    assert parse_slurm_time("INVALID") == 0


def test_missing_sbatch_is_a_pipeline_error(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    ex = SlurmExecutor()
    with pytest.raises(PipelineError, match="sbatch: Slurm command not found"):
        ex.submit(JobSpec("t", ["true"], tmp_path / "t.log"))


def test_registered_as_slurm():
    assert isinstance(get_executor("slurm", slots=3), SlurmExecutor)
    assert get_executor("slurm", slots=3).free_slots() == 3


# ---- against a real Slurm ----------------------------------------------------------------


def wait(ex, handle, limit=60.0) -> JobStatus:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        st = ex.poll(handle)
        if st.finished:
            return st
        time.sleep(0.2)
    raise AssertionError(f"Slurm job {handle.id} still {st} after {limit} s")


def py(code: str) -> list[str]:
    return [sys.executable, "-c", textwrap.dedent(code)]


@pytest.fixture
def ex(slurm_cluster):
    executor = SlurmExecutor(slots=4, slurm_conf=slurm_cluster.conf, poll_interval=0.2)
    yield executor
    executor.shutdown()


def test_job_succeeds_and_its_log_is_captured(ex, tmp_path):
    log = tmp_path / "logs" / "ok.log"
    spec = JobSpec(
        "ok",
        py("import os; print('hello from', os.environ['JAAS_TAG'])"),
        log,
        timeout=60,
        env={"JAAS_TAG": "slurm test"},
    )
    h = ex.submit(spec)
    assert h.id.isdigit()
    assert ex.free_slots() == 3
    st = wait(ex, h)
    assert (st.status, st.exit_code) == (ExecutorStatus.SUCCEEDED, 0)
    assert "hello from slurm test" in log.read_text()
    assert ex.free_slots() == 4


def test_failing_job_propagates_its_exit_code(ex, tmp_path):
    log = tmp_path / "bad.log"
    h = ex.submit(JobSpec("bad", py("import sys; print('oops'); sys.exit(7)"), log))
    st = wait(ex, h)
    assert (st.status, st.exit_code) == (ExecutorStatus.FAILED, 7)
    assert "oops" in log.read_text()


def test_timeout_kills_the_job(ex, slurm_cluster, tmp_path):
    h = ex.submit(JobSpec("slow", ["sleep", "60"], tmp_path / "slow.log", timeout=1.5))
    t0 = time.monotonic()
    st = wait(ex, h)
    assert st.status is ExecutorStatus.TIMED_OUT
    assert time.monotonic() - t0 < 20
    assert _wait_slurm_state(slurm_cluster, h.id).startswith("CANCELLED")


def test_cancel_stops_the_job(ex, slurm_cluster, tmp_path):
    h = ex.submit(JobSpec("cancel-me", ["sleep", "60"], tmp_path / "c.log"))
    ex.cancel(h)
    assert ex.poll(h).status is ExecutorStatus.CANCELLED
    assert _wait_slurm_state(slurm_cluster, h.id).startswith("CANCELLED")


def test_resources_reach_slurm(ex, slurm_cluster, tmp_path):
    spec = JobSpec("res", ["sleep", "30"], tmp_path / "r.log", timeout=300, cpus=2, memory_mb=300)
    h = ex.submit(spec)
    try:
        out = subprocess.run(
            ["scontrol", "-o", "show", "job", h.id],
            env=slurm_cluster.env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        fields = dict(x.split("=", 1) for x in out.split() if "=" in x)
        assert fields["NumCPUs"] == "2"
        assert fields["MinMemoryNode"] == "300M"
        assert fields["TimeLimit"] == "00:06:00"
        assert fields["JobName"] == "res"
        assert fields["StdOut"] == str(tmp_path / "r.log")
    finally:
        ex.cancel(h)


@pytest.mark.slow
def test_exit_code_is_found_after_slurm_forgot_the_job(slurm_cluster, tmp_path):
    ex = SlurmExecutor(slurm_conf=slurm_cluster.conf, poll_interval=0.2)
    h = ex.submit(JobSpec("old", py("import sys; sys.exit(4)"), tmp_path / "o.log"))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and _slurm_state(slurm_cluster, h.id) != "":
        time.sleep(1)  # MinJobAge=10 in the test cluster: wait until squeue forgets it
    assert _slurm_state(slurm_cluster, h.id) == ""
    st = ex.poll(h)  # first poll after the job left squeue: answered by `sacct -c`
    assert (st.status, st.exit_code) == (ExecutorStatus.FAILED, 4)


def _slurm_state(cluster, job_id: str) -> str:
    out = subprocess.run(
        ["squeue", "-h", "--states=all", "-o", "%T", f"--jobs={job_id}"],
        env=cluster.env,
        capture_output=True,
        text=True,
    )
    return out.stdout.strip()


def _wait_slurm_state(cluster, job_id: str, limit: float = 15.0) -> str:
    """Slurm's state of the job once it left PENDING/RUNNING/COMPLETING."""
    deadline = time.monotonic() + limit
    state = _slurm_state(cluster, job_id)
    while time.monotonic() < deadline and state in {"PENDING", "RUNNING", "COMPLETING"}:
        time.sleep(0.2)
        state = _slurm_state(cluster, job_id)
    return state


def test_env_var_slurm_conf_is_enough(slurm_env, tmp_path):
    assert os.environ["SLURM_CONF"] == str(slurm_env.conf)
    ex = SlurmExecutor()
    h = ex.submit(JobSpec("env", ["true"], tmp_path / "e.log"))
    assert wait(ex, h).status is ExecutorStatus.SUCCEEDED
    assert Path(str(tmp_path / "e.log") + ".sbatch").is_file()


# ---- a pipeline on Slurm -------------------------------------------------------------------

SLURM_STAGES = """\
stages:
  - name: a
    input: slurm.a
    output: slurm.b
    entry: jaas.kup.stages:copy
    timeout: 60
    resources: {cpus: 1, memory: 200MB}
  - name: b
    input: slurm.b
    command: ["{python}", "-c", "import sys; print('checked', sys.argv[1])", "{input}"]
    timeout: 60
    resources: {cpus: 1, memory: 200MB}
"""


@pytest.mark.slow
def test_pipeline_runs_every_file_to_done_on_slurm(slurm_env, tmp_path):
    from jaas.kup.config import KupSettings
    from jaas.kup.ledger import Ledger
    from jaas.kup.pipeline import down, ingest, status, up
    from jaas.kup.states import JobKey

    stages = tmp_path / "stages.yaml"
    stages.write_text(SLURM_STAGES)
    files = []
    for i in range(3):
        p = tmp_path / "drop" / f"run7_{i:04d}.raw"
        p.parent.mkdir(exist_ok=True)
        p.write_bytes(os.urandom(128))
        files.append(p)
    sd = tmp_path / "kup"
    settings = KupSettings(
        state_dir=sd, stages=str(stages), executor="slurm", slots=4, session_timeout_ms=3000
    )
    try:
        up(settings)
        assert len(ingest(sd, files)) == 3
        deadline = time.monotonic() + 120
        st = status(sd)
        while time.monotonic() < deadline and st.files_done("b") < 3:
            time.sleep(0.5)
            st = status(sd)
        assert st.files_done("a") == st.files_done("b") == 3, (
            st.counts,
            st.failures,
            slurm_env.logs(),
        )
    finally:
        down(sd, timeout=5)
    ledger = Ledger(settings.database, settings.pipeline())
    try:
        for f in files:
            (attempt,) = ledger.attempts_of(JobKey(f.name, "b", "1"))
            log = Path(attempt["log_path"])
            assert f"checked {settings.data / 'a' / f.name}" in log.read_text()
            assert Path(str(log) + ".sbatch").is_file()  # it really went through sbatch
            assert (settings.data / "a" / f.name).read_bytes() == f.read_bytes()
    finally:
        ledger.close()


def test_unreachable_controller_is_an_error_not_a_failed_job(slurm_cluster, tmp_path):
    ex = SlurmExecutor(slurm_conf=slurm_cluster.conf, poll_interval=0)
    h = ex.submit(JobSpec("x", ["sleep", "30"], tmp_path / "x.log"))
    try:
        broken = tmp_path / "broken.conf"
        text = slurm_cluster.conf.read_text()
        port = next(ln for ln in text.splitlines() if ln.startswith("SlurmctldPort="))
        broken.write_text(
            text.replace(port, "SlurmctldPort=9") + "MessageTimeout=1\nTCPTimeout=1\n"
        )
        ex.env["SLURM_CONF"] = str(broken)
        with pytest.raises(PipelineError, match=r"squeue .*(failed|no answer)"):
            ex.poll(h)
        ex.env["SLURM_CONF"] = str(slurm_cluster.conf)
        assert ex.poll(h).status is ExecutorStatus.RUNNING  # nothing was decided meanwhile
    finally:
        ex.env["SLURM_CONF"] = str(slurm_cluster.conf)
        ex.cancel(h)
