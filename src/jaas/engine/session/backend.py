"""Where a query runs: the ``Backend`` protocol, the local backend and the registry.

A backend runs a *built* query (the pure ``Spec``, its mask expressions and the columns
it reads; see :func:`jaas.engine.session.analysis.build_query`) on a dataset and returns the
result with typed :class:`BackendInfo`. ``coincidence``/``ibd`` exist once, in
``jaas.engine.session.analysis``; a backend only decides where the partitions run.

Backends are chosen by name or address, in the style of distributed's comm registry:
``"local"`` (this process), ``"tcp://HOST:PORT"`` (Dask; wired by the top-level ``jaas``
package in ``jaas.BACKENDS``, so the engine never imports a driver layer), any scheme
registered with
:func:`register_backend`, or published by another package as an entry point of group
``jaas.backends`` named after the scheme (e.g. ``spark = "mypkg.spark:SparkBackend"``),
loaded only when first asked for.
"""

from __future__ import annotations

import contextlib
import importlib
import math
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from jaas.engine.core.correlate import Result, Spec, correlate
from jaas.engine.lang.expr import Expr
from jaas.errors import ConfigError

if TYPE_CHECKING:
    from jaas.engine.session.dataset import Dataset

__all__ = [
    "Backend",
    "BackendInfo",
    "BuiltQuery",
    "Execution",
    "LocalBackend",
    "backend_names",
    "local_threads",
    "register_backend",
    "resolve_backend",
]

# Below this many events per thread, a second partition costs about what it saves
# (its halo, the merge, a thread hand-off): auto threads keep a small query on one.
AUTO_EVENTS_PER_THREAD = 1_000_000


def local_threads(threads: int | None, n_events: int) -> int:
    """Threads of a local query over ``n_events`` events.

    ``threads`` when given; else ``JAAS_THREADS`` when set to a number; else (auto) one
    per usable core (the process's CPU affinity, and JupyterHub's ``CPU_LIMIT`` when a
    spawner set one), as long as each thread gets ``AUTO_EVENTS_PER_THREAD`` events.
    The result is identical for any number.

    Raises:
        ConfigError: ``threads`` below 1, or a bad ``JAAS_THREADS``.
    """
    from jaas.settings import settings

    if threads is None:
        threads = settings().threads
    if threads is not None:
        if threads < 1:
            raise ConfigError(f"threads={threads}: give at least 1")
        return int(threads)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    limit = os.environ.get("CPU_LIMIT", "")
    # not ours to refuse: JupyterHub's variable, ignored when it is not a number
    with contextlib.suppress(ValueError, OverflowError):
        cores = min(cores or 1, max(1, math.floor(float(limit)))) if limit else cores
    return max(1, min(cores or 1, n_events // AUTO_EVENTS_PER_THREAD))


ENTRY_POINT_GROUP = "jaas.backends"


@dataclass
class BackendInfo:
    """How a query ran: backend name and address, partitions, lost files, timing.

    ``partitions`` lists ``(index, t_lo, t_hi, where)``; ``owners`` maps file paths to
    the worker owning them and ``lost`` unreachable files to the reason (distributed
    backends only).
    """

    name: str = "local"
    address: str = ""
    partitions: list[tuple[int, int, int, str]] = field(default_factory=list)
    owners: dict[str, str | None] = field(default_factory=dict)
    lost: dict[str, str] = field(default_factory=dict)
    attempts: int = 1
    seconds: float = 0.0

    def describe(self) -> str:
        return f"{self.name} {self.address}".strip()


@dataclass(frozen=True)
class BuiltQuery:
    """A coincidence query ready to run: the pure spec, the masks it needs (name ->
    condition) and the index columns to read."""

    spec: Spec
    exprs: Mapping[str, Expr]
    columns: tuple[str, ...]


@dataclass
class Execution:
    """What a backend returns: the dataset actually analysed (a distributed backend may
    cut unreachable files), the merged result, the stream columns and masks, and info."""

    dataset: Dataset
    result: Result
    columns: Mapping[str, np.ndarray]  # a distributed backend may load them lazily
    masks: Mapping[str, np.ndarray]
    info: BackendInfo


@runtime_checkable
class Backend(Protocol):
    """Runs built queries on datasets. A backend made from an address by
    :func:`resolve_backend` for one query is closed after it (its optional ``close()``)."""

    name: str

    def run(
        self,
        ds: Dataset,
        query: BuiltQuery,
        *,
        threads: int = 1,
        partition_events: int | None = None,
        label: str = "query",
    ) -> Execution: ...


class LocalBackend:
    """This process: columns through the dataset's cache, partitions on threads.

    ``on_progress(done, total)`` is called as partitions finish; with it, a long stream
    (over ``PROGRESS_EVENTS`` events, no partition size given) is cut into 4 partitions
    so that progress moves (the result is identical for any partitioning).
    """

    name = "local"
    PROGRESS_EVENTS = 2_000_000

    def __init__(self, on_progress: Callable[[int, int], None] | None = None) -> None:
        self.on_progress = on_progress

    def run(
        self,
        ds: Dataset,
        query: BuiltQuery,
        *,
        threads: int = 1,
        partition_events: int | None = None,
        label: str = "query",
    ) -> Execution:
        from jaas.engine.session.masks import cached_masks
        from jaas.engine.session.stream import run_streaming, should_stream

        del label
        if should_stream(ds, query):  # data above the cache budget: file by file
            return run_streaming(ds, query, threads=threads)
        started = time.perf_counter()
        cols = ds.load(list(query.columns))
        masks = cached_masks(ds.cache, ds._fingerprint(), query.exprs, cols, threads=threads)
        stream: dict[str, np.ndarray] = {**cols, **masks}
        bad = np.array([[lost.start, lost.end] for lost in ds.lost], np.int64).reshape(-1, 2)
        if partition_events is None and threads > 1:
            partition_events = max(1, len(cols["t"]) // threads + 1)
        big = len(cols["t"]) > self.PROGRESS_EVENTS
        if self.on_progress is not None and partition_events is None and big:
            partition_events = len(cols["t"]) // 4 + 1  # a few steps: merging costs too
        result = correlate(
            stream,
            query.spec,
            ds.segments,
            bad=bad,
            partition_events=partition_events,
            threads=threads,
            veto_memo=ds.veto_memo,
            on_partition=self.on_progress,
        )
        info = BackendInfo("local", seconds=time.perf_counter() - started)
        return Execution(ds, result, cols, masks, info)


# --- registry ------------------------------------------------------------------------
Factory = Callable[[Any], Backend]
_REGISTRY: dict[str, Factory | str] = {}
_LOCK = threading.Lock()


def register_backend(scheme: str, factory: Factory | str) -> None:
    """Make ``scheme://...`` (or the bare name ``scheme``) choose a backend.

    Args:
        scheme: e.g. ``"tcp"``, ``"spark"``.
        factory: called with the address (or a client object) and returning a
            ``Backend``; or ``"module:attribute"`` of such a callable, imported on first
            use.
    """
    with _LOCK:
        _REGISTRY[scheme.lower()] = factory


def backend_names() -> list[str]:
    """Registered schemes and names (without entry points not loaded yet)."""
    with _LOCK:
        return sorted({"local", *_REGISTRY, *_defaults()})


def _defaults() -> Mapping[str, str]:
    """The driver backends wired by the top-level package (``jaas.BACKENDS``)."""
    top = importlib.import_module("jaas")
    return getattr(top, "BACKENDS", {})


def _factory(scheme: str) -> Factory:
    with _LOCK:
        got = _REGISTRY.get(scheme)
    if got is None:
        got = _defaults().get(scheme)
    if got is None:
        found = [ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name == scheme]
        if not found:
            known = ", ".join(repr(n) for n in backend_names())
            raise ConfigError(f"no analysis backend for {scheme!r}; known: {known}")
        got = found[0].value
    if isinstance(got, str):
        module, _, attr = got.partition(":")
        try:
            loaded = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as exc:
            raise ConfigError(f"backend {scheme!r} cannot be loaded from {got!r}: {exc}") from exc
        register_backend(scheme, loaded)
        return loaded
    return got


_DEFAULT: dict[str, Backend] = {}  # JAAS_SCHEDULER -> its backend, one per process


def _default_backend() -> Backend:
    """``JAAS_SCHEDULER`` (set by the hub's spawner, or by a user) when given: one
    backend per process, kept open so a kernel connects once; else the local one."""
    from jaas.settings import settings

    address = settings().scheduler
    if address is None or address == "local":
        return LocalBackend()
    with _LOCK:
        got = _DEFAULT.get(address)
    if got is None:
        got = resolve_backend(address)
        with _LOCK:
            got = _DEFAULT.setdefault(address, got)
    return got


def resolve_backend(backend: Backend | str | None = None, client: Any = None) -> Backend:
    """The backend for ``backend`` (a name, an address or a ``Backend``) or for a client
    object (a ``Backend`` itself, or a ``distributed.Client``: the ``dask`` factory).

    Raises:
        ConfigError: both given, or an unknown name or scheme.
    """
    if backend is not None and client is not None:
        raise ConfigError("give backend= or client=, not both")
    if client is not None:
        if isinstance(client, Backend):
            return client
        return _factory("dask")(client)
    if backend is None:
        return _default_backend()
    if backend == "local":
        return LocalBackend()
    if isinstance(backend, Backend):
        return backend
    if not isinstance(backend, str):
        raise ConfigError(f"backend must be a name or an address, got {type(backend).__name__}")
    text = backend.strip()
    scheme, sep, _ = text.partition("://")
    if sep:
        return _factory(scheme.lower())(text)
    if text.endswith(".json"):  # a Dask scheduler file
        return _factory("dask")(text)
    head, bracket, _ = text.partition("[")
    if bracket:  # a name with arguments, e.g. Spark's "local[4]": registered as "local[]"
        return _factory(f"{head.lower()}[]")(text)
    return _factory(text.lower())(None)
