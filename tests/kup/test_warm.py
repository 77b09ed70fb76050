"""Warm stage runners: attempts forked from a pre-imported parent, each isolated as a cold one.

A crash, ``kill -9`` or timeout ends only its attempt and is reported as for a fresh
process (exit code, log); a killed parent or worker leaves running attempts to finish.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from jaas.kup.executors import ExecutorStatus, JobSpec, get_executor
from jaas.kup.executors.local import LocalExecutor
from jaas.kup.pipeline import pid_alive
from jaas.kup.warm import marker_held, warm_args
from tests.kup.test_executor_local import wait

PY = sys.executable

STAGES = """\
import os, sys, time
from pathlib import Path

def sleepy(ctx):
    Path(ctx.params["pidfile"]).write_text(str(os.getpid()))
    time.sleep(float(ctx.params.get("seconds", 60)))
    return ctx.input

def crash(ctx):
    print("about to crash", flush=True)
    os.kill(os.getpid(), 11)

def learner(ctx):
    seen = "jaas.kup.membus" in sys.modules  # not imported by the runner itself
    import jaas.kup.membus
    Path(ctx.params["out"]).write_text(json.dumps(seen))
    return ctx.input

def boom(ctx):
    raise RuntimeError("disk on fire")

def env(ctx):
    out = Path(ctx.params["out"])
    out.write_text(json.dumps({"cwd": os.getcwd(), "x": os.environ.get("WARM_TEST_X"),
                               "leak": os.environ.get("WARM_TEST_LEAK"), "ppid": os.getppid(),
                               "pgid": os.getpgid(0), "pid": os.getpid(), "sid": os.getsid(0)}))
    return ctx.input

import json
"""


@pytest.fixture
def mods(tmp_path, monkeypatch):
    """A module of test stages, importable by the warm parent (started after this)."""
    d = tmp_path / "mods"
    d.mkdir()
    (d / "warmstages.py").write_text(textwrap.dedent(STAGES))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(d), *sys.path]))
    return d


@pytest.fixture
def ex(mods):
    e = LocalExecutor(slots=2, kill_grace=0.5, preload=("warmstages",))
    yield e
    e.shutdown()
    assert e.warm is not None and e.warm._proc is None  # the parent was stopped


def spec(tmp_path: Path, entry: str, tag: str, params: dict | None = None, **kw) -> JobSpec:
    inp = tmp_path / "in.raw"
    inp.write_bytes(b"x")
    argv = [PY, "-m", "jaas.kup.stages", entry, "--file", "in.raw", "--stage", "s", "--input",
            str(inp), "--output-dir", str(tmp_path), "--params", json.dumps(params or {}),
            "--result", str(tmp_path / f"{tag}.result.json")]  # fmt: skip
    kw.setdefault("marker", tmp_path / f"{tag}.running")
    return JobSpec(tag, argv, tmp_path / f"{tag}.log", **kw)


def wait_file(path: Path, limit=30.0) -> str:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if path.is_file() and path.read_text():
            return path.read_text()
        time.sleep(0.02)
    raise AssertionError(f"{path} never written")


def parent_pid(ex: LocalExecutor) -> int:
    assert ex.warm is not None and ex.warm._proc is not None
    return ex.warm._proc.pid


def test_only_runner_attempts_of_this_python_are_warm():
    assert warm_args([PY, "-m", "jaas.kup.stages", "a:b", "--file", "f"]) == ["a:b", "--file", "f"]
    assert warm_args([PY, "-m", "jaas.kup.worker", "x"]) is None
    assert warm_args(["/other/python", "-m", "jaas.kup.stages"]) is None
    assert warm_args([PY, "-c", "pass"]) is None


def test_attempts_are_forked_isolated_and_reported_like_fresh_processes(ex, tmp_path, monkeypatch):
    monkeypatch.setenv("WARM_TEST_LEAK", "not for attempts")  # in the parent's environment
    ok = ex.submit(spec(tmp_path, "jaas.kup.stages:noop", "ok"))
    assert wait(ex, ok).status is ExecutorStatus.SUCCEEDED
    assert json.loads((tmp_path / "ok.result.json").read_text())["ok"] is True
    assert not (tmp_path / "ok.running").exists()  # the marker goes with the attempt

    out = tmp_path / "env.json"
    monkeypatch.delenv("WARM_TEST_LEAK")
    s = spec(tmp_path, "warmstages:env", "env", {"out": str(out)}, cwd=tmp_path / "mods",
             env={"WARM_TEST_X": "42"})  # fmt: skip
    h = ex.submit(s)
    assert wait(ex, h).status is ExecutorStatus.SUCCEEDED
    seen = json.loads(out.read_text())
    assert seen["ppid"] == parent_pid(ex)  # forked by the warm parent, not a new interpreter
    assert seen["pgid"] == seen["sid"] == seen["pid"]  # its own session and process group
    assert (seen["cwd"], seen["x"], seen["leak"]) == (str(tmp_path / "mods"), "42", None)

    # bad input: the runner's own exit codes and the traceback in the attempt's log
    det = ex.submit(spec(tmp_path, "no.such.module:fn", "det"))
    tra = ex.submit(spec(tmp_path, "warmstages:boom", "tra"))
    assert (wait(ex, det).status, ex.poll(det).exit_code) == (ExecutorStatus.FAILED, 65)
    assert (wait(ex, tra).status, ex.poll(tra).exit_code) == (ExecutorStatus.FAILED, 75)
    assert "ConfigError" in (tmp_path / "det.log").read_text()
    assert "RuntimeError: disk on fire" in (tmp_path / "tra.log").read_text()
    marker = tmp_path / "not-yet" / "usage.running"  # its folder is made
    usage = ex.submit(
        JobSpec("usage", [PY, "-m", "jaas.kup.stages"], tmp_path / "usage.log", marker=marker)
    )
    assert wait(ex, usage).exit_code == 2  # argparse's exit, as in a fresh process
    assert "the following arguments are required" in (tmp_path / "usage.log").read_text()


def test_the_parent_learns_the_imports_of_its_attempts(ex, tmp_path):
    seen = []
    for i in range(2):
        out = tmp_path / f"learn{i}.json"
        h = ex.submit(spec(tmp_path, "warmstages:learner", f"l{i}", {"out": str(out)}))
        assert wait(ex, h).status is ExecutorStatus.SUCCEEDED
        ex.forget(h)
        seen.append(json.loads(out.read_text()))
    assert seen == [False, True]  # the second attempt found it imported already


def test_a_crash_or_kill_9_ends_only_that_attempt(ex, tmp_path):
    pidfile = tmp_path / "sleepy.pid"
    long = ex.submit(spec(tmp_path, "warmstages:sleepy", "long", {"pidfile": str(pidfile)}))
    crash = ex.submit(spec(tmp_path, "warmstages:crash", "crash"))
    st = wait(ex, crash)
    assert (st.status, st.exit_code) == (ExecutorStatus.FAILED, -signal.SIGSEGV)
    assert "about to crash" in (tmp_path / "crash.log").read_text()
    ex.forget(crash)

    pid = int(wait_file(pidfile))
    assert marker_held(tmp_path / "long.running")  # what the orphan reclaim looks at
    parent = parent_pid(ex)
    os.kill(pid, signal.SIGKILL)
    st = wait(ex, long)
    assert (st.status, st.exit_code) == (ExecutorStatus.FAILED, -signal.SIGKILL)
    assert not marker_held(tmp_path / "long.running")
    ex.forget(long)

    again = ex.submit(spec(tmp_path, "jaas.kup.stages:noop", "again"))  # same parent serves on
    assert wait(ex, again).status is ExecutorStatus.SUCCEEDED
    assert parent_pid(ex) == parent


def test_timeout_and_cancel_kill_the_attempt_and_its_children(ex, tmp_path):
    pidfile = tmp_path / "t.pid"
    h = ex.submit(spec(tmp_path, "warmstages:sleepy", "t", {"pidfile": str(pidfile)}, timeout=1.0))
    st = wait(ex, h)
    assert st.status is ExecutorStatus.TIMED_OUT and st.elapsed >= 1.0
    assert st.exit_code == -signal.SIGTERM
    assert not pid_alive(int(pidfile.read_text()))

    pidfile = tmp_path / "c.pid"
    h = ex.submit(spec(tmp_path, "warmstages:sleepy", "c", {"pidfile": str(pidfile)}))
    pid = int(wait_file(pidfile))
    ex.cancel(h)
    assert ex.poll(h).status is ExecutorStatus.CANCELLED
    assert not pid_alive(pid)


def test_a_lost_parent_leaves_attempts_running_and_is_replaced(ex, tmp_path):
    pidfile = tmp_path / "o.pid"
    h = ex.submit(
        spec(tmp_path, "warmstages:sleepy", "o", {"pidfile": str(pidfile), "seconds": 1.5})
    )
    pid = int(wait_file(pidfile))
    old = parent_pid(ex)
    os.kill(old, signal.SIGKILL)
    st = wait(ex, h)  # the attempt ran on; its outcome comes from its result file
    assert (st.status, st.exit_code) == (ExecutorStatus.SUCCEEDED, 0)
    assert not pid_alive(pid)
    nxt = ex.submit(spec(tmp_path, "jaas.kup.stages:noop", "next"))
    assert wait(ex, nxt).status is ExecutorStatus.SUCCEEDED
    assert parent_pid(ex) != old


WORKER = """\
import json, sys, time
from pathlib import Path
from jaas.kup.executors import JobSpec
from jaas.kup.executors.local import LocalExecutor
ex = LocalExecutor(slots=1, preload=("warmstages",))
ex.submit(JobSpec("o", json.loads(sys.argv[1]), Path(sys.argv[2]), marker=Path(sys.argv[3])))
print(ex.warm._proc.pid, flush=True)
time.sleep(60)
"""


def test_a_killed_worker_leaves_its_attempt_running_and_the_parent_exits(mods, tmp_path):
    pidfile = tmp_path / "w.pid"
    s = spec(tmp_path, "warmstages:sleepy", "w", {"pidfile": str(pidfile), "seconds": 2})
    worker = subprocess.Popen(
        [PY, "-c", WORKER, json.dumps(s.argv), str(s.log_path), str(s.marker)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert worker.stdout is not None
        parent = int(worker.stdout.readline())
        attempt = int(wait_file(pidfile))
        worker.kill()
        worker.wait()
        deadline = time.monotonic() + 10
        while pid_alive(parent) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not pid_alive(parent)  # saw its pipe close
        assert marker_held(tmp_path / "w.running")  # the orphan still runs, as a cold one would
        while pid_alive(attempt) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert json.loads((tmp_path / "w.result.json").read_text())["ok"] is True
        assert not marker_held(tmp_path / "w.running")
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
        assert worker.stdout is not None
        worker.stdout.close()


def test_warm_can_be_turned_off(tmp_path):
    ex = get_executor("local", slots=1, warm=False)
    out = tmp_path / "o.json"
    inp = tmp_path / "in.raw"
    inp.write_bytes(b"x")
    argv = [PY, "-m", "jaas.kup.stages", "jaas.kup.stages:noop", "--file", "f", "--stage", "s",
            "--input", str(inp), "--output-dir", str(tmp_path), "--result", str(out)]  # fmt: skip
    h = ex.submit(JobSpec("cold", argv, tmp_path / "cold.log"))
    assert ex.warm is None
    assert wait(ex, h).status is ExecutorStatus.SUCCEEDED
    assert json.loads(out.read_text())["ok"] is True
    ex.shutdown()


def test_worker_entry_point_runs_without_warnings(tmp_path):
    # ``-m`` of a module that ``jaas.kup`` imported already warned "found in sys.modules"
    res = subprocess.run(
        [PY, "-W", "error", "-m", "jaas.kup.worker", str(tmp_path / "nowhere"), "s"],
        capture_output=True,
        text=True,
    )
    assert res.returncode == 2
    assert "Warning" not in res.stderr and "Traceback" not in res.stderr
    assert res.stderr.strip().splitlines() == [
        f"error: {tmp_path / 'nowhere' / 'kup.json'}: no pipeline here; "
        f"start one with `jaas kup up {tmp_path / 'nowhere'}`"
    ]


def test_kup_package_names_load_lazily():
    import jaas.kup as kup

    assert sorted(kup.__all__) == sorted(kup._WHERE)
    assert kup.JobKey.__module__ == "jaas.kup.states"
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = kup.nope


@pytest.mark.parametrize(("flag", "warm"), [([], True), (["--cold"], False)])
def test_up_turns_warm_workers_on_by_default_and_off_with_cold(tmp_path, monkeypatch, flag, warm):
    from click.testing import CliRunner

    import jaas.cli.kup as cli_kup
    from jaas.cli.main import cli

    seen = []
    fake = {"bootstrap": "x", "relay": 1, "workers": {}}
    monkeypatch.setattr(cli_kup, "up", lambda settings: seen.append(settings) or fake)
    res = CliRunner().invoke(cli, ["kup", "up", str(tmp_path / "kup"), *flag])
    assert res.exit_code == 0, res.output
    assert [s.warm for s in seen] == [warm]


def test_a_warm_orphan_is_seen_running_by_its_marker_then_lost_uncharged(tmp_path):
    import fcntl
    import socket

    from jaas.kup.ledger import LOST, Ledger
    from jaas.kup.states import JobKey, State
    from tests.kup.test_reclaim import CONFIG, worker

    raw = tmp_path / "run1_0001.raw"
    raw.write_bytes(b"x")
    ledger = Ledger(f"sqlite:///{tmp_path / 'kup.db'}", CONFIG)
    try:
        key = JobKey(raw.name, "a", "1")
        ledger.submit_files([raw])
        gone = subprocess.Popen([PY, "-c", "pass"])
        gone.wait()  # a worker of this host that died
        ticket = ledger.start(key, worker=f"{socket.gethostname()}:{gone.pid}:a")
        w = worker(ledger, tmp_path)
        marker = w.marker_path(ticket)
        marker.parent.mkdir(parents=True)
        fd = os.open(marker, os.O_WRONLY | os.O_CREAT)
        fcntl.flock(fd, fcntl.LOCK_EX)  # what the forked attempt holds while it runs
        try:
            assert w.reclaim() == 0
            assert ledger.job(key).state is State.RUNNING
        finally:
            os.close(fd)
        assert w.reclaim() == 1  # ended without a result: lost, retried uncharged
        assert ledger.job(key).state is State.RETRYING
        (row,) = ledger.attempts_of(key)
        assert row["classification"] == LOST
    finally:
        ledger.close()
