"""Stage worker: consumes its stage's topic, starts attempts through the ledger and an executor.

Order per message: ledger write (queued -> running, attempt row) -> offset commit ->
executor submit. A redelivered message finds its job no longer queued and is skipped, so
a crash between the ledger write and the commit is harmless. Attempts of a worker that
died are settled by :meth:`StageWorker.reclaim` (at start and every ``reclaim_every`` s):
an orphan's result is recorded, a still-running orphan is looked at again later, and one
with neither is lost (closed, retried without charging the retry budget). Run as
``python -m jaas.kup.worker STATE_DIR STAGE``.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jaas.errors import JaasError, PipelineError
from jaas.kup.bus import Bus, BusConfig, Subscription, decode
from jaas.kup.config import KupSettings, PipelineConfig, StageConfig
from jaas.kup.executors.base import Executor, ExecutorStatus, Handle, JobSpec, get_executor
from jaas.kup.ledger import Ledger, Orphan, OrphanVerdict, Ticket
from jaas.kup.stages import EXIT_DETERMINISTIC, EXIT_TRANSIENT
from jaas.kup.states import Classification, JobKey
from jaas.kup.warm import marker_held

__all__ = ["StageWorker", "main", "owner_alive"]

log = logging.getLogger("jaas.kup.worker")


def owner_alive(owner: str) -> bool:
    """Whether the worker ``host:pid:stage`` still runs (other hosts: assumed alive)."""
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return True
    from jaas.kup.pipeline import pid_alive  # a killed worker not yet reaped is a zombie

    return pid_alive(int(pid_text))


@dataclass
class _Running:
    ticket: Ticket
    handle: Handle
    result: Path


def process_running(marker: str) -> bool:
    """Whether a process on this host has ``marker`` as one of its arguments (Linux /proc)."""
    want = marker.encode()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
            state = (proc / "stat").read_text().rsplit(")", 1)[-1].split()[0]
        except OSError:
            continue
        if want in argv and state != "Z":
            return True
    return False


def _last_line(path: Path) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(max(0, os.path.getsize(path) - 4096))
            lines = [ln.strip() for ln in f.read().decode(errors="replace").splitlines()]
    except OSError:
        return ""
    lines = [ln for ln in lines if ln]
    return lines[-1] if lines else ""


class StageWorker:
    """Runs one stage: bus in, ledger transitions, executor attempts.

    Args:
        stage: the stage's configuration.
        ledger: the pipeline ledger.
        executor: where attempts run.
        bus: the message bus (:class:`~jaas.kup.kafka.KafkaBus`, or a ``MemoryBus`` in tests).
        data_dir: stage products go to ``data_dir/STAGE``, logs to ``data_dir/logs/STAGE``.
        group: consumer group (default ``jaas-kup.STAGE``).
        env: extra environment of every attempt (e.g. ``JAAS_KUP_STATE_DIR``).
    """

    def __init__(
        self,
        stage: StageConfig,
        ledger: Ledger,
        executor: Executor,
        bus: Bus,
        data_dir: Path,
        group: str | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.stage = stage
        self.env = dict(env or {})
        self.ledger = ledger
        self.executor = executor
        self.bus = bus
        self.out_dir = data_dir / stage.name
        self.log_dir = data_dir / "logs" / stage.name
        self.group = group or f"jaas-kup.{stage.name}"
        self.ident = f"{socket.gethostname()}:{os.getpid()}:{stage.name}"
        self.running: dict[str, _Running] = {}
        self.consumer: Subscription | None = None

    def result_path(self, ticket: Ticket) -> Path:
        """Where the attempt writes its outcome (JSON)."""
        return self.log_dir / f"{ticket.key.file}.{ticket.attempt}.result.json"

    def marker_path(self, ticket: Ticket) -> Path:
        """The file a warm attempt holds locked while it runs (see :func:`marker_held`)."""
        return self.log_dir / f"{ticket.key.file}.{ticket.attempt}.running"

    def inspect(self, orphan: Orphan) -> OrphanVerdict:
        """What became of an attempt of a dead worker: its result, else its process."""
        result = self.result_path(orphan.ticket)
        if result.is_file():
            try:
                outcome = json.loads(result.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                outcome = None
            if isinstance(outcome, dict) and outcome.get("ok"):
                return OrphanVerdict("succeeded", output=outcome.get("output"))
            if isinstance(outcome, dict):
                deterministic = outcome.get("classification") == "deterministic"
                return OrphanVerdict(
                    "failed",
                    exit_code=EXIT_DETERMINISTIC if deterministic else EXIT_TRANSIENT,
                    reason=str(outcome.get("reason") or "failed (result of a lost worker)"),
                    classification=(
                        Classification.DETERMINISTIC if deterministic else Classification.TRANSIENT
                    ),
                )
        if marker_held(self.marker_path(orphan.ticket)) or process_running(str(result)):
            return OrphanVerdict("running")  # still at work: settled at a later reclaim
        return OrphanVerdict("lost")

    def reclaim(self) -> int:
        """Settle the attempts of dead workers of this stage (see :meth:`Ledger.reclaim`)."""
        n = self.ledger.reclaim(self.stage.name, owner_alive, self.inspect)
        if n:
            log.info("reclaimed %d attempt(s) of dead workers", n)
        return n

    def _argv(self, ticket: Ticket, result: Path) -> list[str]:
        subst = {
            "{python}": sys.executable,
            "{input}": ticket.input_path or "",
            "{output_dir}": str(self.out_dir),
            "{file}": ticket.key.file,
            "{result}": str(result),
        }
        if self.stage.command is not None:
            out = []
            for arg in self.stage.command:
                for k, v in subst.items():
                    arg = arg.replace(k, v)
                out.append(arg)
            return out
        assert self.stage.entry is not None
        return [
            sys.executable,
            "-m",
            "jaas.kup.stages",
            self.stage.entry,
            "--file",
            ticket.key.file,
            "--stage",
            self.stage.name,
            "--input",
            ticket.input_path or "",
            "--output-dir",
            str(self.out_dir),
            "--params",
            json.dumps(self.stage.params),
            "--result",
            str(result),
            *(["--rebuilt", ticket.rebuild] if ticket.rebuild else []),
        ]

    def handle_message(self, payload: dict[str, Any]) -> Ticket | None:
        """Ledger side of one message: start the attempt (None: duplicate or other version)."""
        if payload.get("stage") != self.stage.name or payload.get("version") != self.stage.version:
            return None
        key = JobKey(str(payload.get("file")), self.stage.name, self.stage.version)
        return self.ledger.start(key, worker=self.ident, log_dir=str(self.log_dir))

    def launch(self, ticket: Ticket) -> None:
        """Submit an attempt to the executor (a refused submit is a transient failure)."""
        result = self.result_path(ticket)
        log_path = Path(ticket.log_path or self.log_dir / f"{ticket.key.file}.log")
        spec = JobSpec(
            name=f"{self.stage.name}:{ticket.key.file}#{ticket.attempt}",
            argv=self._argv(ticket, result),
            log_path=log_path,
            timeout=self.stage.timeout,
            cpus=self.stage.resources.cpus,
            memory_mb=self.stage.resources.memory_mb,
            env={**self.env, "JAAS_PROGRESS": "0"},
            marker=self.marker_path(ticket),
        )
        try:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            handle = self.executor.submit(spec)
        except Exception as exc:
            self.ledger.finish(
                ticket,
                exit_code=None,
                reason=f"cannot submit: {exc}",
                classification=Classification.TRANSIENT,
            )
            return
        self.running[handle.id] = _Running(ticket, handle, result)

    def reap(self) -> int:
        """Record every finished attempt in the ledger; return how many finished."""
        done = 0
        for hid, run in list(self.running.items()):
            st = self.executor.poll(run.handle)
            if not st.finished:
                continue
            outcome: dict[str, Any] = {}
            if run.result.is_file():
                try:
                    outcome = json.loads(run.result.read_text(encoding="utf-8"))
                except ValueError:
                    outcome = {}
            code = st.exit_code
            if st.status is ExecutorStatus.SUCCEEDED:
                self.ledger.finish(run.ticket, exit_code=0, output_path=outcome.get("output"))
            elif st.status is ExecutorStatus.TIMED_OUT:
                self.ledger.finish(run.ticket, exit_code=code, timed_out=self.stage.timeout)
            else:
                deterministic = code in self.stage.deterministic_exit_codes
                reason = outcome.get("reason") or (
                    f"exit code {code}: {_last_line(run.handle.spec.log_path)}".rstrip(": ")
                )
                kind = Classification.DETERMINISTIC if deterministic else Classification.TRANSIENT
                if code == EXIT_TRANSIENT:
                    kind = Classification.TRANSIENT
                self.ledger.finish(run.ticket, exit_code=code, reason=reason, classification=kind)
            self.executor.forget(run.handle)
            del self.running[hid]
            done += 1
        return done

    def step(self, timeout: float) -> None:
        """Reap finished attempts, then take at most one message if a slot is free."""
        self.reap()
        if self.executor.free_slots() < min(self.stage.resources.cpus, 1):
            self.executor.wait(timeout)  # returns early when an attempt ends
            return
        if self.consumer is None:
            self.consumer = self.bus.subscribe(self.group, [self.stage.input])
        # while attempts run, come back soon to record their end (the next stage waits on it)
        msg = self.consumer.poll(min(timeout, 0.02) if self.running else timeout)
        if msg is None:
            return
        try:
            payload: dict[str, Any] | None = decode(msg)
        except PipelineError as exc:
            log.error("skipping a bad message: %s", exc)
            payload = None
        try:
            ticket = None if payload is None else self.handle_message(payload)
        except Exception:
            # the ledger write failed: rewind so the message is read again, then re-raise
            self.consumer.seek(msg)
            raise
        try:
            self.consumer.commit(msg)  # after the ledger write
        except Exception as exc:  # broker gone: a redelivery will be a harmless duplicate
            log.warning("offset commit failed (the ledger already has it): %s", exc)
        if ticket is not None:
            self.launch(ticket)  # the ledger says running: launch whatever the commit did

    def run(
        self,
        stop: threading.Event,
        poll: float = 0.2,
        grace: float = 5.0,
        reclaim_every: float = 30.0,
    ) -> None:
        """Consume until ``stop`` is set; then wait ``grace`` s for attempts, cancel the rest.

        Attempts of dead workers are settled at the start and every ``reclaim_every`` s
        (an orphan still running is looked at again until it ends).
        """
        next_reclaim = 0.0
        self.consumer = self.bus.subscribe(self.group, [self.stage.input])
        try:
            while not stop.is_set():
                try:
                    if time.monotonic() >= next_reclaim:
                        self.reclaim()
                        next_reclaim = time.monotonic() + reclaim_every
                    self.step(poll)
                except Exception as exc:  # broker or DB hiccup: keep going
                    log.warning("worker step failed, retrying: %s", exc)
                    stop.wait(0.5)
            deadline = time.monotonic() + grace
            while self.running and time.monotonic() < deadline:  # let attempts finish
                self.reap()
                threading.Event().wait(poll)
            for run in self.running.values():  # then stop the rest; they will be retried
                self.executor.cancel(run.handle)
                self.ledger.finish(
                    run.ticket,
                    exit_code=None,
                    reason=f"worker {self.ident} stopped during the attempt",
                    classification=Classification.TRANSIENT,
                )
            self.running.clear()
        finally:
            if self.consumer is not None:
                self.consumer.close()
                self.consumer = None


def main(argv: list[str] | None = None) -> int:
    """``python -m jaas.kup.worker STATE_DIR STAGE``; bad arguments: a one-line error, 2."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m jaas.kup.worker STATE_DIR STAGE", file=sys.stderr)
        return 2
    try:
        settings = KupSettings.load(args[0])
        config = settings.pipeline()
        stage = config.stage(args[1])
    except JaasError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return _serve(settings, config, stage)


def _serve(settings: KupSettings, config: PipelineConfig, stage: StageConfig) -> int:
    logging.basicConfig(
        level=logging.INFO, format=f"%(asctime)s {stage.name} %(levelname)s %(message)s"
    )
    state = json.loads((settings.state_dir / "state.json").read_text(encoding="utf-8"))
    from jaas.kup.kafka import KafkaBus

    bus = KafkaBus(BusConfig(state["bootstrap"], settings.session_timeout_ms))
    ledger = Ledger(settings.database, config)
    options: dict[str, Any] = {"slots": settings.slots}
    if settings.executor == "local":
        options["warm"] = settings.warm
        if stage.entry is not None:  # only runner attempts are forked: start it now
            options.update(preload=(stage.entry.partition(":")[0],), prestart=True)
    executor = get_executor(settings.executor, **options)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    worker = StageWorker(
        stage,
        ledger,
        executor,
        bus,
        settings.data,
        group=f"{settings.group_prefix}.{stage.name}",
        env={"JAAS_KUP_STATE_DIR": str(settings.state_dir.resolve())},  # stages find the catalog
    )
    try:
        worker.run(stop, settings.poll_interval)
    finally:
        executor.shutdown()
        ledger.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
