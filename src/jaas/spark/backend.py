"""The engine's ``Backend`` on Apache Spark: ``backend="spark://HOST:7077"`` or ``"local[N]"``.

The driver plans time partitions aligned to the index files from their footers alone
(``jaas.cluster.plan``, as for Dask) and makes an RDD with one Spark partition per time
partition; only paths, row offsets and time bounds are shipped. Each executor reads the
rows of its partition's core and halo (any window length: the halo may reach into the
files of many neighbouring partitions) through its per-process column cache and runs
the engine's partition step (``jaas.spark.executor``); core columns come back as Arrow
IPC, and the partial results are merged on the driver with the engine's ``merge``: the
result is identical to the local engine's. Failed tasks are retried by Spark
(``spark.task.maxFailures``), so a lost executor changes nothing in the result.
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

if TYPE_CHECKING:
    from jaas.engine.session.dataset import Dataset

__all__ = ["SparkBackend", "spark_conf"]


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
    """The Spark settings jaas needs: reused Python workers (the column cache lives in
    them), this interpreter and its ``jaas`` sources on the executors, a loopback-safe
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


def _master(target: str | None) -> str:
    if target is None:
        return os.environ.get("SPARK_MASTER", "local[*]")
    text = target.strip()
    if text == "spark":
        return os.environ.get("SPARK_MASTER", "local[*]")
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
                self.partition_ns, self.on_progress = partition_ns, on_progress
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
            self.sc.stop()

    def __enter__(self) -> SparkBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def cores(self) -> int:
        """Task slots of the cluster (``defaultParallelism``)."""
        return max(int(self.sc.defaultParallelism), 1)

    def run(
        self,
        ds: Dataset,
        query: BuiltQuery,
        *,
        threads: int = 1,
        partition_events: int | None = None,
        label: str = "query",
    ) -> Execution:
        """Run ``query`` over ``ds`` on Spark (``threads`` is ignored: Spark runs one
        partition per task slot)."""
        from jaas.cluster import plan as _plan
        from jaas.cluster.backend import _refs
        from jaas.cluster.worker import PartTask, Query
        from jaas.engine.core.exposure import normalize_intervals
        from jaas.engine.core.partition import merge
        from jaas.spark.executor import SparkTask, run_tasks

        del threads
        started = time.perf_counter()
        spec = query.spec
        _plan.check_time_order(ds.files)
        before, after = spec.halo()
        names = tuple(sorted(query.columns))
        exprs = dict(query.exprs)
        if partition_events is None and self.partition_ns is None and ds.files:
            biggest = max(f.n_events for f in ds.files)
            partition_events = min(biggest, -(-ds.n_events // (2 * self.cores())))
        segments = normalize_intervals(ds.segments, what="segments")
        q = Query(names, exprs, spec, segments, before, after, (*names, *exprs))
        files = [f for f in ds.files if f.n_events > 0] or ds.files
        if not files:
            raise ConfigError(f"dataset {ds.name!r} has no index files")
        refs = _refs(files)
        parts = _plan.plan(
            files, before, after, partition_ns=self.partition_ns,
            partition_events=partition_events,
        )  # fmt: skip
        tasks = [
            SparkTask(
                PartTask(p.index, p.t_lo, p.t_hi, p.lo, p.hi, tuple(refs[i] for i in p.files)),
                tuple(refs[i] for i in p.files),
            )
            for p in parts
        ]
        shared = self.sc.broadcast(q)
        rdd = self.sc.parallelize(tasks, len(tasks)).mapPartitions(
            lambda it: run_tasks(it, shared.value)
        )
        group = f"jaas-{id(self)}-{time.monotonic_ns()}"
        self.sc.setJobGroup(group, label)
        watcher = _Progress(self.sc, group, len(tasks), label, self.on_progress)
        ok = False
        try:
            outputs = sorted(rdd.collect(), key=lambda o: o.index)
            ok = True
        except Exception as exc:
            raise JaasError(f"Spark job failed on {self.address}: {_first_line(exc)}") from exc
        finally:
            watcher.stop(ok)
            shared.unpersist()
        cores = [o.core() for o in outputs]
        bad = np.array([[x.start, x.end] for x in ds.lost], np.int64).reshape(-1, 2)
        result = merge([o.partial for o in outputs], spec, segments, bad=bad)
        cols = {n: np.concatenate([c[n] for c in cores]) for n in names}
        masks = {n: np.concatenate([c[n] for c in cores]) for n in exprs}
        info = BackendInfo("spark", self.address)
        info.partitions = [
            (p.index, p.t_lo, p.t_hi, o.where) for p, o in zip(parts, outputs, strict=True)
        ]
        info.seconds = time.perf_counter() - started
        self.last_bytes_read = sum(o.bytes_read for o in outputs)
        self.last_misses = sum(o.misses for o in outputs)
        return Execution(ds, result, cols, masks, info)


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
        done = min(done, self.total)
        if done > self.done:
            self.bar.update(done - self.done)
            self.done = done
            if self.callback is not None:
                self.callback(done, self.total)

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
