"""Background processes a command starts and a later command stops, by recorded pid.

``Daemons(marker)`` spawns processes in their own sessions (they outlive the command that
started them, their output in a log file) and stops exactly those: a recorded pid counts
only while its command line still contains ``marker`` (a recycled pid is left alone).
Used by ``jaas cluster up|down`` for Dask (``jaas.cluster.local``) and Spark
(``jaas.spark.local``).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

__all__ = ["Daemons"]


class Daemons:
    """Spawn, check and stop background processes whose command line holds ``marker``."""

    def __init__(self, marker: bytes) -> None:
        self.marker = marker
        self.children: dict[int, subprocess.Popen[bytes]] = {}  # started here: reaped

    def spawn(self, args: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
        """Start ``args`` in a new session, appending its output to ``log``."""
        with open(log, "ab") as out:
            proc = subprocess.Popen(
                args, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, env=env
            )
        self.children[proc.pid] = proc
        return proc

    def ours(self, pid: int) -> bool:
        """The process exists and is one of ours (not a recycled pid)."""
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            try:
                os.kill(pid, 0)
            except OSError:
                return False
            return True  # no /proc (macOS): trust the recorded pid
        return self.marker in cmd

    def running(self, pid: int) -> bool:
        child = self.children.get(pid)
        if child is not None:
            return child.poll() is None
        return self.ours(pid)

    def kill(self, *pids: int, grace: float = 5.0) -> None:
        """SIGTERM the given processes (if still ours), SIGKILL those left after ``grace``."""
        targets = [p for p in pids if p in self.children or self.ours(p)]
        for pid in targets:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        left = list(targets)
        while left and time.monotonic() < deadline:
            time.sleep(0.05)
            left = [p for p in left if self.running(p)]
        for pid in left:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for pid in targets:
            child = self.children.pop(pid, None)
            if child is not None:
                child.wait()
