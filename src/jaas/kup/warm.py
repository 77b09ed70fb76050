"""Warm stage runners: a pre-imported parent process that forks one child per attempt.

Starting ``python -m jaas.kup.stages`` costs hundreds of milliseconds of interpreter
start-up and imports per attempt. The local executor instead keeps one warm parent,
``python -m jaas.kup.warm [MODULE...]``: a single-threaded process that has imported the
runner (and the stage modules it was told to preload) and then only forks. Each attempt
is a forked child, still isolated as a cold one is: its own session and process group
(a timeout or cancel kills the group), its own log file on stdout and stderr, the exact
environment and working directory asked for, and an exit code that the parent reports
(negative: killed by that signal). A crash or ``kill -9`` of the child ends only that
attempt; if the worker dies, the parent sees its pipe close and exits, and the children
run on as orphans exactly like cold attempts do.

The parent also learns: each child tells it (on a pipe of its own) which ``jaas.*`` modules
the attempt imported, and the parent imports them before the next fork, so that the lazy
imports of a stage function (readers, the catalog, numpy, uproot...) are paid once per
worker, not once per attempt.

While it runs, a child holds an exclusive ``flock`` on its *marker* file, which
:func:`marker_held` tests: a forked child has the parent's command line, so that is how
the orphan reclaim of a new worker tells that an attempt of a dead worker still runs.

Protocol (JSON lines): worker -> parent ``{"id", "args", "log", "env", "cwd", "marker"}``;
parent -> worker ``{"id", "pid"}`` or ``{"id", "error"}`` once forked, then
``{"pid", "exit"}`` when the child ended.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib
import json
import os
import random
import select
import signal
import subprocess
import sys
import time
import traceback
import weakref
from pathlib import Path
from typing import Any

from jaas.errors import PipelineError

__all__ = ["WARM_MODULES", "WarmParent", "marker_held", "serve", "warm_args"]

WARM_MODULES = frozenset({"jaas.kup.stages"})  # ``python -m`` targets a warm child can run


def warm_args(argv: list[str]) -> list[str] | None:
    """The runner's arguments if ``argv`` is ``python -m jaas.kup.stages ...`` with this
    interpreter (an attempt a warm child can run), else None."""
    if len(argv) < 3 or argv[1] != "-m" or argv[2] not in WARM_MODULES:
        return None
    if os.path.realpath(argv[0]) != os.path.realpath(sys.executable):
        return None
    return argv[3:]


def marker_held(marker: str | os.PathLike[str]) -> bool:
    """Whether a process holds the flock of ``marker`` (a warm attempt that still runs)."""
    try:
        fd = os.open(marker, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        os.close(fd)  # also releases the lock if we got it
    return False


# ---- the worker side ---------------------------------------------------------------------


class WarmParent:
    """The worker's handle on one warm parent process (started on first use, restarted if lost).

    Args:
        preload: modules the parent imports before forking (e.g. the stage's entry module).
        start_timeout: seconds to wait for the parent to answer a fork request.
    """

    def __init__(self, preload: tuple[str, ...] = (), start_timeout: float = 30.0) -> None:
        self.preload = tuple(preload)
        self.start_timeout = start_timeout
        self._proc: subprocess.Popen[bytes] | None = None
        self._live: list[subprocess.Popen[bytes]] = []  # stopped when this object goes
        weakref.finalize(self, _stop, self._live)
        self._buf = b""
        self._seq = 0
        self._exits: dict[int, int] = {}
        self._mine: set[int] = set()  # pids forked for us by the current parent
        self._orphans: set[int] = set()  # pids whose parent was lost before they ended

    def start(self) -> None:
        """Start the parent now (it imports in the background) rather than at the first fork."""
        self._start()

    def _start(self) -> subprocess.Popen[bytes]:
        if self._proc is not None and self._proc.poll() is None:
            return self._proc
        self._lose_parent()
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "jaas.kup.warm", *self.preload],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env={**os.environ, "JAAS_PROGRESS": "0"},
        )
        self._live[:] = [self._proc]
        self._buf = b""
        return self._proc

    def _lose_parent(self) -> None:
        if self._proc is not None:
            with contextlib.suppress(OSError):
                self._proc.kill()
            _stop(self._live)  # the current parent
            self._proc = None
        self._orphans |= self._mine - set(self._exits)
        self._mine = set()

    def _read(self, timeout: float) -> list[dict[str, Any]]:
        """Messages of the parent that arrive within ``timeout`` s (at least one read)."""
        proc = self._proc
        if proc is None or proc.stdout is None:
            return []
        fd = proc.stdout.fileno()
        ready, _, _ = select.select([fd], [], [], max(0.0, timeout))
        if not ready:
            return []
        chunk = os.read(fd, 65536)
        if not chunk:  # the parent died: its children run on unreported
            self._lose_parent()
            return []
        self._buf += chunk
        lines = self._buf.split(b"\n")
        self._buf = lines.pop()
        msgs = [json.loads(line) for line in lines if line]
        for msg in msgs:
            if "exit" in msg:
                self._exits[int(msg["pid"])] = int(msg["exit"])
        return msgs

    def fork(self, args: list[str], log: Path, env: dict[str, str], cwd: Path | None,
             marker: Path | None) -> int:  # fmt: skip
        """Start one attempt (``python -m jaas.kup.stages ARGS``); return its pid."""
        proc = self._start()
        self._seq += 1
        req = {"id": self._seq, "args": args, "log": str(log), "env": env,
               "cwd": None if cwd is None else str(cwd),
               "marker": None if marker is None else str(marker)}  # fmt: skip
        assert proc.stdin is not None
        try:
            proc.stdin.write(json.dumps(req).encode() + b"\n")
            proc.stdin.flush()
        except OSError as exc:
            self._lose_parent()
            raise PipelineError(f"warm runner lost: {exc}") from exc
        deadline = time.monotonic() + self.start_timeout
        while self._proc is proc:
            for msg in self._read(deadline - time.monotonic()):
                if msg.get("id") == self._seq:
                    if "error" in msg:
                        raise PipelineError(f"warm runner cannot fork: {msg['error']}")
                    pid = int(msg["pid"])
                    self._mine.add(pid)
                    return pid
            if time.monotonic() > deadline:
                self._lose_parent()
                raise PipelineError(f"warm runner did not answer within {self.start_timeout} s")
        raise PipelineError("warm runner exited before starting the attempt")

    def exit_code(self, pid: int) -> int | None:
        """The exit code of a child once it ended (None: still running)."""
        if pid not in self._exits and pid not in self._orphans:
            self._read(0.0)
        if pid in self._exits:
            return self._exits[pid]
        return None

    def lost(self, pid: int) -> bool:
        """True if the child's parent died and the child has ended (its exit code is unknown)."""
        if pid not in self._orphans:
            return False
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0]
        except (OSError, IndexError):
            return True
        return state == "Z"

    def wait(self, timeout: float) -> None:
        """Block until the parent reports something or ``timeout`` s pass."""
        if self._proc is None:
            time.sleep(max(0.0, timeout))
        else:
            self._read(timeout)

    def forget(self, pid: int) -> None:
        """Drop what is known of a finished child."""
        self._exits.pop(pid, None)
        self._mine.discard(pid)
        self._orphans.discard(pid)

    def close(self) -> None:
        """Stop the parent (children still running go on; the executor cancels them first)."""
        self._proc = None
        _stop(self._live)


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    """Close the pipes of warm parents (EOF: each exits) and reap them."""
    for proc in procs:
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    procs.clear()


# ---- the parent side -----------------------------------------------------------------------


LEARN_PREFIX = "jaas."  # modules an attempt imported that the parent imports in turn
_LEARN_MAX = 32768  # bytes: well below a pipe's capacity, so the child never blocks on it


def _reseed() -> None:
    """Fresh OS entropy for the global random generators a fork copied from the parent.

    Two attempts forked from one parent would otherwise draw the same unseeded numbers.
    ``os.fork`` runs the ``register_at_fork`` hooks (the ``random`` module reseeds itself
    there; numba's generators check the pid); numpy's legacy global ``RandomState`` has no
    hook, so it is reseeded here when the parent has imported it (else the child's import
    seeds it). ``random`` is reseeded again so this does not depend on that hook.
    """
    random.seed()
    legacy = sys.modules.get("numpy.random")
    if legacy is not None:
        legacy.seed()  # no argument: from the OS entropy source


def _child(req: dict[str, Any], close: list[int], learn: int) -> None:
    """In the forked child: isolate, run the attempt, exit with its code (never returns)."""
    code = 1
    marker = req.get("marker")
    before = set(sys.modules)
    try:
        signal.set_wakeup_fd(-1)
        for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, signal.SIG_DFL)
        for fd in close:
            os.close(fd)
        os.setsid()
        _reseed()
        if marker:
            os.makedirs(os.path.dirname(marker) or ".", exist_ok=True)
            lock = os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
            fcntl.flock(lock, fcntl.LOCK_EX)  # held until the process ends
        out = os.open(req["log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        os.dup2(out, 1)
        os.dup2(out, 2)
        os.close(out)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)
        if req.get("cwd"):
            os.chdir(req["cwd"])
        os.environ.clear()
        os.environ.update(req["env"])
        os.environ.setdefault("JAAS_PROGRESS", "0")
        from jaas.kup import stages

        sys.argv = ["python -m jaas.kup.stages", *req["args"]]
        code = stages.main(list(req["args"]))
    except SystemExit as exc:  # argparse: usage error
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        if exc.code is not None and not isinstance(exc.code, int):
            print(exc.code, file=sys.stderr)
    except BaseException:
        traceback.print_exc()
        code = 1
    finally:
        with contextlib.suppress(BaseException):
            sys.stdout.flush()
            sys.stderr.flush()
        if marker:
            with contextlib.suppress(OSError):
                os.unlink(marker)
        with contextlib.suppress(BaseException):
            new = [m for m in sys.modules if m not in before and m.startswith(LEARN_PREFIX)]
            while len(json.dumps(new)) > _LEARN_MAX:
                new = new[: len(new) // 2]
            os.write(learn, json.dumps(new).encode())
        os._exit(code & 0xFF)


def _learn(fd: int) -> None:
    """Import what a finished child imported (read from its pipe, which is then closed)."""
    data = b""
    with contextlib.suppress(OSError):  # non-blocking: a grandchild may hold the write end
        while chunk := os.read(fd, 65536):
            data += chunk
    os.close(fd)
    try:
        names = json.loads(data) if data else []
    except ValueError:  # cut at _LEARN_MAX (or garbage): learn nothing this time
        names = []
    for name in names:
        if isinstance(name, str) and name not in sys.modules:
            try:
                importlib.import_module(name)
            except Exception as exc:  # a child imported it; here we only try
                print(f"warm runner: cannot preload {name!r}: {exc}", file=sys.stderr)


def serve(preload: list[str]) -> int:
    """The warm parent's loop: fork on request, report exits, stop when the worker goes."""
    proto_in, proto_out = os.dup(0), os.dup(1)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    os.dup2(2, 1)  # stray prints of imported modules must not reach the protocol pipe
    os.environ.setdefault("JAAS_PROGRESS", "0")
    importlib.import_module("jaas.kup.stages")
    for name in preload:
        try:
            importlib.import_module(name)
        except Exception as exc:  # the attempt will report it with its entry point
            print(f"warm runner: cannot preload {name!r}: {exc}", file=sys.stderr)
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    signal.set_wakeup_fd(wake_w)
    for sig in (signal.SIGTERM, signal.SIGINT):  # the worker decides: we stop at its EOF
        signal.signal(sig, signal.SIG_IGN)

    def send(msg: dict[str, Any]) -> None:
        os.write(proto_out, json.dumps(msg).encode() + b"\n")

    learning: dict[int, int] = {}  # pid -> read end of the child's pipe

    def reap() -> None:
        ended = []
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            send({"pid": pid, "exit": os.waitstatus_to_exitcode(status)})
            ended.append(pid)
        for pid in ended:  # after the reports: the worker need not wait for our imports
            if pid in learning:
                _learn(learning.pop(pid))

    buf = b""
    try:
        while True:
            ready, _, _ = select.select([proto_in, wake_r], [], [])
            if wake_r in ready:
                with contextlib.suppress(BlockingIOError):
                    while os.read(wake_r, 4096):
                        pass
            reap()
            if proto_in not in ready:
                continue
            chunk = os.read(proto_in, 65536)
            if not chunk:
                return 0  # the worker is gone: children go on as orphans
            buf += chunk
            *lines, buf = buf.split(b"\n")
            for line in lines:
                if not line:
                    continue
                req = json.loads(line)
                learn_r, learn_w = os.pipe()
                try:
                    pid = os.fork()
                except OSError as exc:
                    os.close(learn_r)
                    os.close(learn_w)
                    send({"id": req["id"], "error": str(exc)})
                    continue
                if pid == 0:
                    own = [proto_in, proto_out, wake_r, wake_w, learn_r, *learning.values()]
                    _child(req, own, learn_w)
                os.close(learn_w)
                os.set_blocking(learn_r, False)
                learning[pid] = learn_r
                send({"id": req["id"], "pid": pid})
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(serve(sys.argv[1:]))
