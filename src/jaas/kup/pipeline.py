"""Orchestration of a keep-up pipeline on one machine: up, ingest, status, down.

A pipeline lives in a state directory: ``kup.json`` (settings), ``state.json`` (pids,
broker address), ``kup.db`` (SQLite ledger, unless a database URL is given), ``logs/``
(broker, relay and worker output) and ``data/`` (stage products and attempt logs).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jaas._io import atomic_path
from jaas.errors import ConfigError, JaasError, PipelineError
from jaas.kup.broker import ensure_topics, free_port, start_broker_process, wait_ready
from jaas.kup.config import KupSettings, PipelineConfig
from jaas.kup.identity import IngestReport, identify, submit_inputs
from jaas.kup.ledger import Ledger
from jaas.kup.manifest import RunReport, run_reports
from jaas.kup.relay import all_topics
from jaas.kup.states import JobKey

__all__ = [
    "DOWN_MARKER",
    "ResetPlan",
    "Status",
    "down",
    "ingest",
    "ingest_report",
    "pid_alive",
    "plan_reset",
    "preflight",
    "reset_file",
    "role_argv",
    "spawn_role",
    "state_lock",
    "status",
    "up",
]


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


@contextlib.contextmanager
def state_lock(state_dir: Path) -> Iterator[None]:
    """Hold the pipeline's lock (``up`` and the supervisor never start a piece twice)."""
    with open(state_dir / ".state.lock", "a+b") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def role_argv(state_dir: Path, role: str, state: dict[str, Any]) -> list[str]:
    """Command line of a pipeline process: ``relay``, ``monitor``, ``supervisor`` or
    ``worker STAGE``."""
    py = sys.executable
    if role.startswith("worker "):
        return [py, "-m", "jaas.kup.worker", str(state_dir), role.split(" ", 1)[1]]
    argv = [py, "-m", f"jaas.kup.{role}", str(state_dir)]
    if role == "monitor":
        argv.append(str(state.get("monitor_interval") or 10.0))
    return argv


def spawn_role(state_dir: Path, role: str, state: dict[str, Any]) -> int:
    """Start one pipeline process (its output appended to ``logs/ROLE.log``); its pid."""
    log = state_dir / "logs" / f"{role.replace(' ', '-')}.log"
    return _spawn(role_argv(state_dir, role, state), log)


DOWN_MARKER = "down"  # written by ``down`` first: a supervisor that sees it exits


def up(
    settings: KupSettings,
    monitor_interval: float | None = 10.0,
    supervise: bool = True,
    owner: int | None = None,
) -> dict[str, Any]:
    """Start what is not running yet: broker (embedded), relay, monitor, one worker per stage.

    Idempotent: a second ``up`` restarts only dead pieces (a restarted embedded broker
    comes back on the same port; the relay then republishes every queued job).

    Args:
        settings: state dir, database, broker, stages and executor.
        monitor_interval: seconds between the monitor's collections (alerts, history);
            None: no monitor process.
        supervise: also start the supervisor (:mod:`jaas.kup.supervisor`), which restarts
            a killed broker, relay, monitor or worker and counts the restarts.
        owner: pid of the process the pipeline lives with (default
            ``$JAAS_KUP_OWNER_PID``; None: until ``down``): once it is gone, the
            supervisor stops the pipeline and exits (a killed test run leaves nothing).

    Returns:
        The state: ``{"bootstrap", "broker", "relay", "monitor", "workers": {stage: pid}}``.

    Example:
        >>> up(KupSettings(state_dir=Path("kup")))      # doctest: +SKIP
    """
    _reap(list(_CHILDREN))  # children of earlier pipelines that have exited since
    config = preflight(settings)  # everything checked before any process starts
    state_dir = settings.state_dir
    settings.save()
    if owner is None:
        from jaas.settings import settings as env

        owner = env().kup_owner_pid
    with state_lock(state_dir):
        (state_dir / DOWN_MARKER).unlink(missing_ok=True)
        return _up(settings, config, monitor_interval, supervise, owner)


def _up(
    settings: KupSettings,
    config: PipelineConfig,
    monitor_interval: float | None,
    supervise: bool,
    owner: int | None,
) -> dict[str, Any]:
    state_dir = settings.state_dir
    state = _read_state(state_dir)
    state["monitor_interval"] = monitor_interval
    state["owner"] = owner
    logs = state_dir / "logs"
    started: list[int] = []
    try:
        if settings.bootstrap is None:
            port = int(state.get("broker_port") or settings.broker_port or free_port())
            state["broker_port"] = port
            state["bootstrap"] = f"127.0.0.1:{port}"
            if not pid_alive(state.get("broker")):
                proc = start_broker_process(port, logs / "broker.log")
                _CHILDREN[proc.pid] = proc
                state["broker"] = proc.pid
                started.append(proc.pid)
        else:
            state["bootstrap"] = settings.bootstrap
            state["broker"] = None
        _write_state(state_dir, state)
        wait_ready(state["bootstrap"])
        ensure_topics(state["bootstrap"], all_topics(config))
        roles = ["relay"] + (["monitor"] if monitor_interval is not None else [])
        for role in roles:
            if not pid_alive(state.get(role)):
                state[role] = spawn_role(state_dir, role, state)
                started.append(state[role])
        workers = state.setdefault("workers", {})
        for stage in config.stages:
            if not pid_alive(workers.get(stage.name)):
                workers[stage.name] = spawn_role(state_dir, f"worker {stage.name}", state)
                started.append(workers[stage.name])
        if supervise and not pid_alive(state.get("supervisor")):
            state["supervisor"] = spawn_role(state_dir, "supervisor", state)
            started.append(state["supervisor"])
    except BaseException:
        _stop(started, 3.0)  # leave nothing running that this call started
        for role in ("broker", "relay", "monitor", "supervisor"):
            if state.get(role) in started:
                state[role] = None
        state["workers"] = {k: v for k, v in state.get("workers", {}).items() if v not in started}
        _write_state(state_dir, state)
        raise
    _write_state(state_dir, state)
    return state


def preflight(settings: KupSettings) -> PipelineConfig:
    """Check everything ``up`` needs before it starts a process; return the stage chain.

    Raises:
        ConfigError: stages file, executor, slots or a stage entry point is wrong.
        PipelineError: the state directory cannot be created or the ledger database
            cannot be opened.
    """
    from jaas.kup.executors import available_executors
    from jaas.kup.stages import load_entry

    try:
        settings.state_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PipelineError(
            f"state directory {settings.state_dir}: cannot create it: {exc.strerror or exc}"
        ) from exc
    config = settings.pipeline()
    known = available_executors()
    if settings.executor not in known:
        raise ConfigError(f"unknown executor {settings.executor!r}; available: {', '.join(known)}")
    if settings.slots < 1:
        raise ConfigError(f"--slots {settings.slots}: expected at least 1")
    for stage in config.stages:
        if stage.entry is not None:
            try:
                load_entry(stage.entry)
            except ConfigError as exc:
                raise ConfigError(f"stage {stage.name!r}: {exc}") from exc
    try:
        Ledger(settings.database, config).close()  # the tables exist before the workers
    except JaasError:
        raise
    except Exception as exc:  # malformed URL, unreachable server, not a database
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise PipelineError(f"ledger database {_safe_url(settings.database)}: {first}") from exc
    return config


def _safe_url(url: str) -> str:
    """The URL with its password hidden (unparseable URLs as given)."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url


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
    if sd.is_dir():  # a supervisor that missed its SIGTERM still sees this and exits
        (sd / DOWN_MARKER).touch()
    state = _read_state(sd)
    stopped: list[str] = []
    sup = state.get("supervisor")
    if sup is not None and pid_alive(sup):  # first, or it would restart what we stop
        _stop([int(sup)], 5.0)
        stopped.append("supervisor")
    state["supervisor"] = None
    workers = {k: v for k, v in state.get("workers", {}).items() if pid_alive(v)}
    _stop(list(workers.values()), timeout)
    stopped += [f"worker {name}" for name in workers]
    for role in ("monitor", "relay", "broker"):
        pid = state.get(role)
        if pid is not None and pid_alive(pid):
            _stop([int(pid)], 3.0)
            stopped.append(role)
        state[role] = None
    state["workers"] = {}
    if sd.is_dir():
        _write_state(sd, state)
    # pieces that died before (killed, replaced by the supervisor) are not in the state
    # any more, or not alive: reap every finished child, not only what was stopped here
    _reap(list(_CHILDREN))
    return stopped


def ingest(
    state_dir: str | os.PathLike[str], paths: Iterable[str | os.PathLike[str]]
) -> list[JobKey]:
    """Register RAW files: queue their first-stage job and its message (one transaction).

    Returns the keys newly queued (files already known, and the same content under another
    name, are skipped). Raises PipelineError naming every refused file (a different file
    under a known name, a (run, sequence) already taken); the others are queued all the same.
    """
    report = ingest_report(state_dir, paths)
    if report.refused:
        raise PipelineError(
            f"{len(report.refused)} file(s) refused ({len(report.queued)} queued):\n"
            + "\n".join(f"  {why}" for _, why in report.refused)
        )
    return report.queued


def ingest_report(
    state_dir: str | os.PathLike[str], paths: Iterable[str | os.PathLike[str]]
) -> IngestReport:
    """Identify files by content and (run, sequence) and queue the new ones; the report."""
    settings = KupSettings.load(state_dir)
    files = [Path(p) for p in paths]
    missing = [str(p) for p in files if not p.is_file()]
    if missing:
        raise PipelineError(f"cannot ingest, no such file(s): {', '.join(missing)}")
    inputs = [identify(p) for p in files]
    ledger = Ledger(settings.database, settings.pipeline())
    try:
        return submit_inputs(ledger, inputs)
    finally:
        ledger.close()


@dataclass
class Status:
    """What ``jaas kup status`` shows: processes, jobs per stage and state, failures."""

    processes: dict[str, bool]
    counts: dict[str, dict[str, int]]
    failures: list[dict[str, Any]] = field(default_factory=list)
    bootstrap: str | None = None
    runs: list[RunReport] = field(default_factory=list)
    restarts: dict[str, int] = field(default_factory=dict)  # by the supervisor, per process

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
    if state.get("monitor") is not None:
        procs["monitor"] = pid_alive(state.get("monitor"))
    for name, pid in state.get("workers", {}).items():
        procs[f"worker {name}"] = pid_alive(pid)
    if state.get("supervisor") is not None:
        procs["supervisor"] = pid_alive(state.get("supervisor"))
    ledger = Ledger(settings.database, settings.pipeline())
    try:
        st = Status(procs, ledger.counts(), ledger.failures(), state.get("bootstrap"))
    finally:
        ledger.close()
    st.restarts = {k: int(v) for k, v in state.get("restarts", {}).items()}
    st.runs = run_reports(state_dir)
    return st


@dataclass
class ResetPlan:
    """What resetting one file from one stage touches: jobs, and products to delete or keep."""

    file: str
    stage: str
    jobs: list[dict[str, Any]]
    delete: list[Path]
    keep: list[tuple[Path, str]]


def plan_reset(state_dir: str | os.PathLike[str], file: str, stage: str) -> ResetPlan:
    """The jobs of ``file`` at ``stage`` and after it, and their products.

    Products inside the pipeline's data directory are deleted on reset; anything else
    (the RAW input, a shared store) is kept and listed.
    """
    settings = KupSettings.load(state_dir)
    config = settings.pipeline()
    names = [s.name for s in config.stages]
    config.stage(stage)  # ConfigError naming the stages
    downstream = {s.name: s.version for s in config.stages[names.index(stage) :]}
    every = _jobs_of(settings, [file])
    rows = [r for r in every if downstream.get(r["stage"]) == r["version"]]
    rows.sort(key=lambda r: names.index(r["stage"]))
    if not rows:
        raise PipelineError(
            f"file {file!r}: no job at stage {stage!r} or after it to reset "
            f"(see `jaas kup status {state_dir}`)"
        )
    data = settings.data.resolve()
    # inputs of the reset stage and of the stages before it stay: they are upstream products
    upstream = set(names[: names.index(stage) + 1])
    inputs = {
        Path(r["input_path"]).resolve() for r in every if r["input_path"] and r["stage"] in upstream
    }
    delete: list[Path] = []
    keep: list[tuple[Path, str]] = []
    for r in rows:
        if not r["output_path"]:
            continue
        out = Path(r["output_path"]).resolve()
        if out in delete or out in [k for k, _ in keep]:
            continue
        if out in inputs:
            keep.append((out, f"input of stage {stage!r} or before: stays valid"))
        elif not out.is_relative_to(data):
            keep.append((out, f"outside the pipeline's data directory {data}"))
        else:
            delete.append(out)
    return ResetPlan(file, stage, rows, delete, keep)


def _jobs_of(settings: KupSettings, files: list[str]) -> list[dict[str, Any]]:
    ledger = Ledger(settings.database, settings.pipeline())
    try:
        return ledger.jobs_of(files)
    finally:
        ledger.close()


def reset_file(state_dir: str | os.PathLike[str], plan: ResetPlan, *, who: str, why: str) -> int:
    """Carry out a :func:`plan_reset`: delete the owned products, reset the jobs (audited).

    Returns the number of jobs reset; the first one is queued again at once.
    """
    for p in plan.delete:
        with contextlib.suppress(FileNotFoundError):
            p.unlink()
    settings = KupSettings.load(state_dir)
    ledger = Ledger(settings.database, settings.pipeline())
    try:
        return ledger.reset(plan.file, plan.stage, who=who, note=why)
    finally:
        ledger.close()
