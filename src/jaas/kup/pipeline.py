"""Orchestration of a keep-up pipeline on one machine: up, ingest, status, down.

A pipeline lives in a state directory: ``kup.json`` (settings), ``state.json`` (pids,
broker address), ``kup.db`` (SQLite ledger, unless a database URL is given), ``logs/``
(broker, relay and worker output) and ``data/`` (stage products and attempt logs).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jaas._io import atomic_path
from jaas.errors import PipelineError
from jaas.kup.broker import ensure_topics, free_port, start_broker_process, wait_ready
from jaas.kup.config import KupSettings
from jaas.kup.ledger import Ledger
from jaas.kup.relay import all_topics
from jaas.kup.states import JobKey

__all__ = ["Status", "down", "format_status", "ingest", "pid_alive", "status", "up"]


def pid_alive(pid: int | None) -> bool:
    """Whether process ``pid`` exists and is not a zombie."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        if stat.rsplit(")", 1)[-1].split()[0] == "Z":
            return False
    return True


def _read_state(state_dir: Path) -> dict[str, Any]:
    path = state_dir / "state.json"
    if not path.is_file():
        return {"workers": {}}
    return dict(json.loads(path.read_text(encoding="utf-8")))


def _write_state(state_dir: Path, state: dict[str, Any]) -> None:
    with atomic_path(state_dir / "state.json") as tmp:
        tmp.write_text(json.dumps(state, indent=2), encoding="utf-8")


# Processes started by this Python process: kept so they are reaped (no zombies, no
# ResourceWarning) when ``down`` runs in the same process; other processes just see pids.
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


def _spawn(argv: list[str], log: Path) -> int:
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, "JAAS_PROGRESS": "0"},
        )
    _CHILDREN[proc.pid] = proc
    return proc.pid


def up(settings: KupSettings) -> dict[str, Any]:
    """Start what is not running yet: broker (embedded), relay, one worker per stage.

    Idempotent: a second ``up`` restarts only dead pieces (a restarted embedded broker
    comes back on the same port; the relay then republishes every queued job).

    Args:
        settings: state dir, database, broker, stages and executor.

    Returns:
        The state: ``{"bootstrap", "broker", "relay", "workers": {stage: pid}}``.

    Example:
        >>> up(KupSettings(state_dir=Path("kup")))      # doctest: +SKIP
    """
    state_dir = settings.state_dir
    state_dir.mkdir(parents=True, exist_ok=True)
    config = settings.pipeline()  # validate the stages before starting anything
    settings.save()
    state = _read_state(state_dir)
    logs = state_dir / "logs"
    if settings.bootstrap is None:
        port = int(state.get("broker_port") or settings.broker_port or free_port())
        state["broker_port"] = port
        state["bootstrap"] = f"127.0.0.1:{port}"
        if not pid_alive(state.get("broker")):
            proc = start_broker_process(port, logs / "broker.log")
            _CHILDREN[proc.pid] = proc
            state["broker"] = proc.pid
    else:
        state["bootstrap"] = settings.bootstrap
        state["broker"] = None
    _write_state(state_dir, state)
    wait_ready(state["bootstrap"])
    ensure_topics(state["bootstrap"], all_topics(config))
    Ledger(settings.database, config).close()  # create the tables once, before the workers
    py = sys.executable
    if not pid_alive(state.get("relay")):
        argv = [py, "-m", "jaas.kup.relay", str(state_dir)]
        state["relay"] = _spawn(argv, logs / "relay.log")
    workers = state.setdefault("workers", {})
    for stage in config.stages:
        if not pid_alive(workers.get(stage.name)):
            argv = [py, "-m", "jaas.kup.worker", str(state_dir), stage.name]
            workers[stage.name] = _spawn(argv, logs / f"worker-{stage.name}.log")
    _write_state(state_dir, state)
    return state


def _reap(pids: list[int]) -> None:
    for pid in pids:
        child = _CHILDREN.get(pid)
        if child is not None and child.poll() is not None:
            del _CHILDREN[pid]


def _stop(pids: list[int], timeout: float) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _reap(pids)
        if not any(pid_alive(p) for p in pids):
            break
        time.sleep(0.05)
    for pid in pids:
        if pid_alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)  # each was started in its own session
        child = _CHILDREN.pop(pid, None)
        if child is not None:
            child.wait()


def down(state_dir: str | os.PathLike[str], timeout: float = 15.0) -> list[str]:
    """Stop the workers, then the relay, then the embedded broker; return what was stopped.

    Workers get ``timeout`` seconds to finish their attempts (the rest are cancelled and
    recorded as transient failures), then they are killed.
    """
    sd = Path(state_dir)
    state = _read_state(sd)
    stopped: list[str] = []
    workers = {k: v for k, v in state.get("workers", {}).items() if pid_alive(v)}
    _stop(list(workers.values()), timeout)
    stopped += [f"worker {name}" for name in workers]
    for role in ("relay", "broker"):
        pid = state.get(role)
        if pid is not None and pid_alive(pid):
            _stop([int(pid)], 3.0)
            stopped.append(role)
        state[role] = None
    state["workers"] = {}
    if sd.is_dir():
        _write_state(sd, state)
    return stopped


def ingest(
    state_dir: str | os.PathLike[str], paths: Iterable[str | os.PathLike[str]]
) -> list[JobKey]:
    """Register RAW files: queue their first-stage job and its message (one transaction).

    Returns the keys newly queued (files already known are skipped).
    """
    settings = KupSettings.load(state_dir)
    files = [Path(p) for p in paths]
    missing = [str(p) for p in files if not p.is_file()]
    if missing:
        raise PipelineError(f"cannot ingest, no such file(s): {', '.join(missing)}")
    ledger = Ledger(settings.database, settings.pipeline())
    try:
        return ledger.submit_files(files)
    finally:
        ledger.close()


@dataclass
class Status:
    """What ``jaas kup status`` shows: processes, jobs per stage and state, failures."""

    processes: dict[str, bool]
    counts: dict[str, dict[str, int]]
    failures: list[dict[str, Any]] = field(default_factory=list)
    bootstrap: str | None = None

    def files_done(self, stage: str) -> int:
        """Number of files done at ``stage``."""
        return self.counts.get(stage, {}).get("done", 0)


def status(state_dir: str | os.PathLike[str]) -> Status:
    """Read the pipeline's processes and the ledger's counts and failures."""
    settings = KupSettings.load(state_dir)
    state = _read_state(Path(state_dir))
    procs: dict[str, bool] = {}
    if settings.bootstrap is None:
        procs["broker"] = pid_alive(state.get("broker"))
    procs["relay"] = pid_alive(state.get("relay"))
    for name, pid in state.get("workers", {}).items():
        procs[f"worker {name}"] = pid_alive(pid)
    ledger = Ledger(settings.database, settings.pipeline())
    try:
        return Status(procs, ledger.counts(), ledger.failures(), state.get("bootstrap"))
    finally:
        ledger.close()


_ORDER = ("pending", "queued", "running", "retrying", "done", "failed", "dead")


def format_status(st: Status) -> str:
    """Human-readable table of :func:`status`."""
    lines = [f"broker: {st.bootstrap or '-'}"]
    for name, alive in st.processes.items():
        lines.append(f"  {name:<20} {'up' if alive else 'DOWN'}")
    lines.append("")
    lines.append(f"{'stage':<12}" + "".join(f"{s:>10}" for s in _ORDER))
    for stage, by_state in st.counts.items():
        lines.append(f"{stage:<12}" + "".join(f"{by_state.get(s, 0):>10}" for s in _ORDER))
    if st.failures:
        lines.append("")
        lines.append("failures:")
        for f in st.failures:
            lines.append(
                f"  {f['stage']:<10} {f['file']:<32} {f['state']:<9} "
                f"attempts {f['attempts']}: {f['reason']}"
            )
    return "\n".join(lines)
