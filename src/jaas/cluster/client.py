"""The cluster handle a notebook holds: ``connect(ADDR)`` -> ``Cluster``."""

from __future__ import annotations

import html
import json
import threading
import weakref
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jaas.cluster import registry as _registry
from jaas.errors import ConfigError
from jaas.settings import settings

if TYPE_CHECKING:
    from jaas.engine.session.cache import CacheStats
    from jaas.engine.session.dataset import Dataset
    from jaas.engine.session.results import CoincidenceResult

__all__ = ["Cluster", "as_cluster", "connect", "state_dir"]


def state_dir() -> Path:
    """Where ``jaas cluster up`` keeps its state (``JAAS_CLUSTER_DIR``, default
    ``~/.jaas/cluster``)."""
    return settings().cluster_dir


class Cluster:
    """A connection to a Dask scheduler running jaas queries.

    Attributes:
        client: the ``distributed.Client``.
        local_storage: files live on node-local disks (a lost worker's files become
            lost data instead of moving to another worker).
        direct: send queries straight to the workers (``jaas.cluster.direct``), the
            scheduler's tasks only as the fallback; False: always tasks.
        paths: how many query attempts went which way ("direct", "tasks").
    """

    def __init__(self, client: Any, *, local_storage: bool = False, direct: bool = True) -> None:
        self.client = client
        self.local_storage = local_storage
        self.direct = direct
        self.paths: Counter[str] = Counter()
        self._lazy: list[weakref.ref[Any]] = []  # results whose veto arrays are remote
        self._assigned: dict[Any, tuple[Any, ...]] = {}  # (files, local) -> assignment
        self.threads: dict[str, int] = {}  # worker -> its threads (last scheduler answer)
        self._lock = threading.Lock()
        try:  # ownership changes on the scheduler drop the cached assignments
            client.subscribe_topic(_registry.CHANGED_TOPIC, self._ownership_changed)
        except Exception:  # an old scheduler: nothing is cached then
            self.direct = False
        stream: Any = getattr(client, "scheduler_comm", None)  # batches for 10 ms by default
        if getattr(stream, "interval", 0) > _registry.STREAM_INTERVAL:
            stream.interval = _registry.STREAM_INTERVAL

    @property
    def address(self) -> str:
        return str(self.client.scheduler.address)

    @property
    def dashboard_link(self) -> str:
        try:
            return str(self.client.dashboard_link)
        except (KeyError, AttributeError):  # scheduler without a dashboard
            return ""

    def workers(self) -> list[str]:
        """Addresses of the connected workers."""
        try:
            info = self.client.scheduler_info(n_workers=-1)
        except TypeError:  # distributed < 2025: every worker is listed
            info = self.client.scheduler_info()
        return sorted(info["workers"])

    def cache_stats(self) -> dict[str, CacheStats]:
        """Per worker: column-cache hits, misses, bytes read and held."""
        from jaas.cluster.worker import worker_stats

        return dict(sorted(self.client.run(worker_stats).items()))

    def registry(self) -> dict[str, Any]:
        """File ownership: per worker its files and time range, and unreachable files."""
        snap: dict[str, Any] = self.client.run_on_scheduler(_registry.snapshot)
        return snap

    def coincidence(self, ds: Dataset, **kwargs: Any) -> CoincidenceResult:
        """``jaas.cluster.coincidence(ds, ..., client=self)``."""
        from jaas.cluster.backend import coincidence

        return coincidence(ds, client=self, **kwargs)

    def ibd(self, ds: Dataset, selection: Any = None, **kwargs: Any) -> CoincidenceResult:
        """``jaas.cluster.ibd(ds, ..., client=self)``."""
        from jaas.cluster.backend import ibd

        return ibd(ds, selection, client=self, **kwargs)

    def _ownership_changed(self, event: Any = None) -> None:
        with self._lock:
            self._assigned.clear()

    def assignment(
        self, files: list[tuple[str, int, int]], local: bool, *, cached: bool = True
    ) -> tuple[dict[str, str | None], dict[str, str], list[str]]:
        """(owners, lost files, live workers) of ``files`` from the scheduler's registry;
        with ``cached`` the last answer for the same files, until a worker arrives,
        leaves or claims files (an event from the registry) or ``forget`` is called."""
        key = (tuple(files), local)
        if cached:
            with self._lock:
                got = self._assigned.get(key)
            if got is not None:
                return got
        value = self.client.run_on_scheduler(_registry.assign_with_workers, files, local)
        owners, lost, alive = value[:3]
        if len(value) > 3:
            self.threads = dict(value[3])
        if not lost and all(owners.values()):  # only a complete answer is reused
            with self._lock:
                if len(self._assigned) > 64:
                    self._assigned.clear()
                self._assigned[key] = (owners, lost, alive)
        return owners, lost, alive

    def forget(self) -> None:
        """Drop the cached assignments (a worker did not answer)."""
        self._ownership_changed()

    def track(self, result: Any) -> None:
        """Remember a ``LazyResult`` fetching from this cluster: ``close`` fetches its
        veto arrays first, so results stay whole after disconnecting."""
        self._lazy = [r for r in self._lazy if r() is not None]
        self._lazy.append(weakref.ref(result))

    def close(self) -> None:
        """Disconnect (the cluster keeps running); results of this connection still
        holding veto arrays on the workers fetch them first."""
        lazy, self._lazy = self._lazy, []
        for ref in lazy:
            got = ref()
            if got is not None and not got.loaded:
                try:
                    got.veto_bits  # noqa: B018 - loads both arrays while connected
                except Exception:  # cluster unusable: reading them later says why
                    continue
        self.client.close()

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _lines(self) -> list[tuple[str, str]]:
        try:
            n = len(self.workers())
        except OSError:
            n = -1
        storage = "node-local" if self.local_storage else "shared"
        return [
            ("scheduler", self.address),
            ("dashboard", self.dashboard_link or "-"),
            ("workers", str(n) if n >= 0 else "?"),
            ("storage", storage),
        ]

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v}" for k, v in self._lines())
        return f"<jaas.Cluster {fields}>"

    def _repr_html_(self) -> str:
        rows = []
        for k, v in self._lines():
            cell = html.escape(v)
            if k == "dashboard" and v.startswith("http"):
                cell = f"<a href='{html.escape(v)}' target='_blank'>{cell}</a>"
            rows.append(f"<tr><th style='text-align:left'>{k}</th><td>{cell}</td></tr>")
        return f"<b>jaas cluster</b><table>{''.join(rows)}</table>"


def connect(
    address: str | None = None,
    *,
    local_storage: bool = False,
    timeout: str | float = "30s",
    **client_kwargs: Any,
) -> Cluster:
    """Connect to a Dask scheduler and return a ``Cluster`` handle.

    Args:
        address: scheduler address (``tcp://host:8786``), a scheduler JSON file, or None
            for the cluster started by ``jaas cluster up`` (its scheduler file).
        local_storage: files are on node-local disks (see ``Cluster``).
        timeout: connection timeout.
        client_kwargs: passed to ``distributed.Client`` (e.g. ``security=``).

    Example:
        >>> c = jaas.cluster.connect("tcp://127.0.0.1:8786")     # doctest: +SKIP
        >>> c.ibd(jaas.open("runs/sim1")).summary()              # doctest: +SKIP
    """
    try:
        from distributed import Client
    except ImportError as exc:  # pragma: no cover - optional extra
        raise ConfigError("the Dask backend needs: pip install 'jaas[dask]'") from exc
    if address is None:
        f = state_dir() / "scheduler.json"
        if not f.exists():
            raise ConfigError(
                f"no address given and no cluster started here ({f} missing); "
                "run `jaas cluster up --workers 2` or pass 'tcp://HOST:8786'"
            )
        address = str(f)
    if address.endswith(".json") and Path(address).exists():
        address = json.loads(Path(address).read_text())["address"]
    client = Client(address, timeout=timeout, set_as_default=False, **client_kwargs)
    client.run_on_scheduler(_registry.snapshot)  # installs the registry if missing
    return Cluster(client, local_storage=local_storage)


def as_cluster(client: Any) -> Cluster:
    """A ``Cluster`` from a handle, a ``distributed.Client`` or an address."""
    if isinstance(client, Cluster):
        return client
    if client is None:
        raise ConfigError("no cluster: pass client=jaas.cluster.connect('tcp://HOST:8786')")
    if isinstance(client, str):
        return connect(client)
    return Cluster(client)
