"""The distributed query: the engine's partition step run on Dask workers, near the data.

For each time partition one ``run_part`` task runs on the worker owning the file that
holds most of its core (``workers=`` restriction, loose with shared storage so that a
lost worker's tasks move; strict with node-local storage). By default there is one
partition per run of consecutive files a worker owns (``plan.block_cuts``, planned on the
first attempt and kept for the retries): each worker correlates its time range as one
stream, as the local engine does, and the client merges one result per worker, not one
per file. Rows of the halo that live in files owned by other workers come from
``load_piece`` tasks on those owners, Dask moving them worker to worker; a halo may span
any number of partitions and workers. The client merges the partial results with the
engine's ``merge``: the result is identical to the local engine's. The per-event veto
bits and the veto intervals stay on the workers that computed them (``KeptVetoes``): the
result is a ``LazyResult`` fetching them on first access (recomputed if a worker dropped
or lost them). With node-local storage, files whose worker is lost are cut from the
dataset, reported as ``LostData`` and the query reruns on the rest (warm caches).
"""

from __future__ import annotations

import dataclasses
import functools
import os
import queue
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from jaas.cluster import plan as _plan
from jaas.cluster import registry as _registry
from jaas.cluster.columns import LazyColumns
from jaas.cluster.direct import Job, WorkerGone, run_jobs
from jaas.cluster.direct import fetch_kept as _direct_fetch_kept
from jaas.cluster.worker import (
    FileRef,
    Kept,
    PartOutput,
    PartTask,
    Query,
    fetch_kept,
    load_files,
    load_piece,
    run_parts,
    unpack_bits,
    unpack_intervals,
)
from jaas.engine.core.correlate import Spec
from jaas.engine.core.exposure import normalize_intervals
from jaas.engine.core.partition import merge
from jaas.engine.lang.expr import Expr
from jaas.engine.session.backend import BackendInfo, BuiltQuery, Execution
from jaas.engine.session.results import LazyResult
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


BATCHES_PER_WORKER = 4  # tasks per worker and query: few round trips, yet a lost
# worker's unfinished share is noticed and moved while the others still run


def _batches(
    parts: list[_plan.PlannedPartition], refs: list[FileRef], owners: dict[str, str | None]
) -> dict[str, list[list[_plan.PlannedPartition]]]:
    """Per home worker, its partitions (time order) cut into a few consecutive batches."""
    per: dict[str, list[_plan.PlannedPartition]] = {}
    for p in parts:
        home = owners[refs[p.home].path]
        if home is None:
            raise JaasError(f"no worker owns {refs[p.home].path}")
        per.setdefault(home, []).append(p)
    out: dict[str, list[list[_plan.PlannedPartition]]] = {}
    for w, ps in per.items():
        k = min(len(ps), BATCHES_PER_WORKER)
        out[w] = [ps[len(ps) * i // k : len(ps) * (i + 1) // k] for i in range(k)]
    return out


def _jobs(
    parts: list[_plan.PlannedPartition], refs: list[FileRef], owners: dict[str, str | None]
) -> list[Job]:
    """A few batches per worker (partitions on the owner of their home file), each with
    the rows of other workers' files it needs (covering what all its partitions need)."""
    jobs: list[Job] = []
    for home, batches in _batches(parts, refs, owners).items():
        for batch in batches:
            need: dict[int, tuple[int, int]] = {}  # other owners' files: rows [lo, hi]
            for p in batch:
                for i in p.files:
                    owner = owners[refs[i].path]
                    if owner is None:
                        raise JaasError(f"no worker owns {refs[i].path}")
                    if owner != home:
                        lo, hi = need.get(i, (p.lo, p.hi))
                        need[i] = (min(lo, p.lo), max(hi, p.hi))
            slot = {i: k for k, i in enumerate(need)}
            needs = [(str(owners[refs[i].path]), refs[i], lo, hi) for i, (lo, hi) in need.items()]
            tasks = []
            for p in batch:
                sources = tuple(slot[i] if i in slot else refs[i] for i in p.files)
                tasks.append(PartTask(p.index, p.t_lo, p.t_hi, p.lo, p.hi, sources))
            jobs.append(Job(home, tasks, needs, [p.index for p in batch]))
    return jobs


def _submit(
    client: Any,
    parts: list[_plan.PlannedPartition],
    refs: list[FileRef],
    query: Query,
    owners: dict[str, str | None],
) -> tuple[dict[Any, list[int]], set[str]]:
    """A ``run_parts`` task per job (see ``_jobs``) and one ``load_piece`` per other
    worker's file it needs; strict restrictions: a task runs where its columns are
    cached (a lost worker's tasks are resubmitted by ``run``)."""
    futures: dict[Any, list[int]] = {}
    targets: set[str] = set()
    for job in _jobs(parts, refs, owners):
        targets.add(job.home)
        targets.update(w for w, _, _, _ in job.needs)
        pieces = [
            client.submit(load_piece, ref, query, lo, hi, workers=[w], pure=False)
            for w, ref, lo, hi in job.needs
        ]
        f = client.submit(run_parts, job.tasks, query, *pieces, workers=[job.home], pure=False)
        futures[f] = job.indices
    return futures, targets


def _direct(
    cluster: Cluster,
    parts: list[_plan.PlannedPartition],
    refs: list[FileRef],
    query: Query,
    owners: dict[str, str | None],
    out: dict[int, PartOutput],
    paths: list[str],
    report: Callable[[], None],
) -> str:
    """Run ``parts`` over the direct path into ``out``: "done", "gone" (a worker did not
    answer: the scheduler has noticed by the time this returns) or "failed" (another
    error: the task path reruns what is missing and reports it)."""
    client = cluster.client

    def alive() -> set[str]:
        return set(client.run_on_scheduler(_registry.status, paths)[1])

    status = "done"
    gone: set[str] = set()
    for job, got in run_jobs(client, _jobs(parts, refs, owners), query, alive):
        if isinstance(got, BaseException):
            if isinstance(got, WorkerGone):
                status = "gone"
                gone.update([job.home, *(w for w, _, _, _ in job.needs)])
            elif status == "done":
                status = "failed"
            continue
        for k, o in zip(job.indices, got, strict=True):
            out[k] = o
            report()
    cluster.paths["direct"] += 1
    if status == "gone":
        cluster.forget()
        _await_departure(client, paths, gone)
    return status


DEPARTURE_WAIT_S = 10.0  # for the scheduler to notice a worker that stopped answering


def _await_departure(client: Any, paths: list[str], workers: set[str]) -> None:
    """Wait until the scheduler has dropped at least one of ``workers`` (or they answer
    it again), so that the re-planned query does not send them work."""
    deadline = time.monotonic() + DEPARTURE_WAIT_S
    while time.monotonic() < deadline:
        _, alive = client.run_on_scheduler(_registry.status, paths)
        if workers - set(alive):
            return
        time.sleep(0.05)


GATHER_TIMEOUT_S = 5.0  # per finished task's result (see _collect)


def _collect(
    client: Any,
    futures: dict[Any, list[int]],
    out: dict[int, PartOutput],
    paths: list[str],
    lost: dict[str, str],
    targets: set[str],
    report: Callable[[], None],
) -> str:
    """Gather results into ``out`` as they complete: "done", or "lost" (files became
    unreachable) or "moved" (a worker we wait on is gone); both checked whenever nothing
    completes for a while or a task fails."""
    ready: queue.SimpleQueue[Any] = queue.SimpleQueue()
    for f in futures:
        f.add_done_callback(ready.put)  # called from the client's threads as tasks end
    pending = set(futures)
    while pending:
        try:
            done = [ready.get(timeout=0.5)]
        except queue.Empty:
            done = []
        while not ready.empty():
            done.append(ready.get())
        done = [f for f in done if f in pending]
        finished = [f for f in done if f.status == "finished"]
        failed = [f for f in done if f.status != "finished"]
        stalled = False
        for f in finished:
            try:
                # with a deadline: a result held by a worker that died meanwhile would be
                # recomputed only on that worker (restricted), i.e. never
                value = f.result(timeout=GATHER_TIMEOUT_S)
            except TimeoutError:
                stalled = True
                ready.put(f)  # tried again unless the check below re-plans
                continue
            pending.discard(f)
            for k, o in zip(futures[f], value, strict=True):
                out[k] = o
                report()
        if finished and not failed and not stalled:
            continue
        now_lost, alive = client.run_on_scheduler(_registry.status, paths)
        status = "lost" if set(now_lost) - set(lost) else ""
        if not status and targets - set(alive):
            status = "moved"
        if status:  # the caller re-plans (and redoes everything if files were lost)
            client.cancel(list(pending))
            return status
        if failed:
            failed[0].result()  # raises the task's error
    return "done"


def _loader(
    cluster: Cluster, ds: Dataset, query: Query, refs: list[FileRef], local: bool
) -> Callable[[], dict[str, np.ndarray]]:
    """Loads every column and mask of ``ds`` once: here when its files are readable
    (shared storage), else from the workers owning them."""

    def here() -> dict[str, np.ndarray]:
        from jaas.engine.session.masks import cached_masks

        cols = ds.load(list(query.names))
        return {**cols, **cached_masks(ds.cache, ds._fingerprint(), query.exprs, cols)}

    def remote() -> dict[str, np.ndarray]:
        client = cluster.client
        triples = [(os.path.abspath(f.path), f.t_min, f.t_max) for f in ds.files]
        owners, _, _ = client.run_on_scheduler(_registry.assign, triples, local)
        runs: list[tuple[str | None, list[FileRef]]] = []
        for r in refs:
            w = owners.get(r.path)
            if not runs or runs[-1][0] != w:
                runs.append((w, []))
            runs[-1][1].append(r)
        if any(w is None for w, _ in runs):
            raise JaasError("the result's columns were on a lost worker: rerun the query")
        got = client.gather(
            [client.submit(load_files, rs, query, workers=[w], pure=False) for w, rs in runs]
        )
        names = list(dict.fromkeys(["t", *query.names, *query.exprs]))
        return {n: np.concatenate([g[n] for g in got]) for n in names}

    readable = not local and all(os.path.exists(r.path) for r in refs)
    return functools.cache(here if readable else remote)


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
) -> tuple[Dataset, Any, LazyColumns, LazyColumns, QueryInfo]:
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
    info = BackendInfo("dask", cluster.address)
    lost: dict[str, str] = {}
    out: dict[int, PartOutput] = {}
    token = uuid.uuid4().hex  # the workers keep this query's veto arrays under it
    limit = 0  # attempts: 2 + the number of workers of the first one
    retry = False  # the last attempt counts (workers changed), not a direct-path error
    direct = cluster.direct  # tried first, once; the task path is the fallback
    cuts: list[int] | None = None  # by default: one partition per worker's run of files
    with progress(total=0, desc=desc, unit="part") as bar:
        while True:
            if retry:
                info.attempts += 1
            owners, now_lost, alive = cluster.assignment(triples, local, cached=direct)
            planning = not limit
            if planning:
                limit = 2 + max(len(alive), 1)
            if set(now_lost) - set(lost):
                out.clear()  # the good time changes: every partition is redone
            lost.update(now_lost)
            sub = _plan.without_files(ds, lost, LOST_REASON)
            if not sub.files:
                raise JaasError(f"every file of dataset {ds.name!r} is unreachable: {sorted(lost)}")
            segments = normalize_intervals(sub.segments, what="segments")
            query = Query(names, exprs, spec, segments, before, after, keep=token)
            # zero-row files hold no rows and no time: they take no part in the plan
            files = [f for f in sub.files if f.n_events > 0] or sub.files
            if planning and partition_events is None and partition_ns is None:
                # one partition per worker's run of files, kept for the retries: a
                # partition's result does not depend on where it runs
                owner = [owners.get(os.path.abspath(f.path)) for f in files]
                cuts = _plan.block_cuts(files, owner, threads=getattr(cluster, "threads", None))
            parts = _plan.plan(
                files, before, after, partition_ns=partition_ns,
                partition_events=partition_events, cuts=cuts,
            )  # fmt: skip
            bar.reset(total=len(parts))
            bar.update(len(out))

            def report(n: int = len(parts)) -> None:
                bar.update(1)
                if on_progress is not None:
                    on_progress(len(out), n)

            todo = [p for p in parts if p.index not in out]
            refs = _refs(files)
            if direct:
                direct = False
                status = _direct(cluster, todo, refs, query, owners, out, paths, report)
                if status == "done":
                    break
                retry = status == "gone"
                continue
            cluster.paths["tasks"] += 1
            futures, targets = _submit(client, todo, refs, query, owners)
            status = _collect(client, futures, out, paths, lost, targets, report)
            if status == "done":
                break
            retry = True
            if info.attempts >= limit:
                raise JaasError(f"workers kept failing; unreachable files: {sorted(lost)}")
    outputs = [out[p.index] for p in parts]
    bad = np.array([[x.start, x.end] for x in sub.lost], np.int64).reshape(-1, 2)
    result = merge([_with_vetoes(o, _shipped(o)) for o in outputs], spec, segments, bad=bad)
    if any(o.packed is None for o in outputs):  # left on the workers: fetched when asked
        fetch = _VetoFetch(cluster, local, triples, parts, outputs, refs, query, lost)
        result = LazyResult.wrap(result, functools.partial(fetch, spec, segments, bad))
        cluster.track(result)  # fetched before the connection closes
    if lost:
        _count_lost_time(result.exposure, ds, sub, bad)
    rows, first = np.unique(np.concatenate([o.rows for o in outputs]), return_index=True)
    stream = list(dict.fromkeys(["t", *names]))
    values = {n: np.concatenate([o.values[n] for o in outputs])[first] for n in stream}
    load = _loader(cluster, sub, query, refs, local)
    cols = LazyColumns(stream, load, rows, values)
    masks = LazyColumns(list(exprs), load)
    info.partitions = [
        (p.index, p.t_lo, p.t_hi, o.worker) for p, o in zip(parts, outputs, strict=True)
    ]
    info.owners = dict(owners)
    info.lost = dict(lost)
    info.seconds = time.perf_counter() - t_start
    return sub, result, cols, masks, info


_count_lost_time = _plan.count_lost_time


def _shipped(o: PartOutput) -> Kept | None:
    """The veto arrays a partition output carries, None if they stayed on its worker."""
    if o.packed is None:
        return None
    return (o.packed, o.intervals, o.partial.veto_intervals)


def _with_vetoes(o: PartOutput, kept: Kept | None) -> Any:
    """The output's partial result with the veto arrays ``kept`` unpacked (None: empty)."""
    if kept is None:
        empty = np.zeros(0, np.uint32)
        return dataclasses.replace(
            o.partial, veto_bits=empty, veto_intervals=np.zeros((0, 2), np.int64)
        )
    packed, iv, raw = kept
    part = o.partial.part
    bits = unpack_bits(packed, part.core_stop - part.core_start)
    intervals = raw if iv is None else unpack_intervals(iv)
    return dataclasses.replace(o.partial, veto_bits=bits, veto_intervals=intervals)


FETCH_TIMEOUT_S = 60.0  # per worker's kept veto arrays; past it they are recomputed


@dataclasses.dataclass
class _VetoFetch:
    """Fetches a query's veto arrays from the workers that ran its partitions; those
    gone (worker lost, or dropped from its ``KeptVetoes``) are recomputed on the
    current owners (identical: a partition's result depends on its rows only)."""

    cluster: Cluster
    local: bool
    triples: list[tuple[str, int, int]]
    parts: list[_plan.PlannedPartition]
    outputs: list[PartOutput]
    refs: list[FileRef]
    query: Query
    lost: dict[str, str]

    def __call__(
        self, spec: Spec, segments: np.ndarray, bad: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        client = self.cluster.client
        if getattr(client, "status", "running") != "running":
            raise JaasError(
                "this result's veto bits stayed on the cluster and its connection is "
                "closed: read res.result.veto_bits before closing the distributed.Client "
                "(jaas.cluster.Cluster.close fetches them itself)"
            )
        cluster = self.cluster
        owners, now_lost, alive = cluster.assignment(self.triples, self.local)
        by_worker: dict[str, list[int]] = {}
        for k, o in enumerate(self.outputs):
            by_worker.setdefault(o.worker, []).append(k)
        got: dict[int, Kept] = {}
        for w, ks in by_worker.items():
            if w not in alive:
                continue
            indices = [self.parts[k].index for k in ks]
            try:
                values = self._fetch(w, indices)
            except Exception:  # the worker died or hangs: recomputed below
                continue
            got.update({k: v for k, v in zip(ks, values, strict=True) if v is not None})
        missing = [self.parts[k] for k in range(len(self.outputs)) if k not in got]
        if missing:
            cluster.forget()  # where to recompute: the scheduler's current view
            owners, now_lost, alive = cluster.assignment(self.triples, self.local, cached=False)
            if set(now_lost) - set(self.lost):
                raise JaasError(
                    "the result's veto bits were on a lost worker whose files are now "
                    f"unreachable ({sorted(set(now_lost) - set(self.lost))}): rerun the query"
                )
            ship = dataclasses.replace(self.query, keep="")
            futures, targets = _submit(client, missing, self.refs, ship, owners)
            out: dict[int, PartOutput] = {}
            paths = [p for p, _, _ in self.triples]
            status = _collect(client, futures, out, paths, dict(self.lost), targets, lambda: None)
            if status != "done":
                raise JaasError("workers were lost while fetching the veto bits: rerun the query")
            at = {p.index: k for k, p in enumerate(self.parts)}
            got.update({at[i]: kept for i, o in out.items() if (kept := _shipped(o))})
        partials = [_with_vetoes(o, got[k]) for k, o in enumerate(self.outputs)]
        merged = merge(partials, spec, segments, bad=bad)
        return merged.veto_bits, merged.veto_intervals

    def _fetch(self, worker: str, indices: list[int]) -> list[Kept | None]:
        """The kept arrays of ``indices`` on ``worker``: direct, else a task."""
        client = self.cluster.client
        if self.cluster.direct:
            try:
                got: list[Kept | None] = _direct_fetch_kept(
                    client, worker, self.query.keep, indices, FETCH_TIMEOUT_S
                )
                return got
            except Exception:  # the task below says what is wrong
                pass
        f = client.submit(fetch_kept, self.query.keep, indices, workers=[worker], pure=False)
        try:
            values: list[Kept | None] = f.result(timeout=FETCH_TIMEOUT_S)
        except Exception:
            client.cancel([f])
            raise
        return values


class DaskBackend:
    """The engine's ``Backend`` on a Dask cluster (``backend="tcp://HOST:8786"``).

    Args:
        target: a ``jaas.cluster.Cluster``, a ``distributed.Client``, a scheduler
            address or scheduler file, or None for the cluster of ``jaas cluster up``.
        partition_ns: core duration of a partition (default: one partition per run of
            consecutive files a worker owns, see ``plan.block_cuts``).
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
        """Disconnect if this backend opened the connection (an address was given);
        results still holding veto arrays on the workers fetch them first."""
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
