"""The engine's ``Backend`` on Apache Spark: ``backend="spark://HOST:7077"`` or ``"local[N]"``.

The driver plans time partitions aligned to the index files from their footers alone
(``jaas.cluster.plan``, as for Dask). The files' columns live in executor memory as a
persisted RDD with one Spark partition per file (``jaas.spark._store``), reused by later
queries on the same files: a second query with new cuts reads no file. Per query, each
file task evaluates the masks and sends every time partition the rows of its core and
halo (any window length, across executors); each partition task runs the engine's
partition step (``jaas.spark.executor``); core columns come back as Arrow IPC, and the
partial results are merged on the driver with the engine's ``merge``: the result is
identical to the local engine's. Failed tasks are retried by Spark
(``spark.task.maxFailures``), so a lost executor changes nothing in the result; files
the executors cannot read are cut from the dataset and their time reported as lost, as
on Dask (``jaas.cluster.plan.without_files``).
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from jaas.engine.session.backend import BackendInfo, BuiltQuery, Execution
from jaas.errors import ConfigError, JaasError
from jaas.settings import settings
from jaas.spark import _store

if TYPE_CHECKING:
    from jaas.engine.session.dataset import Dataset

__all__ = ["LOST_REASON", "SparkBackend", "spark_conf"]

LOST_REASON = "unreadable on the Spark executors (deleted or corrupt after the dataset was opened)"


def _pyspark() -> Any:
    try:
        import warnings

        with warnings.catch_warnings():  # pyspark 4 warns about pandas >= 3 at import
            warnings.filterwarnings(
                "ignore", "PySpark does not yet fully support pandas", FutureWarning
            )
            import pyspark
    except ImportError as exc:
        raise ConfigError(
            "the Spark backend needs: pip install 'jaas[spark]' (and Java 17)"
        ) from exc
    return pyspark


def spark_conf(master: str, app_name: str = "jaas") -> dict[str, str]:
    """The Spark settings jaas needs: reused Python workers (they cache masks and veto
    samples), this interpreter and its ``jaas`` sources on the executors, a loopback-safe
    driver host unless ``SPARK_DRIVER_HOST``/``spark.driver.host`` says otherwise."""
    import jaas

    src = os.path.dirname(os.path.dirname(os.path.abspath(jaas.__file__)))
    path = os.pathsep.join(p for p in (src, os.environ.get("PYTHONPATH", "")) if p)
    conf = {
        "spark.master": master,
        "spark.app.name": app_name,
        "spark.python.worker.reuse": "true",
        "spark.pyspark.python": sys.executable,
        "spark.pyspark.driver.python": sys.executable,
        "spark.executorEnv.PYTHONPATH": path,
        "spark.executorEnv.JAAS_PROGRESS": "0",
        "spark.driver.host": os.environ.get("SPARK_DRIVER_HOST", "127.0.0.1"),
        "spark.driver.bindAddress": os.environ.get("SPARK_DRIVER_BIND", "127.0.0.1"),
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",  # jaas shows its own progress bar
        "spark.task.maxFailures": "4",
    }
    budget = settings().cache_bytes
    if budget is not None:  # executors get the driver's budget, in bytes
        conf["spark.executorEnv.JAAS_CACHE_BYTES"] = str(budget)
    return conf


def _default_master() -> str:
    """``$SPARK_MASTER``, else the cluster of ``jaas cluster up --engine spark``, else
    ``local[*]``."""
    if os.environ.get("SPARK_MASTER"):
        return os.environ["SPARK_MASTER"]
    from jaas.spark.local import recorded

    try:
        return recorded().master_url
    except ConfigError:
        return "local[*]"


def _master(target: str | None) -> str:
    text = (target or "").strip()
    if text in ("", "spark"):
        return _default_master()
    if (text.startswith("local[") and text.endswith("]")) or text.startswith("spark://"):
        return text
    raise ConfigError(f"not a Spark master: {target!r}; use 'spark://HOST:PORT' or 'local[N]'")


class SparkBackend:
    """Runs built queries on a Spark cluster (``jaas.engine.session.backend.Backend``).

    Args:
        target: a master URL (``"spark://HOST:7077"``, ``"local[4]"``), a
            ``SparkContext`` or ``SparkSession``, or None for ``$SPARK_MASTER``
            (default ``local[*]``).
        partition_ns: core duration of a partition (default: by events, two per core).
        on_progress: called with (partitions done, total) while the job runs.
        conf: extra Spark settings.
    """

    name = "spark"

    def __init__(
        self,
        target: Any = None,
        *,
        partition_ns: int | None = None,
        on_progress: Callable[[int, int], None] | None = None,
        conf: dict[str, str] | None = None,
    ) -> None:
        self.partition_ns = partition_ns
        self.on_progress = on_progress
        self.last_files_read = 0  # index files read by the last query (0: all from memory)
        self.last_bytes_read = 0  # column bytes read by it
        self._owned = target is None or isinstance(target, str)
        if self._owned:
            master = _master(target)
            pyspark = _pyspark()
            active = pyspark.SparkContext._active_spark_context
            if active is not None:  # one SparkContext per process: share it, never stop it
                if str(active.master) != master:
                    raise ConfigError(
                        f"this process already runs Spark on {active.master}; "
                        f"cannot also connect to {master}: use backend={str(active.master)!r}"
                    )
                self._owned = False
                self.sc = active
                self.address = master
                return
            os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
            sc_conf = pyspark.SparkConf().setAll(
                list({**spark_conf(master), **(conf or {})}.items())
            )
            try:
                self.sc = pyspark.SparkContext.getOrCreate(sc_conf)
            except Exception as exc:  # Java missing, master unreachable...
                raise ConfigError(f"cannot start Spark on {master}: {exc}") from exc
        else:
            self.sc = getattr(target, "sparkContext", target)
        self.address = str(self.sc.master)

    def close(self) -> None:
        """Stop the SparkContext if this backend started it from a master URL."""
        if self._owned:
            _store.forget(self.sc)
            self.sc.stop()

    def __enter__(self) -> SparkBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def cores(self) -> int:
        """Task slots of the cluster (``defaultParallelism``)."""
        return max(int(self.sc.defaultParallelism), 1)

    def __repr__(self) -> str:
        return f"<jaas.SparkBackend master={self.address} cores={self.cores()}>"

    def uncache(self) -> None:
        """Drop the file columns this SparkContext keeps for later queries."""
        _store.forget(self.sc)

    def run(self, ds: Dataset, query: BuiltQuery, **options: Any) -> Execution:
        """Run ``query`` over ``ds`` on Spark (``Backend.run``; ``threads`` is ignored:
        Spark runs one partition per task slot; ``partition_events``, ``label``)."""
        return _run(self, ds, query, options.get("partition_events"), options.get("label", "query"))


def _run(
    backend: SparkBackend, ds: Dataset, query: BuiltQuery, partition_events: int | None, label: str
) -> Execution:
    from jaas.cluster import plan as _plan
    from jaas.cluster.worker import PartTask, Query
    from jaas.engine.core.exposure import normalize_intervals
    from jaas.engine.core.partition import merge
    from jaas.spark import executor as ex

    started = time.perf_counter()
    sc, spec = backend.sc, query.spec
    _plan.check_time_order(ds.files)
    if not ds.files:
        raise ConfigError(f"dataset {ds.name!r} has no index files")
    names = tuple(sorted(query.columns))
    group = f"jaas-{id(backend)}-{time.monotonic_ns()}"
    sc.setJobGroup(group, label)
    watcher = _Progress(sc, group, 3 * len(ds.files), label, backend.on_progress)
    ok = False
    try:
        # 1. the files' columns: read once per SparkContext, kept in executor memory
        entry, counters = _store.columns(sc, ds.files, names)
        files_rdd = entry.rdd
        reads0 = (counters[0].value, counters[1].value)
        # which files the executors could read: once per kept RDD (a file lost later,
        # from an evicted partition, fails the query and the next one checks again)
        status = [] if entry.checked else files_rdd.map(ex.status).collect()
        entry.checked = True
        lost = {ds.files[i].path: w for i, err, w, _ in status if err}
        errors = {os.path.abspath(ds.files[i].path): err for i, err, _, _ in status if err}
        sub = _plan.without_files(ds, lost, LOST_REASON)
        if not sub.files:
            raise JaasError(f"every file of dataset {ds.name!r} is unreadable: {errors}")
        # 2. plan on the readable files and route each file's rows to its partitions
        before, after = spec.halo()
        exprs = dict(query.exprs)
        files = [f for f in sub.files if f.n_events > 0] or sub.files
        if partition_events is None and backend.partition_ns is None:
            biggest = max(f.n_events for f in files)
            partition_events = min(biggest, -(-sub.n_events // (2 * backend.cores())))
        segments = normalize_intervals(sub.segments, what="segments")
        q = Query(names, exprs, spec, segments, before, after, (*names, *exprs))
        parts = _plan.plan(
            files, before, after, partition_ns=backend.partition_ns,
            partition_events=partition_events,
        )  # fmt: skip
        watcher.set_total(len(ds.files) * (1 + bool(status)) + len(parts))
        refs = _plan.file_refs(files)
        position = {os.path.abspath(f.path): i for i, f in enumerate(ds.files)}
        reach: dict[int, list[tuple[int, int, int]]] = {}
        for p in parts:
            for j in p.files:
                reach.setdefault(j, []).append((p.index, p.lo, p.hi))
        routes = {
            position[r.path]: ex.Route(r, tuple(reach.get(j, ()))) for j, r in enumerate(refs)
        }
        tasks = [PartTask(p.index, p.t_lo, p.t_hi, p.lo, p.hi, ()) for p in parts]
        shared = sc.broadcast((q, routes, tasks))
        try:
            outputs = (
                files_rdd.flatMap(lambda fc: ex.emit_pieces(fc, shared.value[0], shared.value[1]))
                .partitionBy(len(tasks), ex._identity)
                .mapPartitionsWithIndex(
                    lambda i, it: ex.run_group(i, it, shared.value[2], shared.value[0])
                )
                .collect()
            )
        finally:
            shared.unpersist()
        ok = True
    except JaasError:
        _store.forget(sc, ds.files)
        raise
    except Exception as exc:
        _store.forget(sc, ds.files)
        raise JaasError(f"Spark job failed on {backend.address}: {_first_line(exc)}") from exc
    finally:
        watcher.stop(ok)
    if lost:  # read again next time: the files may come back
        _store.forget(sc, ds.files)
    outputs.sort(key=lambda o: o.index)
    cores = [o.core() for o in outputs]
    bad = np.array([[x.start, x.end] for x in sub.lost], np.int64).reshape(-1, 2)
    result = merge([o.partial for o in outputs], spec, segments, bad=bad)
    if lost:
        _plan.count_lost_time(result.exposure, ds, sub, bad)
    cols = {n: np.concatenate([c[n] for c in cores]) for n in names}
    masks = {n: np.concatenate([c[n] for c in cores]) for n in exprs}
    info = BackendInfo("spark", backend.address)
    info.partitions = [
        (p.index, p.t_lo, p.t_hi, o.where) for p, o in zip(parts, outputs, strict=True)
    ]
    info.lost = errors
    info.seconds = time.perf_counter() - started
    backend.last_files_read = int(counters[0].value - reads0[0])
    backend.last_bytes_read = int(counters[1].value - reads0[1])
    return Execution(sub, result, cols, masks, info)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    for line in text.splitlines():
        if "Error" in line and ":" in line:
            return line.strip()
    return text.splitlines()[0] if text else type(exc).__name__


class _Progress:
    """Polls Spark's status tracker for the job group: a progress bar and callback."""

    def __init__(
        self, sc: Any, group: str, total: int, label: str,
        callback: Callable[[int, int], None] | None,
    ) -> None:  # fmt: skip
        from jaas.progress import progress

        self.sc, self.group, self.total, self.callback = sc, group, total, callback
        self.bar = progress(total=total, desc=label, unit="part")
        self.done = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        tracker = self.sc.statusTracker()
        done = 0
        for job in tracker.getJobIdsForGroup(self.group):
            info = tracker.getJobInfo(job)
            for stage in info.stageIds if info else ():
                s = tracker.getStageInfo(stage)
                if s is not None:
                    done += s.numCompletedTasks
        with self._lock:
            done = min(done, self.total)
            if done > self.done:
                self.bar.update(done - self.done)
                self.done = done
                if self.callback is not None:
                    self.callback(done, self.total)

    def set_total(self, total: int) -> None:
        """The number of tasks, known once the query is planned."""
        with self._lock:
            self.total = max(total, self.done)
            self.bar.total = self.total
            self.bar.refresh()

    def _loop(self) -> None:
        while not self._stop.wait(0.2):
            try:
                self._poll()
            except Exception:  # the context went away: no more progress to show
                return

    def stop(self, ok: bool) -> None:
        self._stop.set()
        self._thread.join()
        if ok and self.done < self.total:
            self.bar.update(self.total - self.done)
            self.done = self.total
            if self.callback is not None:
                self.callback(self.total, self.total)
        self.bar.close()
