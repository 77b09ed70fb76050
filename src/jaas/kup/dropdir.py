"""Drop directory: poll a directory and ingest RAW files once they are complete, never twice.

A file is complete when a marker ``NAME.done`` sits beside it, or when its size and
modification time are unchanged across ``stable_polls`` consecutive scans (robust on
shared file systems, where inotify does not see other hosts' writes). Hidden files and
``*.part`` temporaries are ignored. End-of-run manifests (``*.manifest.json|yaml``) dropped
in the same directory are registered with :func:`jaas.kup.manifest.register_manifest`.
The watcher only reads: it moves, renames and deletes nothing (the files belong to the
DAQ); ingestion goes through the ledger, whose idempotency key makes a second
submission of a known file a no-op, also across watcher restarts.
"""

from __future__ import annotations

import fnmatch
import logging
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

from jaas._closing import Closing
from jaas.errors import ConfigError
from jaas.kup.config import KupSettings
from jaas.kup.identity import identify, submit_inputs
from jaas.kup.ledger import Ledger
from jaas.kup.manifest import is_manifest_name, register_manifest

__all__ = ["DropDirWatcher", "ScanResult"]

log = logging.getLogger("jaas.kup.dropdir")


@dataclass
class ScanResult:
    """What one scan did: files queued, files still being written, manifests registered."""

    ingested: list[str] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)
    manifests: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


class DropDirWatcher(Closing):
    """Polls ``drop_dir`` and ingests complete files into the pipeline in ``state_dir``.

    Args:
        state_dir: the pipeline (``jaas kup up`` wrote its settings there).
        drop_dir: where the DAQ (or ``jaas sim``) writes RAW files.
        pattern: file names to ingest (glob, default ``*.raw``).
        stable_polls: scans with an unchanged size and mtime before a file counts as complete.
        marker: suffix of the "file complete" marker (``run5_0001.raw.done``).

    Example:
        >>> w = DropDirWatcher("kup/", "/data/drop")     # doctest: +SKIP
        >>> w.run(interval=5.0)                          # doctest: +SKIP
    """

    def __init__(
        self,
        state_dir: str | os.PathLike[str],
        drop_dir: str | os.PathLike[str],
        *,
        pattern: str = "*.raw",
        stable_polls: int = 2,
        marker: str = ".done",
    ) -> None:
        if stable_polls < 1:
            raise ConfigError(f"stable_polls must be at least 1, got {stable_polls}")
        self.state_dir = Path(state_dir)
        self.drop_dir = Path(drop_dir)
        if not self.drop_dir.is_dir():
            raise ConfigError(f"{self.drop_dir}: drop directory does not exist")
        self.pattern = pattern
        self.stable_polls = stable_polls
        self.marker = marker
        settings = KupSettings.load(state_dir)
        self.ledger = Ledger(settings.database, settings.pipeline())
        self._seen: dict[str, tuple[tuple[int, int], int]] = {}  # name -> (size, mtime), count
        self._done: set[str] = set()
        self._manifests: dict[str, tuple[int, int]] = {}

    def close(self) -> None:
        """Release the ledger connection."""
        self.ledger.close()

    def _stable(self, entry: os.DirEntry[str], names: set[str]) -> bool:
        st = entry.stat()
        sig = (st.st_size, st.st_mtime_ns)
        if entry.name + self.marker in names:
            return True
        old = self._seen.get(entry.name)
        count = old[1] + 1 if old is not None and old[0] == sig else 1
        self._seen[entry.name] = (sig, count)
        return st.st_size > 0 and count >= self.stable_polls

    def scan(self) -> ScanResult:
        """One pass over the directory: register new manifests, queue complete files."""
        res = ScanResult()
        with os.scandir(self.drop_dir) as it:
            entries = [e for e in it if not e.name.startswith(".") and e.is_file()]
        names = {e.name for e in entries}
        ready: list[Path] = []
        for e in sorted(entries, key=lambda e: e.name):
            if e.name.endswith((".part", self.marker)) or e.name in self._done:
                continue
            if is_manifest_name(e.name):
                self._manifest(e, names, res)
            elif fnmatch.fnmatch(e.name, self.pattern):
                if self._stable(e, names):
                    ready.append(Path(e.path))
                else:
                    res.waiting.append(e.name)
        if ready:
            rep = submit_inputs(self.ledger, [identify(p) for p in ready])
            queued = {k.file for k in rep.queued}
            res.errors += [f"not ingested: {why}" for _, why in rep.refused]
            res.errors += [
                f"not ingested: {name}: same content as {same} (already ingested)"
                for name, same in rep.duplicates
            ]
            for p in ready:
                self._done.add(p.name)
                self._seen.pop(p.name, None)
                if p.name in queued:
                    res.ingested.append(p.name)
        # forget files that disappeared (e.g. cleaned up by the DAQ)
        for name in set(self._seen) - names:
            del self._seen[name]
        return res

    def _manifest(self, e: os.DirEntry[str], names: set[str], res: ScanResult) -> None:
        st = e.stat()
        sig = (st.st_size, st.st_mtime_ns)
        if self._manifests.get(e.name) == sig or not self._stable(e, names):
            return
        try:
            m = register_manifest(self.state_dir, e.path)
        except ConfigError as exc:
            res.errors.append(str(exc))
        else:
            res.manifests.append(f"run {m.run} ({len(m.files)} files)")
        self._manifests[e.name] = sig

    def run(
        self,
        interval: float = 5.0,
        stop: threading.Event | None = None,
        max_scans: int | None = None,
    ) -> int:
        """Scan every ``interval`` s until ``stop`` is set or ``max_scans``; return files queued."""
        stop = stop or threading.Event()
        total = scans = 0
        while not stop.is_set():
            res = self.scan()
            scans += 1
            total += len(res.ingested)
            for name in res.ingested:
                log.info("ingested %s", name)
            for text in res.manifests:
                log.info("registered manifest of %s", text)
            for err in res.errors:
                log.error("%s", err)
            if max_scans is not None and scans >= max_scans:
                break
            stop.wait(interval)
        return total
