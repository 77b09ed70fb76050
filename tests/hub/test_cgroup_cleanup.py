"""The hub leaves no cgroup behind: a user's goes when the server stops (also when it
ended by itself), the hub's ``jaas-hub-PORT`` when the last one goes or ``jaas hub run``
sees the hub exit. On the real cgroup file system; the cgroup layer runs without a hub."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from jaas.errors import ConfigError
from jaas.notebook.cgroups import Cgroups, cgroups

MEM = 200 * 2**20


def _need_cgroups() -> None:
    try:
        probe = cgroups(f"jaas-hub-probe{uuid.uuid4().hex[:6]}")
    except ConfigError as e:
        why = f"this machine cannot make memory/cpu cgroups: {e}"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{why} (required under CI=true)")
        pytest.skip(why)
    for d in probe.parents():
        d.rmdir()


@pytest.fixture
def name() -> Iterator[str]:
    """A fresh hub cgroup name; whatever the test left of it is ended and removed."""
    _need_cgroups()
    name = f"jaas-hub-t{uuid.uuid4().hex[:8]}"
    yield name
    groups = cgroups(name, create=False)
    for parent in groups.parents():
        if parent.is_dir():
            for d in [p for p in parent.iterdir() if p.is_dir()]:
                groups.remove(d.name)
            parent.rmdir()


def _sleeper(dirs: list[Path]) -> subprocess.Popen[bytes]:
    def enter() -> None:
        for d in dirs:
            (d / "cgroup.procs").write_text(str(os.getpid()))

    return subprocess.Popen(["sleep", "60"], preexec_fn=enter)


def test_a_server_that_ended_by_itself_leaves_no_cgroup(name: str, tmp_path: Path) -> None:
    pytest.importorskip("jupyterhub")  # the hub extra
    from jaas.notebook.spawner import CgroupSpawner

    spawner = CgroupSpawner(user=SimpleNamespace(name="alice"), cgroup_name=name,
                            mem_limit=MEM, cpu_limit=0.5, home_dir=str(tmp_path))  # fmt: skip
    server = subprocess.Popen(["sleep", "60"], preexec_fn=spawner.make_preexec_fn("alice"))
    groups = cgroups(name, create=False)
    dirs = groups.user_dirs("alice")
    assert all(server.pid in Cgroups.pids(d) for d in dirs)  # the server ran in its cgroup
    server.kill()  # it ends on its own: JupyterHub then calls only the post-stop hook
    server.wait()
    spawner.run_post_stop_hook()
    assert [d for d in dirs if d.exists()] == []
    assert [p for p in groups.parents() if p.exists()] == []  # the hub's: no user left


def test_pruning_keeps_a_cgroup_that_still_holds_a_process(name: str) -> None:
    groups = cgroups(name)
    groups.create("alice", MEM, None)
    bob = _sleeper(groups.create("bob", MEM, None))
    try:
        removed = groups.prune()
        assert set(removed) == set(groups.user_dirs("alice"))
        assert all(d.is_dir() for d in groups.user_dirs("bob"))  # bob's server runs on
        assert bob.poll() is None  # pruning ends nothing
    finally:
        bob.kill()
        bob.wait()
    deadline = time.monotonic() + 10
    while any(Cgroups.pids(d) for d in groups.user_dirs("bob")) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert set(groups.prune()) == {*groups.user_dirs("bob"), *groups.parents()}
    assert [p for p in groups.parents() if p.exists()] == []


KILLED_HUB = """\
import os, signal
from jaas.notebook.cgroups import cgroups
cgroups({name!r}).create("alice", {mem}, 0.5)  # as the hub does at a spawn
os.kill(os.getpid(), signal.SIGKILL)  # killed before it could clean up
"""

STOPPED_HUB = """\
import signal, sys, time
from pathlib import Path
from jaas.notebook.cgroups import cgroups
cgroups({name!r})
def stop(sig, frame):
    Path({out!r}).write_text(signal.Signals(sig).name)
    sys.exit(0)
signal.signal(signal.SIGTERM, stop)
Path({out!r} + ".ready").write_text("")
time.sleep(60)
"""


def _hub(code: str) -> list[str]:
    return [sys.executable, "-c", textwrap.dedent(code)]


def test_jaas_hub_run_removes_the_cgroups_a_killed_hub_left(name: str, tmp_path: Path) -> None:
    from jaas.cli.hub import supervise

    assert supervise(_hub(KILLED_HUB.format(name=name, mem=MEM)), tmp_path, name) == -9
    groups = cgroups(name, create=False)
    assert [p for p in groups.parents() if p.exists()] == []


def test_jaas_hub_run_passes_sigterm_on_and_removes_the_hubs_cgroup(
    name: str, tmp_path: Path
) -> None:
    from jaas.cli.hub import supervise

    out = tmp_path / "signal"

    def terminate_us() -> None:  # as systemd or an operator would: only this process
        deadline = time.monotonic() + 30
        while not Path(f"{out}.ready").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=terminate_us, daemon=True).start()
    assert supervise(_hub(STOPPED_HUB.format(name=name, out=str(out))), tmp_path, name) == 0
    assert out.read_text() == "SIGTERM"  # the hub got it and could stop its servers
    assert [p for p in cgroups(name, create=False).parents() if p.exists()] == []
