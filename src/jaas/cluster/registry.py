"""File ownership registry: which worker owns which index files and time ranges.

``Registry`` is a plain class (events in, state out; unit-testable without a network).
``RegistryPlugin`` is the thin Dask driver: it keeps one ``Registry`` on the scheduler,
feeds it worker arrivals and departures, and answers the client through
``Client.run_on_scheduler`` (functions ``assign``/``snapshot`` below) and workers through
the ``jaas_claim`` scheduler handler.

Storage modes, per file: *shared* (default: any worker can read it; when its owner is
lost the file moves to the worker owning its time neighbour, or the least loaded one)
or *node-local* (only its owner can read it; when the owner is lost the file becomes
unreachable and queries report it as lost data until a worker claims it again).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from distributed.diagnostics.plugin import SchedulerPlugin

__all__ = [
    "PLUGIN_NAME",
    "FileEntry",
    "Registry",
    "RegistryPlugin",
    "assign",
    "assign_with_workers",
    "snapshot",
]

PLUGIN_NAME = "jaas-registry"
CHANGED_TOPIC = "jaas-ownership"  # an event on every worker arrival, departure, claim:
# clients caching an assignment (the direct path) drop it


@dataclass
class FileEntry:
    """One registered file: its time range, owner (None when unreachable) and storage."""

    path: str
    t_min: int
    t_max: int
    owner: str | None = None
    local: bool = False
    lost_from: str | None = None  # the worker it was lost with (node-local storage)


@dataclass
class Registry:
    """Ownership of files by workers (addresses), kept on the scheduler."""

    files: dict[str, FileEntry] = field(default_factory=dict)
    workers: list[str] = field(default_factory=list)

    # --- events --------------------------------------------------------------------
    def add_worker(self, worker: str) -> None:
        if worker not in self.workers:
            self.workers.append(worker)

    def claim(self, worker: str, files: list[tuple[str, int, int]], *, local: bool = False) -> None:
        """``worker`` owns ``files`` ((path, t_min, t_max)): e.g. ``jaas worker --files``."""
        self.add_worker(worker)
        for path, t_min, t_max in files:
            self.files[path] = FileEntry(path, int(t_min), int(t_max), worker, local)

    def assign(
        self, files: list[tuple[str, int, int]], *, local: bool = False
    ) -> dict[str, str | None]:
        """Owners of ``files``; files without a live owner get one.

        Unowned files are split into contiguous time blocks, one per worker (sorted
        addresses), so that neighbouring partitions mostly run on one worker. Files lost
        with node-local storage stay unowned (None).
        """
        new: list[tuple[str, int, int]] = []
        for path, t_min, t_max in files:
            e = self.files.get(path)
            if e is None:
                self.files[path] = e = FileEntry(path, int(t_min), int(t_max), None, local)
                new.append((path, int(t_min), int(t_max)))
            elif e.owner is None and e.lost_from is None:
                new.append((path, e.t_min, e.t_max))
        workers = sorted(self.workers)
        if new and workers:
            new.sort(key=lambda f: (f[1], f[0]))
            n, k = len(new), len(workers)
            for i, (path, _, _) in enumerate(new):
                self.files[path].owner = workers[min(i * k // n, k - 1)]
        return {path: self.files[path].owner for path, _, _ in files}

    def remove_worker(self, worker: str) -> tuple[list[str], list[str]]:
        """The worker is gone: move its shared files, mark its node-local files lost.

        Returns:
            (moved, lost) file paths.
        """
        if worker in self.workers:
            self.workers.remove(worker)
        moved: list[str] = []
        lost: list[str] = []
        mine = sorted((e for e in self.files.values() if e.owner == worker), key=lambda e: e.t_min)
        for e in mine:
            e.owner = None
            if e.local:
                e.lost_from = worker
                lost.append(e.path)
            elif self.workers:
                e.owner = self._neighbour_owner(e) or self._least_loaded()
                moved.append(e.path)
        return moved, lost

    def sync(self, alive: list[str]) -> None:
        """Catch up with the scheduler's live workers (departures the plugin missed)."""
        for w in [w for w in self.workers if w not in alive]:
            self.remove_worker(w)
        for e in self.files.values():
            if e.owner is not None and e.owner not in alive:
                self.workers.append(e.owner)
                self.remove_worker(e.owner)
        for w in alive:
            self.add_worker(w)

    def _neighbour_owner(self, entry: FileEntry) -> str | None:
        before = [e for e in self.files.values() if e.owner is not None and e.t_max <= entry.t_min]
        if not before:
            return None
        return max(before, key=lambda e: e.t_max).owner

    def _least_loaded(self) -> str:
        load = dict.fromkeys(self.workers, 0)
        for e in self.files.values():
            if e.owner in load:
                load[e.owner] += 1
        return min(sorted(load), key=lambda w: load[w])

    # --- queries -------------------------------------------------------------------
    def lost(self, paths: list[str] | None = None) -> dict[str, str]:
        """Unreachable files (node-local storage, owner gone): path -> former owner."""
        out = {p: e.lost_from for p, e in self.files.items() if e.lost_from is not None}
        if paths is not None:
            keep = set(paths)
            out = {p: w for p, w in out.items() if p in keep}
        return {p: w for p, w in out.items() if w is not None}

    def snapshot(self) -> dict[str, Any]:
        """Plain-data view: workers, and per worker its files and time range."""
        per: dict[str, list[FileEntry]] = {w: [] for w in self.workers}
        for e in self.files.values():
            if e.owner is not None:
                per.setdefault(e.owner, []).append(e)
        return {
            "workers": {
                w: {
                    "files": sorted(x.path for x in es),
                    "t_min": min((x.t_min for x in es), default=None),
                    "t_max": max((x.t_max for x in es), default=None),
                    "local": sorted(x.path for x in es if x.local),
                }
                for w, es in sorted(per.items())
            },
            "lost": self.lost(),
        }


class RegistryPlugin(SchedulerPlugin):
    """Keeps the ``Registry`` on the Dask scheduler, up to date with its workers."""

    name = PLUGIN_NAME

    def __init__(self) -> None:
        self.registry = Registry()
        self.scheduler: Any = None

    async def start(self, scheduler: Any) -> None:
        self.scheduler = scheduler
        for addr in scheduler.workers:
            self.registry.add_worker(addr)
        scheduler.handlers["jaas_claim"] = self._claim

    def _changed(self, what: str, worker: str) -> None:
        if self.scheduler is not None:
            self.scheduler.log_event(CHANGED_TOPIC, {"action": what, "worker": worker})

    def add_worker(self, scheduler: Any, worker: str) -> None:
        self.scheduler = scheduler
        self.registry.add_worker(worker)
        self._changed("add-worker", worker)

    def remove_worker(self, scheduler: Any, worker: str, **kwargs: Any) -> None:
        self.scheduler = scheduler
        moved, lost = self.registry.remove_worker(worker)
        if moved or lost:
            scheduler.log_event("jaas-registry", {"worker": worker, "moved": moved, "lost": lost})
        self._changed("remove-worker", worker)

    def _claim(self, worker: str, files: list[tuple[str, int, int]], local: bool = False) -> str:
        self.registry.claim(worker, [(str(p), int(a), int(b)) for p, a, b in files], local=local)
        self._changed("claim", worker)
        return "OK"


def _plugin(dask_scheduler: Any) -> RegistryPlugin:
    plugin = dask_scheduler.plugins.get(PLUGIN_NAME)
    if plugin is None:
        plugin = RegistryPlugin()
        plugin.scheduler = dask_scheduler
        dask_scheduler.add_plugin(plugin, name=PLUGIN_NAME)
        for addr in dask_scheduler.workers:
            plugin.registry.add_worker(addr)
        dask_scheduler.handlers["jaas_claim"] = plugin._claim
    assert isinstance(plugin, RegistryPlugin)
    return plugin


# --- functions run on the scheduler by Client.run_on_scheduler ----------------------
def assign(
    files: list[tuple[str, int, int]], local: bool = False, *, dask_scheduler: Any = None
) -> tuple[dict[str, str | None], dict[str, str], list[str]]:
    """(owners, lost, node-local paths) of ``files``; installs the registry if missing."""
    reg = _plugin(dask_scheduler).registry
    reg.sync(list(dask_scheduler.workers))
    owners = reg.assign(files, local=local)
    local_paths = [p for p, _, _ in files if reg.files[p].local]
    return owners, reg.lost([p for p, _, _ in files]), local_paths


def assign_with_workers(
    files: list[tuple[str, int, int]], local: bool = False, *, dask_scheduler: Any = None
) -> tuple[dict[str, str | None], dict[str, str], list[str], dict[str, int]]:
    """(owners, lost, worker addresses, their threads): ``assign`` and the workers in one
    round trip."""
    owners, lost_files, _ = assign(files, local, dask_scheduler=dask_scheduler)
    quick_streams(dask_scheduler)
    workers = dask_scheduler.workers
    threads = {w: int(getattr(ws, "nthreads", 1) or 1) for w, ws in workers.items()}
    return owners, lost_files, sorted(workers), threads


STREAM_INTERVAL = 0.001  # s; distributed batches messages for 2-10 ms


def quick_streams(scheduler: Any) -> None:
    """Shorten the scheduler's message batching towards workers and clients: a query
    sends a few messages each way, each batching delay adds to its latency."""
    for comms in (getattr(scheduler, "stream_comms", {}), getattr(scheduler, "client_comms", {})):
        for bs in comms.values():
            if getattr(bs, "interval", 0) > STREAM_INTERVAL:
                bs.interval = STREAM_INTERVAL


def snapshot(*, dask_scheduler: Any = None) -> dict[str, Any]:
    """The registry's plain-data view (installs the registry if missing)."""
    return _plugin(dask_scheduler).registry.snapshot()


def lost(paths: list[str], *, dask_scheduler: Any = None) -> dict[str, str]:
    """Unreachable files among ``paths``."""
    return _plugin(dask_scheduler).registry.lost(paths)


def status(paths: list[str], *, dask_scheduler: Any = None) -> tuple[dict[str, str], list[str]]:
    """(unreachable files among ``paths``, addresses of the live workers)."""
    return _plugin(dask_scheduler).registry.lost(paths), list(dask_scheduler.workers)


def dask_setup(scheduler: Any) -> None:
    """``dask scheduler --preload jaas.cluster.registry`` installs the registry."""
    _plugin(scheduler)
