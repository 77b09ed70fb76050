"""Supervisor: restarts a killed broker (embedded), relay, monitor or stage worker.

``jaas kup up`` starts it (``python -m jaas.kup.supervisor STATE_DIR [INTERVAL]``); every
``INTERVAL`` s it looks at the pids in ``state.json`` and starts again each piece that
died, counting restarts per piece in ``state.json`` (``restarts``, shown by ``kup
status``). It holds the pipeline's lock while it looks, so ``up`` and the supervisor never
start one piece twice; ``down`` stops the supervisor first. In production systemd does
this job instead (``deploy/systemd/``).
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from pathlib import Path

from jaas.kup import pipeline
from jaas.kup.broker import start_broker_process
from jaas.kup.config import KupSettings

__all__ = ["main", "supervise_once"]

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
    while not stop.wait(interval):
        try:
            supervise_once(state_dir)
        except Exception as exc:  # a half-written state, a full disk: try again
            log.warning("supervisor pass failed, retrying: %s", exc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
