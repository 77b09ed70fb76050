"""The live stream: versioned frames (summary diffs, alerts, quality) with ids, a replay buffer
for ``Last-Event-ID`` resume, and server-side coalescing (rate limit).

One background task polls the source every ``stream_interval`` seconds, whatever the
number of clients; each change becomes one frame, so clients never get more than one
frame of each type per interval. The last ``stream_history`` frames are kept: a client
resuming from an id still in the buffer gets exactly the frames it missed, any other
client first gets a ``snapshot`` frame.

Each hub (one per worker process, one per start) numbers its frames from its own random
base (a multiple of 2^32 below 2^52, exact in JavaScript): an id made by another worker
or before a restart is unknown here, so its client gets a snapshot, never another hub's
frames under the same number.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import secrets
from collections import deque
from collections.abc import AsyncIterator
from typing import Any

from starlette.concurrency import run_in_threadpool

from jaas.portal.schemas import Frame, Summary
from jaas.portal.source import LedgerSource

__all__ = ["Hub"]


def _diff(old: dict[str, dict[str, int]], new: dict[str, dict[str, int]]) -> dict[str, Any]:
    out: dict[str, dict[str, int]] = {}
    for stage in set(old) | set(new):
        a, b = old.get(stage, {}), new.get(stage, {})
        changed = {st: b.get(st, 0) for st in set(a) | set(b) if a.get(st, 0) != b.get(st, 0)}
        if changed:
            out[stage] = changed
    return out


def _published(old: Summary, new: Summary) -> dict[str, Any] | None:
    """A ``quality`` frame's data when the last stage (publish) finished more files."""
    if not new.jobs:
        return None
    last = list(new.jobs)[-1]
    before, now = old.jobs.get(last, {}).get("done", 0), new.jobs[last].get("done", 0)
    return {"stage": last, "published": now} if now != before else None


class Hub:
    """Shared frame producer of every SSE / polling client."""

    def __init__(self, source: LedgerSource, interval: float, history: int) -> None:
        self.source = source
        self.interval = interval
        self.frames: deque[Frame] = deque(maxlen=history)
        self.seq = (1 + secrets.randbelow(2**20 - 1)) << 32  # this hub's id range
        self._summary: Summary | None = None
        self._alerts: list[dict[str, Any]] = []
        self._changed = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None

    def _frame(self, kind: str, data: dict[str, Any]) -> Frame:
        self.seq += 1
        return Frame.model_validate(
            {"id": self.seq, "type": kind, "at": dt.datetime.now(dt.UTC), "data": data}
        )

    def snapshot(self) -> Frame:
        """The full current state as a frame carrying the latest id (not buffered)."""
        summary = self._summary or self.source.summary()
        return Frame.model_validate(
            {
                "id": self.seq,
                "type": "snapshot",
                "at": dt.datetime.now(dt.UTC),
                "data": {"summary": summary.model_dump(), "alerts": self._alerts},
            }
        )

    async def refresh(self) -> None:
        """Poll the source once; append a frame per change and wake the clients."""
        summary, alerts = await run_in_threadpool(self._read)
        new: list[Frame] = []
        if self._summary is not None and summary.jobs != self._summary.jobs:
            new.append(
                self._frame("summary.diff", {"jobs": _diff(self._summary.jobs, summary.jobs)})
            )
        if self._summary is not None and (pub := _published(self._summary, summary)):
            new.append(self._frame("quality", pub))
        if self._summary is not None and alerts != self._alerts:
            new.append(self._frame("alerts", {"active": alerts, "counts": summary.alerts}))
        self._summary, self._alerts = summary, alerts
        if new:
            self.frames.extend(new)
            async with self._changed:
                self._changed.notify_all()

    def _read(self) -> tuple[Summary, list[dict[str, Any]]]:
        alerts = [a.model_dump(mode="json") for a in self.source.alerts()]
        return self.source.summary(), alerts

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(Exception):  # a DB hiccup must not end the stream
                await self.refresh()
            await asyncio.sleep(self.interval)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def since(self, last_id: int | None) -> list[Frame]:
        """Frames after ``last_id``; a snapshot first when that id is unknown or too old."""
        if last_id is not None and last_id <= self.seq:
            if not self.frames:
                return [] if last_id == self.seq else [self.snapshot()]
            if self.frames[0].id <= last_id + 1:
                return [f for f in self.frames if f.id > last_id]
        return [self.snapshot()]

    async def follow(self, last_id: int | None) -> AsyncIterator[Frame]:
        """Frames from ``last_id`` on, forever (waits for new ones)."""
        while True:
            for f in self.since(last_id):
                yield f
                last_id = f.id
            async with self._changed:
                if self.seq == last_id:
                    await self._changed.wait()
