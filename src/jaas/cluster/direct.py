"""The direct path: a query's partitions sent straight to the workers, past the scheduler.

A task through the scheduler costs client -> scheduler -> worker -> scheduler -> client
plus a ``gather`` round trip; for a warm query that is most of its time. Here each
worker answers RPC handlers of its own (installed with its ``JaasWorkerPlugin``): the
client sends a batch of partitions to its home worker and gets the outputs back in the
same round trip; a batch whose halo needs rows of files owned by another worker fetches
them from that worker (worker to worker, ``jaas_piece``) before it runs. The worker
state is the one the tasks use (column cache, veto phases, kept veto arrays), so the
outputs are the tasks' outputs and ``fetch_kept`` / ``load_files`` serve either path.

Anything unexpected (a worker gone, a handler missing, an error) makes the caller fall
back to the task path, which re-plans on the current owners.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import queue
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from jaas.cluster.worker import (
    FileRef,
    JaasWorkerPlugin,
    Kept,
    PartOutput,
    PartTask,
    Query,
    _run_one,
    _state,
    owned_piece,
)

__all__ = ["Job", "WorkerGone", "install", "run_jobs"]

RUN, PIECE, KEPT = "jaas_run", "jaas_piece", "jaas_kept"
Need = tuple[str, FileRef, int, int]  # (owner, file, lo, hi): rows another worker sends


# --- worker side ---------------------------------------------------------------------
def install(worker: Any) -> None:
    """Register the direct-path handlers on ``worker`` (idempotent)."""
    if RUN in getattr(worker, "handlers", {}):
        return
    pieces_pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="jaas-piece")

    def state() -> JaasWorkerPlugin:
        return _state(worker)

    async def run(payload: Any) -> Any:
        from distributed.protocol.serialize import to_serialize

        tasks, query, needs = payload
        pieces = await asyncio.gather(*(_fetch_piece(worker, query, n) for n in needs))
        st = state()
        loop = asyncio.get_running_loop()
        executor = worker.executors.get("default")  # the worker's threads: --nthreads

        def work() -> list[PartOutput]:
            return [_run_one(st, t, query, pieces) for t in tasks]

        return to_serialize(await loop.run_in_executor(executor, work))

    async def piece(payload: Any) -> Any:
        from distributed.protocol.serialize import to_serialize

        ref, query, lo, hi = payload
        st = state()

        def work() -> Any:
            return owned_piece(st.cache, ref, query, lo, hi)

        # its own thread: served while this worker's threads run its partitions
        loop = asyncio.get_running_loop()
        return to_serialize(await loop.run_in_executor(pieces_pool, work))

    async def kept(payload: Any) -> Any:
        from distributed.protocol.serialize import to_serialize

        token, indices = payload
        store = state().kept

        def work() -> Any:  # packed here, off the event loop
            return [store.get(token, i) for i in indices]

        loop = asyncio.get_running_loop()
        return to_serialize(await loop.run_in_executor(pieces_pool, work))

    worker.handlers.update({RUN: run, PIECE: piece, KEPT: kept})


async def _fetch_piece(worker: Any, query: Query, need: Need) -> Any:
    from distributed.protocol.serialize import to_serialize

    owner, ref, lo, hi = need
    return await worker.rpc(owner).jaas_piece(payload=to_serialize((ref, query, lo, hi)))


# --- client side ---------------------------------------------------------------------
@dataclass
class Job:
    """One batch of partitions for its home worker: the tasks, the rows of other
    workers' files they need (``PartTask.sources`` ints index ``needs``), and the
    partitions' indices."""

    home: str
    tasks: list[PartTask]
    needs: list[Need]
    indices: list[int]


class WorkerGone(Exception):
    """The connection to a worker failed: it is presumably dead."""


def _connection_error(exc: BaseException) -> bool:
    from distributed.comm.core import CommClosedError

    return isinstance(exc, (OSError, CommClosedError, asyncio.TimeoutError))


POLL_S = 1.0  # while results are awaited: how often to check the workers are alive


def run_jobs(
    client: Any,
    jobs: Sequence[Job],
    query: Query,
    alive: Callable[[], set[str]],
) -> Iterator[tuple[Job, list[PartOutput] | BaseException]]:
    """Send every job to its home worker at once; yield (job, outputs or the error) as
    they arrive. A job whose worker leaves the scheduler meanwhile yields ``WorkerGone``."""
    from distributed.protocol.serialize import to_serialize

    ready: queue.SimpleQueue[tuple[Job, Any]] = queue.SimpleQueue()

    async def one(job: Job) -> None:
        try:
            msg = to_serialize((job.tasks, query, job.needs))
            got: Any = await client.rpc(job.home).jaas_run(payload=msg)
        except Exception as exc:  # handed to the caller
            got = WorkerGone(f"{job.home}: {exc}") if _connection_error(exc) else exc
        ready.put((job, got))

    loop = client.loop.asyncio_loop
    running = {id(j): asyncio.run_coroutine_threadsafe(one(j), loop) for j in jobs}
    pending = {id(j): j for j in jobs}
    last = time.monotonic()
    while pending:
        try:
            job, got = ready.get(timeout=POLL_S)
        except queue.Empty:
            if time.monotonic() - last < POLL_S:
                continue
            last = time.monotonic()
            live = alive()
            for key, j in list(pending.items()):
                if j.home not in live or any(n[0] not in live for n in j.needs):
                    running[key].cancel()
                    del pending[key]
                    yield j, WorkerGone(f"{j.home} (or a worker it needs) left")
            continue
        if pending.pop(id(job), None) is not None:
            yield job, got


def fetch_kept(client: Any, worker: str, token: str, indices: list[int], timeout: float) -> Any:
    """``worker.fetch_kept`` over the direct path (raises on any failure)."""
    from distributed.protocol.serialize import to_serialize

    async def call() -> list[Kept | None]:
        got: list[Kept | None] = await client.rpc(worker).jaas_kept(
            payload=to_serialize((token, indices))
        )
        return got

    fut = asyncio.run_coroutine_threadsafe(call(), client.loop.asyncio_loop)
    try:
        return fut.result(timeout=timeout)
    except BaseException:
        fut.cancel()
        raise
