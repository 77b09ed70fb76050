"""The distributed query: the engine's partition step run on Dask workers, near the data.

For each time partition one ``run_part`` task runs on the worker owning the file that
holds most of its core (``workers=`` restriction, loose with shared storage so that a
lost worker's tasks move; strict with node-local storage). Rows of the halo that live in
files owned by other workers come from ``load_piece`` tasks on those owners, Dask moving
them worker to worker; a halo may span any number of partitions and workers. The client
merges the partial results with the engine's ``merge``: the result is identical to the
local engine's. With node-local storage, files whose worker is lost are cut from the
dataset, reported as ``LostData`` and the query reruns on the rest (warm caches).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from jaas.cluster import plan as _plan
from jaas.cluster import registry as _registry
from jaas.cluster.worker import FileRef, PartOutput, PartTask, Query, load_piece, run_part
from jaas.engine.core.correlate import Spec
from jaas.engine.core.exposure import normalize_intervals
from jaas.engine.core.partition import merge
from jaas.engine.lang.expr import Expr
from jaas.engine.session.backend import BackendInfo, BuiltQuery, Execution
from jaas.errors import ConfigError, JaasError
from jaas.progress import progress

if TYPE_CHECKING:
    from jaas.cluster.client import Cluster
    from jaas.engine.session.analysis import IBDSelection
    from jaas.engine.session.dataset import Dataset
    from jaas.engine.session.results import CoincidenceResult

__all__ = ["DaskBackend", "QueryInfo", "coincidence", "ibd"]

LOST_REASON = "unreachable: its worker was lost (node-local storage)"


QueryInfo = BackendInfo  # how a distributed query ran (the engine's typed backend info)


_refs = _plan.file_refs


def _submit(
    client: Any,
    parts: list[_plan.PlannedPartition],
    refs: list[FileRef],
    query: Query,
    owners: dict[str, str | None],
) -> tuple[dict[int, Any], set[str]]:
    """One ``run_part`` per partition on the owner of its home file, ``load_piece`` tasks
    on the owners of its other files; strict restrictions: a task runs where its
    columns are cached (a lost worker's tasks are resubmitted by ``run``)."""
    futures: dict[int, Any] = {}
    targets: set[str] = set()
    for p in parts:
        home = owners[refs[p.home].path]
        if home is None:
            raise JaasError(f"no worker owns {refs[p.home].path}")
        sources: list[FileRef | int] = []
        pieces: list[Any] = []
        for i in p.files:
            owner = owners[refs[i].path]
            if owner is None:
                raise JaasError(f"no worker owns {refs[i].path}")
            targets.add(owner)
            if owner == home:
                sources.append(refs[i])
                continue
            sources.append(len(pieces))
            pieces.append(
                client.submit(load_piece, refs[i], query, p.lo, p.hi, workers=[owner], pure=False)
            )
        task = PartTask(p.index, p.t_lo, p.t_hi, p.lo, p.hi, tuple(sources))
        futures[p.index] = client.submit(run_part, task, query, *pieces, workers=[home], pure=False)
    return futures, targets


def _collect(
    client: Any,
    futures: dict[int, Any],
    out: dict[int, PartOutput],
    paths: list[str],
    lost: dict[str, str],
    targets: set[str],
    report: Callable[[], None],
) -> str:
    """Gather results into ``out`` as they complete (fetched in the background):
    "done", or "lost" (files became unreachable) or "moved" (a worker we wait on is
    gone); both checked whenever nothing completes for a while or a task fails."""
    from distributed import as_completed

    index = {f.key: k for k, f in futures.items()}
    stream = as_completed(
        list(futures.values()), with_results=True, raise_errors=False, loop=client.loop
    )
    pending = set(futures)
    idle_since = time.monotonic()
    while pending:
        batch = stream.next_batch(block=False) if stream.has_ready() else []
        failed = []
        for f, value in batch:
            k = index[f.key]
            if f.status != "finished":
                failed.append(f)
                continue
            pending.discard(k)
            out[k] = value
            report()
        if batch and not failed:
            idle_since = time.monotonic()
            continue
        if failed or time.monotonic() - idle_since > 0.5:
            idle_since = time.monotonic()
            now_lost, alive = client.run_on_scheduler(_registry.status, paths)
            status = "lost" if set(now_lost) - set(lost) else ""
            if not status and targets - set(alive):
                status = "moved"
            if status:  # the caller re-plans (and redoes everything if files were lost)
                client.cancel([futures[k] for k in pending])
                return status
            if failed:
                failed[0].result()  # raises the task's error
        time.sleep(0.002)
    return "done"


def run(
    cluster: Cluster,
    ds: Dataset,
    spec: Spec,
    exprs: dict[str, Expr],
    needed: list[str],
    *,
    partition_ns: int | None = None,
    partition_events: int | None = None,
    local_storage: bool | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    desc: str = "query",
) -> tuple[Dataset, Any, dict[str, np.ndarray], dict[str, np.ndarray], QueryInfo]:
    """Run ``spec`` over ``ds`` on the cluster: (dataset actually used, Result, columns,
    masks, QueryInfo)."""
    t_start = time.perf_counter()
    client = cluster.client
    local = cluster.local_storage if local_storage is None else local_storage
    _plan.check_time_order(ds.files)
    triples = [(os.path.abspath(f.path), f.t_min, f.t_max) for f in ds.files]
    paths = [p for p, _, _ in triples]
    before, after = spec.halo()
    names = tuple(sorted(needed))
    n_workers = max(len(cluster.workers()), 1)
    if partition_events is None and partition_ns is None and ds.files:
        biggest = max(f.n_events for f in ds.files)
        partition_events = min(biggest, -(-ds.n_events // (2 * n_workers)))
    info = BackendInfo("dask", cluster.address)
    lost: dict[str, str] = {}
    out: dict[int, PartOutput] = {}
    with progress(total=0, desc=desc, unit="part") as bar:
        for attempt in range(1, 3 + n_workers):
            info.attempts = attempt
            owners, now_lost, _ = client.run_on_scheduler(_registry.assign, triples, local)
            if set(now_lost) - set(lost):
                out.clear()  # the good time changes: every partition is redone
            lost.update(now_lost)
            sub = _plan.without_files(ds, lost, LOST_REASON)
            if not sub.files:
                raise JaasError(f"every file of dataset {ds.name!r} is unreachable: {sorted(lost)}")
            segments = normalize_intervals(sub.segments, what="segments")
            query = Query(names, exprs, spec, segments, before, after, (*names, *exprs))
            # zero-row files hold no rows and no time: they take no part in the plan
            files = [f for f in sub.files if f.n_events > 0] or sub.files
            parts = _plan.plan(
                files, before, after, partition_ns=partition_ns,
                partition_events=partition_events,
            )  # fmt: skip
            bar.reset(total=len(parts))
            bar.update(len(out))

            def report(n: int = len(parts)) -> None:
                bar.update(1)
                if on_progress is not None:
                    on_progress(len(out), n)

            todo = [p for p in parts if p.index not in out]
            futures, targets = _submit(client, todo, _refs(files), query, owners)
            status = _collect(client, futures, out, paths, lost, targets, report)
            if status == "done":
                break
        else:
            raise JaasError(f"workers kept failing; unreachable files: {sorted(lost)}")
    outputs = [out[p.index] for p in parts]
    partials = [o.partial for o in outputs]
    bad = np.array([[x.start, x.end] for x in sub.lost], np.int64).reshape(-1, 2)
    result = merge(partials, spec, segments, bad=bad)
    if lost:
        _count_lost_time(result.exposure, ds, sub, bad)
    cols = {n: np.concatenate([o.core[n] for o in outputs]) for n in names}
    masks = {n: np.concatenate([o.core[n] for o in outputs]) for n in exprs}
    info.partitions = [
        (p.index, p.t_lo, p.t_hi, o.worker) for p, o in zip(parts, outputs, strict=True)
    ]
    info.owners = owners
    info.lost = dict(lost)
    info.seconds = time.perf_counter() - t_start
    return sub, result, cols, masks, info


_count_lost_time = _plan.count_lost_time


class DaskBackend:
    """The engine's ``Backend`` on a Dask cluster (``backend="tcp://HOST:8786"``).

    Args:
        target: a ``jaas.cluster.Cluster``, a ``distributed.Client``, a scheduler
            address or scheduler file, or None for the cluster of ``jaas cluster up``.
        partition_ns: core duration of a partition (default: by events, two per worker).
        local_storage: files are on node-local storage: a lost worker's files are
            reported as lost data instead of being read by another worker (default: the
            cluster handle's setting).
        on_progress: called with (partitions done, total) as results arrive.
    """

    name = "dask"

    def __init__(
        self,
        target: Cluster | Any = None,
        *,
        partition_ns: int | None = None,
        local_storage: bool | None = None,
        on_progress: Callable[[int, int], None] | None = None,
    ) -> None:
        from jaas.cluster.client import as_cluster, connect

        self._owned = target is None or isinstance(target, str)  # a connection made here
        self.cluster = connect(None) if target is None else as_cluster(target)
        self.partition_ns = partition_ns
        self.local_storage = local_storage
        self.on_progress = on_progress

    def close(self) -> None:
        """Disconnect if this backend opened the connection (an address was given)."""
        if self._owned:
            self.cluster.close()

    def run(
        self,
        ds: Dataset,
        query: BuiltQuery,
        *,
        threads: int = 1,
        partition_events: int | None = None,
        label: str = "query",
    ) -> Execution:
        """Run ``query`` on the cluster (``threads`` is ignored: a worker runs one
        partition per thread)."""
        del threads
        sub, result, cols, masks, info = run(
            self.cluster, ds, query.spec, dict(query.exprs), list(query.columns),
            partition_ns=self.partition_ns, partition_events=partition_events,
            local_storage=self.local_storage, on_progress=self.on_progress, desc=label,
        )  # fmt: skip
        return Execution(sub, result, cols, masks, info)


def coincidence(
    ds: Dataset,
    *,
    client: Cluster | Any = None,
    partition_ns: int | None = None,
    local_storage: bool | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    **query: Any,
) -> CoincidenceResult:
    """``jaas.engine.session.analysis.coincidence`` on a Dask cluster: the same query arguments
    and the identical result, plus where to run (see ``DaskBackend``).

    Example:
        >>> c = jaas.cluster.connect("tcp://head:8786")                 # doctest: +SKIP
        >>> res = jaas.cluster.coincidence(ds, prompt="E > 0.7 MeV", delayed="E > 1.9 MeV",
        ...                                dt="1 ms", client=c)          # doctest: +SKIP
    """
    from jaas.engine.session.analysis import coincidence as run_query

    if client is None:
        raise ConfigError("no cluster: pass client=jaas.cluster.connect('tcp://HOST:8786')")
    backend = DaskBackend(
        client, partition_ns=partition_ns, local_storage=local_storage, on_progress=on_progress
    )
    return run_query(ds, backend=backend, **query)


def ibd(
    ds: Dataset,
    selection: IBDSelection | None = None,
    *,
    client: Cluster | Any = None,
    partition_ns: int | None = None,
    local_storage: bool | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    **changes: Any,
) -> CoincidenceResult:
    """The standard IBD selection on a Dask cluster (see ``jaas.engine.session.analysis.ibd``).

    Example:
        >>> res = jaas.cluster.ibd(ds, client=c, dr_max="1.2 m")    # doctest: +SKIP
    """
    from jaas.engine.session.analysis import ibd as run_ibd

    if client is None:
        raise ConfigError("no cluster: pass client=jaas.cluster.connect('tcp://HOST:8786')")
    backend = DaskBackend(
        client, partition_ns=partition_ns, local_storage=local_storage, on_progress=on_progress
    )
    partition_events = changes.pop("partition_events", None)
    return run_ibd(ds, selection, backend=backend, partition_events=partition_events, **changes)
