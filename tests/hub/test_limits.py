"""Per-user limits the kernel enforces: a real JupyterHub puts each user's server in its own
cgroup; a kernel that allocates past the memory limit is OOM-killed in that cgroup while
the hub and the other user go on, and the CPU quota throttles a busy loop."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from jaas.errors import ConfigError
from jaas.notebook.cgroups import CGROUP_ROOT, Cgroups, cgroups
from tests.hub.conftest import PASSWORD, Hub, need

jupyterhub = pytest.importorskip("jupyterhub")  # the hub extra

MEM = 400 * 2**20
CPU = 0.5


def _can_make_cgroups() -> str | None:
    try:
        c = cgroups("jaas-hub-probe")
    except ConfigError as e:
        return str(e)
    for d in c.parents():
        d.rmdir()
    return None


# ---- what the machine allows: refusals name the reason --------------------------------


def test_no_cgroup_file_system_is_refused_with_the_reason(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"no cgroup file system \(v1 or v2\) at "):
        cgroups("jaas-hub-1", root=tmp_path, proc_cgroup="0::/\n")


def test_v2_without_the_memory_controller_is_refused(tmp_path: Path) -> None:
    (tmp_path / "cgroup.controllers").write_text("cpu io pids\n")
    with pytest.raises(ConfigError, match="lacks the memory controller"):
        cgroups("jaas-hub-1", root=tmp_path, proc_cgroup="0::/\n")


def test_limits_that_cannot_be_enforced_stop_the_hub_config(tmp_path, monkeypatch) -> None:
    from jupyterhub.app import JupyterHub

    from jaas.notebook import cgroups as mod
    from tests.hub.conftest import CONFIG, hub_env

    monkeypatch.setattr(mod, "CGROUP_ROOT", tmp_path / "nothing")  # a machine without
    for key, value in hub_env(tmp_path / "hub", JAAS_HUB_MEM_LIMIT="1G").items():
        if key.startswith("JAAS_"):
            monkeypatch.setenv(key, value)
    with pytest.raises(ConfigError, match=r"JAAS_HUB_MEM_LIMIT/JAAS_HUB_CPU_LIMIT cannot be "
                       r"enforced here \(no cgroup file system"):  # fmt: skip
        JupyterHub().load_config_file(str(CONFIG))


def test_user_names_cannot_leave_the_hub_cgroup() -> None:
    c = Cgroups(2, Path("/nonexistent/jaas-hub-1"), Path("/nonexistent/jaas-hub-1"))
    for bad in ("../x", "", "..", "a/b"):
        with pytest.raises(ConfigError, match="cannot name a cgroup"):
            c.user_dirs(bad)


# ---- a real hub, two users -----------------------------------------------------------


def _token(hub: Hub, user: str) -> str:
    r = requests.post(f"{hub.url}/hub/api/users/{user}/tokens", timeout=30,
                      json={"auth": {"username": user, "password": PASSWORD}})  # fmt: skip
    assert r.status_code == 201, r.text
    return str(r.json()["token"])


def _spawn(hub: Hub, user: str, token: str, s: requests.Session) -> requests.Session:
    s.headers["Authorization"] = f"token {token}"
    r = s.post(f"{hub.url}/hub/api/users/{user}/server", timeout=30)
    assert r.status_code in (201, 202), r.text
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        model = s.get(f"{hub.url}/hub/api/users/{user}", timeout=30).json()
        if model["servers"].get("", {}).get("ready"):
            return s
        time.sleep(1)
    raise AssertionError(f"{user}'s server not ready:\n{hub.tail()}")


def _kernel(hub: Hub, user: str, s: requests.Session) -> str:
    r = s.post(f"{hub.url}/user/{user}/api/kernels", json={"name": "python3"}, timeout=60)
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


async def _execute(url: str, token: str, code: str, timeout: float) -> tuple[str, str]:
    """Run ``code`` in a kernel over its websocket: ("ok"|"error"|"died", stdout)."""
    from tornado.httpclient import HTTPRequest
    from tornado.websocket import websocket_connect

    request = HTTPRequest(url, headers={"Authorization": f"token {token}"},
                          connect_timeout=timeout, request_timeout=timeout)  # fmt: skip
    ws = await websocket_connect(request)
    msg_id = uuid.uuid4().hex
    ws.write_message(json.dumps({
        "header": {"msg_id": msg_id, "msg_type": "execute_request", "username": "t",
                   "session": uuid.uuid4().hex, "version": "5.3"},
        "parent_header": {}, "metadata": {}, "channel": "shell",
        "content": {"code": code, "silent": False, "store_history": False,
                    "user_expressions": {}, "allow_stdin": False},
    }))  # fmt: skip
    out, reply, idle = "", None, False
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            raw = await asyncio.wait_for(ws.read_message(), deadline - time.monotonic())
            if raw is None:
                return "died", out
            msg = json.loads(raw)
            kind, content = msg["msg_type"], msg["content"]
            if kind == "status" and content["execution_state"] in ("restarting", "dead"):
                return "died", out
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            if kind == "stream":
                out += content["text"]
            elif kind == "execute_reply":
                reply = str(content["status"])
            elif kind == "status" and content["execution_state"] == "idle":
                idle = True  # iopub: all output of this request was sent
            if reply is not None and idle:
                return reply, out
        raise AssertionError(f"no reply in {timeout} s to {code!r}; output {out!r}")
    finally:
        ws.close()  # and wait for the close handshake, so no socket is left open
        with contextlib.suppress(asyncio.TimeoutError):
            while await asyncio.wait_for(ws.read_message(), 30) is not None:
                pass


def _run(hub: Hub, user: str, token: str, kernel: str, code: str, timeout: float = 120):  # type: ignore[no-untyped-def]
    url = hub.url.replace("http://", "ws://") + f"/user/{user}/api/kernels/{kernel}/channels"
    return asyncio.run(_execute(url, token, code, timeout))


def _oom_kills(groups: Cgroups, user: str) -> int:
    d = groups.user_dirs(user)[0]
    name = "memory.events" if groups.version == 2 else "memory.oom_control"
    fields = dict(line.split() for line in (d / name).read_text().splitlines())
    return int(fields["oom_kill"])


def _periods(groups: Cgroups, user: str) -> int:
    fields = dict(line.split() for line in (groups.user_dirs(user)[-1] / "cpu.stat")
                  .read_text().splitlines())  # fmt: skip
    return int(fields["nr_periods"])


@pytest.fixture
def made_cgroups() -> Iterator[list[Cgroups]]:
    """Cgroups the test's hub made: removed after the hub stopped (fixture order)."""
    made: list[Cgroups] = []
    yield made
    for groups in made:
        for user in ("alice", "bob"):
            groups.remove(user)  # also ends what is left in them
        for d in groups.parents():
            if d.exists():
                d.rmdir()


@pytest.mark.slow
def test_limits_are_enforced_per_user_in_cgroups(made_cgroups, start_hub) -> None:
    why = _can_make_cgroups()
    need(why is None, f"this machine cannot make memory/cpu cgroups: {why}")
    hub = start_hub(JAAS_HUB_USERS="alice,bob", JAAS_HUB_PASSWORD=PASSWORD,
                    JAAS_HUB_MEM_LIMIT=f"{MEM // 2**20}M", JAAS_HUB_CPU_LIMIT=str(CPU),
                    JAAS_HUB_WORKERS="1")  # fmt: skip
    port = hub.url.rsplit(":", 1)[1]
    groups = cgroups(f"jaas-hub-{port}", CGROUP_ROOT)
    made_cgroups.append(groups)
    tokens = {u: _token(hub, u) for u in ("alice", "bob")}
    with requests.Session() as a, requests.Session() as b:
        _enforced(hub, groups, tokens, {"alice": _spawn(hub, "alice", tokens["alice"], a),
                                        "bob": _spawn(hub, "bob", tokens["bob"], b)})  # fmt: skip


def _enforced(hub: Hub, groups: Cgroups, tokens: dict[str, str],
              sessions: dict[str, requests.Session]) -> None:  # fmt: skip
    # each server is in its own cgroup with the limits written
    for user in sessions:
        pids = {p for d in groups.user_dirs(user) for p in Cgroups.pids(d)}
        commands = [Path(f"/proc/{p}/cmdline").read_bytes() for p in pids]
        assert any(b"jupyterhub.singleuser" in c for c in commands), (user, commands)
        mem_dir, cpu_dir = groups.user_dirs(user)[0], groups.user_dirs(user)[-1]
        if groups.version == 2:
            assert (mem_dir / "memory.max").read_text().strip() == str(MEM)
            assert (cpu_dir / "cpu.max").read_text().split() == ["50000", "100000"]
        else:
            assert int((mem_dir / "memory.limit_in_bytes").read_text()) == MEM
            assert (cpu_dir / "cpu.cfs_quota_us").read_text().strip() == "50000"
            assert (cpu_dir / "cpu.cfs_period_us").read_text().strip() == "100000"
        assert _oom_kills(groups, user) == 0
    kernels = {u: _kernel(hub, u, sessions[u]) for u in ("alice", "bob")}
    status, out = _run(hub, "alice", tokens["alice"], kernels["alice"], "print(6 * 7)")
    assert (status, out.strip()) == ("ok", "42")

    # CPU: a busy loop in alice's kernel runs in her cpu cgroup (its quota periods count)
    # and gets at most her quota of CPU time (less on a loaded machine, never more)
    before = _periods(groups, "alice")
    busy = ("import time\nw, c = time.time(), time.process_time()\n"
            "while time.time() - w < 2: pass\n"
            "print((time.process_time() - c) / (time.time() - w))")  # fmt: skip
    status, out = _run(hub, "alice", tokens["alice"], kernels["alice"], busy)
    assert status == "ok" and float(out) <= CPU + 0.1, out
    assert _periods(groups, "alice") > before

    # memory: 1.5x the limit, every byte touched -> OOM-killed in alice's cgroup only
    status, out = _run(hub, "alice", tokens["alice"], kernels["alice"],
                       f"x = b'1' * {MEM * 3 // 2}\nprint('allocated', len(x))")  # fmt: skip
    assert status == "died" and "allocated" not in out, (status, out)
    assert _oom_kills(groups, "alice") >= 1
    assert _oom_kills(groups, "bob") == 0
    # the hub and bob go on; alice gets a fresh kernel within her limit
    assert requests.get(f"{hub.url}/hub/api/", timeout=30).status_code == 200
    status, out = _run(hub, "bob", tokens["bob"], kernels["bob"], "print(sum(range(10)))")
    assert (status, out.strip()) == ("ok", "45")
    alice = _kernel(hub, "alice", sessions["alice"])
    status, out = _run(hub, "alice", tokens["alice"], alice, "print('alive')")
    assert (status, out.strip()) == ("ok", "alive")

    # stopping a server removes its cgroup
    r = sessions["bob"].delete(f"{hub.url}/hub/api/users/bob/server", timeout=60)
    assert r.status_code in (202, 204), r.text
    deadline = time.monotonic() + 60
    while any(d.exists() for d in groups.user_dirs("bob")) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not any(d.exists() for d in groups.user_dirs("bob"))
