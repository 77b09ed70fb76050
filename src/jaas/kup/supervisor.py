"""Supervisor: restarts a killed broker (embedded), relay, monitor or stage worker.

``jaas kup up`` starts it (``python -m jaas.kup.supervisor STATE_DIR [INTERVAL]``); every
``INTERVAL`` s it looks at the pids in ``state.json`` and starts again each piece that
died, counting restarts per piece in ``state.json`` (``restarts``, shown by ``kup
status``). It holds the pipeline's lock while it looks, so ``up`` and the supervisor never
start one piece twice; ``down`` stops the supervisor first. In production systemd does
this job instead (``deploy/systemd/``).

It never outlives its pipeline. Before each pass it exits when:

- ``STATE_DIR/down`` exists (``down`` writes it before stopping anything): exit only;
- ``state.json`` names another supervisor (a later ``up`` started one): exit only;
- the state directory (or its ``state.json``) is gone: it stops the processes of the
  last state it read and exits;
- the pipeline has an owner (``up(owner=PID)``, ``$JAAS_KUP_OWNER_PID``) and that
  process is gone: it stops the pipeline (as ``down``) and exits.

Without an owner (``jaas kup up`` from a shell) a killed piece is restarted until
``down``; a killed embedded broker is restarted like any other piece.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from jaas.kup import pipeline
from jaas.kup.broker import start_broker_process
from jaas.kup.config import KupSettings

__all__ = ["main", "reason_to_exit", "supervise_once"]

log = logging.getLogger("jaas.kup.supervisor")


def supervise_once(state_dir: Path) -> list[str]:
    """Restart every piece of the pipeline whose process is gone; return their names."""
    settings = KupSettings.load(state_dir)
    restarted: list[str] = []
    pipeline._reap(list(pipeline._CHILDREN))  # our own dead children: no zombies
    with pipeline.state_lock(state_dir):
        state = pipeline._read_state(state_dir)
        broker = state.get("broker")
        embedded = settings.bootstrap is None and state.get("broker_port")
        if embedded and broker is not None and not pipeline.pid_alive(broker):
            port = int(state["broker_port"])
            proc = start_broker_process(port, state_dir / "logs" / "broker.log")
            pipeline._CHILDREN[proc.pid] = proc
            state["broker"] = proc.pid
            restarted.append("broker")
        for role in ("relay", "monitor"):
            if state.get(role) is not None and not pipeline.pid_alive(state[role]):
                state[role] = pipeline.spawn_role(state_dir, role, state)
                restarted.append(role)
        workers = state.get("workers", {})
        for stage, pid in sorted(workers.items()):
            if pid is not None and not pipeline.pid_alive(pid):
                workers[stage] = pipeline.spawn_role(state_dir, f"worker {stage}", state)
                restarted.append(f"worker {stage}")
        if restarted:
            counts = state.setdefault("restarts", {})
            for name in restarted:
                counts[name] = int(counts.get(name, 0)) + 1
            pipeline._write_state(state_dir, state)
    for name in restarted:
        log.warning("%s was not running: restarted", name)
    return restarted


def reason_to_exit(state_dir: Path, me: int) -> str | None:
    """Why the supervisor ``me`` of ``state_dir`` must stop now (see the module), or None."""
    if (state_dir / pipeline.DOWN_MARKER).exists():
        return "`kup down` was run"
    if not (state_dir / "state.json").is_file():
        return f"its state directory {state_dir} is gone"
    state = pipeline._read_state(state_dir)
    sup = state.get("supervisor")
    if sup is not None and int(sup) != me:
        return f"supervisor {sup} took over"
    owner = state.get("owner")
    if owner is not None and not pipeline.pid_alive(int(owner)):
        return f"its owner process {owner} is gone"
    return None


def _pids(state: dict[str, Any], me: int) -> list[int]:
    roles = [state.get(r) for r in ("relay", "monitor", "broker")]
    pids = [*state.get("workers", {}).values(), *roles]
    return [int(p) for p in pids if p is not None and int(p) != me]


def _leave(state_dir: Path, why: str, last: dict[str, Any], me: int) -> None:
    """Stop what has no one left to stop it (no owner, no state dir), then return."""
    log.warning("exiting: %s", why)
    if why.startswith("its owner"):
        with pipeline.state_lock(state_dir):
            state = pipeline._read_state(state_dir)
            state["supervisor"] = None  # so that down does not wait for us
            pipeline._write_state(state_dir, state)
        stopped = pipeline.down(state_dir, timeout=5.0)
        log.warning("stopped the pipeline: %s", ", ".join(stopped) or "nothing was running")
    elif why.startswith("its state directory"):
        pids = [p for p in _pids(last, me) if pipeline.pid_alive(p)]
        pipeline._stop(pids, 5.0)
        log.warning("stopped the processes it last knew of: %s", pids)


def main(argv: list[str] | None = None) -> int:
    """``python -m jaas.kup.supervisor STATE_DIR [INTERVAL]``."""
    args = sys.argv[1:] if argv is None else argv
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s supervisor %(levelname)s %(message)s"
    )
    state_dir = Path(args[0])
    interval = float(args[1]) if len(args) > 1 else 1.0
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    me = os.getpid()
    last = pipeline._read_state(state_dir)
    log.info("supervising %s every %g s", state_dir, interval)
    while not stop.wait(interval):
        try:
            why = reason_to_exit(state_dir, me)
            if why is not None:
                _leave(state_dir, why, last, me)
                break
            last = pipeline._read_state(state_dir)
            supervise_once(state_dir)
        except Exception as exc:  # a half-written state, a full disk: try again
            log.warning("supervisor pass failed, retrying: %s", exc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
