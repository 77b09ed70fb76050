"""Local executor: exit codes, logs per attempt, slots, timeouts and cancel kill the group."""

from __future__ import annotations

import sys
import time

import pytest

from jaas.errors import ConfigError, PipelineError
from jaas.kup.executors import ExecutorStatus, JobSpec, available_executors, get_executor
from jaas.kup.pipeline import pid_alive

PY = sys.executable


def wait(ex, handle, limit=30.0):
    """Poll until the attempt ends (ex.wait returns early when one does)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        st = ex.poll(handle)
        if st.finished:
            return st
        ex.wait(0.1)
    raise AssertionError("attempt did not finish")


def test_registry():
    assert "local" in available_executors()
    with pytest.raises(ConfigError, match=r"unknown executor 'slrum'.*local"):
        get_executor("slrum")


def test_exit_codes_and_log_capture(tmp_path):
    ex = get_executor("local", slots=2)
    ok = ex.submit(JobSpec("ok", [PY, "-c", "print('hello from stage')"], tmp_path / "ok.log"))
    bad = ex.submit(
        JobSpec(
            "bad",
            [PY, "-c", "import sys; sys.stderr.write('oops'); sys.exit(3)"],
            tmp_path / "bad.log",
        )
    )
    assert wait(ex, ok).status is ExecutorStatus.SUCCEEDED
    st = wait(ex, bad)
    assert (st.status, st.exit_code) == (ExecutorStatus.FAILED, 3)
    assert "hello from stage" in (tmp_path / "ok.log").read_text()
    assert "oops" in (tmp_path / "bad.log").read_text()


def test_slots_are_respected(tmp_path):
    ex = get_executor("local", slots=2)
    h = ex.submit(
        JobSpec("two", [PY, "-c", "import time; time.sleep(5)"], tmp_path / "a.log", cpus=2)
    )
    assert ex.free_slots() == 0
    with pytest.raises(PipelineError, match="no free slot"):
        ex.submit(JobSpec("more", ["true"], tmp_path / "b.log"))
    ex.cancel(h)
    assert ex.free_slots() == 2


def test_timeout_kills_the_whole_process_group(tmp_path):
    ex = get_executor("local", slots=1, kill_grace=0.5)
    pidfile = tmp_path / "child.pid"
    code = (
        "import subprocess, sys, time;"
        "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']);"
        f"open({str(pidfile)!r}, 'w').write(str(p.pid)); time.sleep(60)"
    )
    h = ex.submit(JobSpec("slow", [PY, "-c", code], tmp_path / "slow.log", timeout=1.0))
    st = wait(ex, h)
    assert st.status is ExecutorStatus.TIMED_OUT
    assert st.elapsed >= 1.0
    child = int(pidfile.read_text())
    deadline = time.monotonic() + 5
    while pid_alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not pid_alive(child)  # the grandchild is gone too (or a zombie)


def test_cancel(tmp_path):
    ex = get_executor("local", slots=1, kill_grace=0.5)
    h = ex.submit(JobSpec("c", [PY, "-c", "import time; time.sleep(60)"], tmp_path / "c.log"))
    ex.cancel(h)
    assert ex.poll(h).status is ExecutorStatus.CANCELLED
    ex.shutdown()


def test_missing_program_is_a_pipeline_error(tmp_path):
    ex = get_executor("local", slots=1)
    with pytest.raises(PipelineError, match="cannot start '/no/such/program'"):
        ex.submit(JobSpec("x", ["/no/such/program"], tmp_path / "x.log"))
