"""Outbox relay: publishes unpublished outbox rows, fires due retries, expires leases, reconciles.

Run as ``python -m jaas.kup.relay STATE_DIR`` (``jaas kup up`` does it).
Reconciliation: the relay keeps a sentinel topic (``<group_prefix>.epoch``) that nobody
writes to; when it is missing the broker is new (the embedded one keeps nothing across a
restart), so the relay recreates every topic and writes a fresh message for every queued job.

Between steps the relay waits on an :class:`OutboxWatch` instead of re-querying the
outbox: on PostgreSQL it ``LISTEN``s to the channel the ledger notifies when it writes
outbox rows; on SQLite it reads ``PRAGMA data_version`` (it changes when another
connection commits; a few microseconds) every ``check`` seconds on a kept connection.
Either way a new row is published within ~``check`` seconds of its commit, while the full
step (due retries, expired leases, the outbox query) runs only every ``poll`` seconds
when nothing changes.

Self-healing: every ``requeue_after`` seconds the relay looks at each stage whose consumer
group has committed every offset of its topic (no lag) and republishes the jobs still
queued whose messages were all published more than ``requeue_after`` seconds ago: such a
message was skipped or lost by the broker, and the file would otherwise wait forever.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import signal
import sys
import threading
import time
from typing import Any

from jaas.kup.bus import Bus, BusConfig, Message
from jaas.kup.config import KupSettings, PipelineConfig
from jaas.kup.ledger import OUTBOX_CHANNEL, Ledger, dead_letter_topic

__all__ = ["OutboxWatch", "Relay", "all_topics", "main"]

log = logging.getLogger("jaas.kup.relay")


def all_topics(config: PipelineConfig) -> list[str]:
    """Stage topics and their dead-letter topics."""
    topics = set(config.topics)
    topics |= {dead_letter_topic(s.input) for s in config.stages}
    return sorted(topics)


class OutboxWatch:
    """Waits until the ledger's database may have new outbox rows, cheaply.

    Args:
        ledger: the ledger whose database is watched.
        check: seconds between two ``PRAGMA data_version`` reads (SQLite only).

    An in-memory SQLite ledger (one shared connection) has nothing to watch: :meth:`wait`
    then just sleeps. A watch whose connection fails falls back to sleeping and reconnects
    at the next wait.
    """

    def __init__(self, ledger: Ledger, check: float = 0.02) -> None:
        self.ledger = ledger
        self.check = check
        self._dialect = ledger.engine.dialect.name
        self._conn: Any = None
        self._version: Any = None

    def _open(self) -> Any:
        if self._dialect == "sqlite" and self.ledger.engine.url.database in (None, "", ":memory:"):
            return None
        if self._dialect not in ("sqlite", "postgresql"):
            return None
        raw = self.ledger.engine.raw_connection()
        conn: Any = raw.driver_connection
        raw.detach()  # ours for good: not returned to (or reset by) the pool
        if self._dialect == "postgresql":
            conn.autocommit = True
            conn.execute(f"LISTEN {OUTBOX_CHANNEL}")
        else:
            self._version = self._data_version(conn)
        return conn

    @staticmethod
    def _data_version(conn: Any) -> int:
        return int(conn.execute("PRAGMA data_version").fetchone()[0])

    def wait(self, stop: threading.Event, timeout: float) -> bool:
        """Return True as soon as the database changed (or may have), False after
        ``timeout`` seconds without a change or when ``stop`` is set."""
        try:
            if self._conn is None:
                self._conn = self._open()
                if self._conn is None:
                    stop.wait(timeout)
                    return False
            if self._dialect == "postgresql":
                return self._wait_notify(stop, timeout)
            return self._wait_version(stop, timeout)
        except Exception as exc:  # a lost connection: sleep, reconnect next time
            log.warning("outbox watch failed, polling instead: %s", exc)
            self.close()
            stop.wait(timeout)
            return False

    def _wait_notify(self, stop: threading.Event, timeout: float) -> bool:
        end = time.monotonic() + timeout
        while not stop.is_set():
            left = end - time.monotonic()
            if left <= 0:
                return False
            # short slices so that ``stop`` is seen within 0.2 s
            if any(True for _ in self._conn.notifies(timeout=min(left, 0.2), stop_after=1)):
                for _ in self._conn.notifies(timeout=0):  # drain the others
                    pass
                return True
        return False

    def _wait_version(self, stop: threading.Event, timeout: float) -> bool:
        end = time.monotonic() + timeout
        while not stop.wait(min(self.check, max(end - time.monotonic(), 0.0))):
            version = self._data_version(self._conn)
            if version != self._version:
                self._version = version
                return True
            if time.monotonic() >= end:
                return False
        return False

    def close(self) -> None:
        """Close the kept connection (a later :meth:`wait` opens a new one)."""
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):  # already broken
                conn.close()


class Relay:
    """One relay loop over a ledger and a bus.

    Args:
        ledger: the pipeline ledger.
        bus: the message bus.
        sentinel: name of the topic whose absence means "the broker lost everything".
        check: seconds between two cheap change checks of the database while idle
            (see :class:`OutboxWatch`).
    """

    def __init__(
        self,
        ledger: Ledger,
        bus: Bus,
        sentinel: str = "jaas-kup.epoch",
        check: float = 0.02,
        group_prefix: str = "jaas-kup",
    ) -> None:
        self.ledger = ledger
        self.bus = bus
        self.sentinel = sentinel
        self.group_prefix = group_prefix
        self.reconciled = 0
        self.requeued = 0
        self.watch = OutboxWatch(ledger, check)

    def reconcile(self) -> int:
        """Recreate topics and requeue messages if the broker is new; return jobs requeued."""
        if self.sentinel in self.bus.topics(timeout=5.0):
            return 0
        self.bus.ensure_topics(all_topics(self.ledger.config))
        n = self.ledger.requeue_lost()
        self.bus.ensure_topics([self.sentinel])
        self.reconciled += 1
        log.info("broker %s is new: topics created, %d queued job(s) republished", self.bus.name, n)
        return n

    def requeue_unconsumed(self, after: float) -> int:
        """Give a fresh message to queued jobs whose stage's group went past all of theirs.

        A stage qualifies when its group's committed offset has reached the high watermark
        on every partition of its topic (read after the cut-off time is taken, so every
        message acknowledged before it lies below the watermark); the ledger then requeues
        its queued jobs whose messages are all older than ``after`` seconds. Returns the
        jobs requeued (each logged with its file).
        """
        cutoff = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=after)
        if not self.bus.cluster().up:  # also refreshes the topics' partitions
            return 0
        n = 0
        for stage in self.ledger.config.stages:
            marks = self.bus.watermarks(stage.input)
            done = self.bus.committed(f"{self.group_prefix}.{stage.name}", stage.input)
            if not marks or any((done.get(p) or 0) < high for p, (_, high) in marks.items()):
                continue  # a backlog, or messages being handled: not ours to judge
            files = self.ledger.requeue_unconsumed(stage.name, cutoff)
            for f in files:
                log.warning(
                    "stage %s: job %s still queued after its group consumed every message "
                    "of %s (a message skipped or lost): republished",
                    stage.name,
                    f,
                    stage.input,
                )
            n += len(files)
        self.requeued += n
        return n

    def publish_pending(self, limit: int = 500) -> int:
        """Publish unpublished outbox rows; mark those the broker acknowledged."""
        rows = self.ledger.unpublished(limit)
        if not rows:
            return 0
        acked = set(
            self.bus.publish([Message(r.topic, r.key, r.payload, r.message_id) for r in rows])
        )
        ids = [r.id for r in rows if r.message_id in acked]
        self.ledger.mark_published(ids)
        return len(ids)

    def step(self) -> int:
        """Publish, fire due retries, expire leases (and publish what they queued); return
        messages published. New rows go out first: the sweeps do not delay them."""
        n = self.publish_pending()
        if self.ledger.fire_due_retries() + self.ledger.expire_leases():
            n += self.publish_pending()
        return n

    def run(
        self,
        stop: threading.Event,
        poll: float = 0.2,
        reconcile_every: float = 2.0,
        requeue_after: float = 15.0,
    ) -> None:
        """Loop until ``stop`` is set; broker outages are logged and retried.

        When nothing was published, the loop waits until the database changes (a new
        outbox row, see :class:`OutboxWatch`: then only the outbox is published) or until
        the next full :meth:`step` (due retries, expired leases), ``poll`` seconds after
        the previous one.
        """
        next_check = next_sweep = 0.0
        next_requeue = time.monotonic() + requeue_after
        try:
            while not stop.is_set():
                try:
                    now = time.monotonic()
                    if now >= next_check:
                        self.reconcile()
                        next_check = time.monotonic() + reconcile_every
                    if now >= next_requeue:
                        next_requeue = now + requeue_after / 2
                        self.requeue_unconsumed(requeue_after)
                    if now >= next_sweep:  # the full step, at least every ``poll`` s
                        n = self.step()
                        next_sweep = time.monotonic() + poll
                    else:  # woken by a change: only the outbox
                        n = self.publish_pending()
                    if n == 0:
                        wake = min(next_sweep, next_check, next_requeue) - time.monotonic()
                        self.watch.wait(stop, max(wake, 0.0))
                except Exception as exc:  # broker or DB hiccup: keep going
                    log.warning("relay step failed, retrying: %s", exc)
                    next_check = 0.0
                    stop.wait(max(poll, 0.5))
        finally:
            self.watch.close()


def main(argv: list[str] | None = None) -> int:
    """``python -m jaas.kup.relay STATE_DIR``."""
    args = sys.argv[1:] if argv is None else argv
    settings = KupSettings.load(args[0])
    logging.basicConfig(level=logging.INFO, format="%(asctime)s relay %(levelname)s %(message)s")
    state = _state(settings)
    from jaas.kup.kafka import KafkaBus

    bus = KafkaBus(BusConfig(state["bootstrap"], settings.session_timeout_ms))
    ledger = Ledger(settings.database, settings.pipeline())
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    relay = Relay(
        ledger, bus, sentinel=f"{settings.group_prefix}.epoch", group_prefix=settings.group_prefix
    )
    try:
        relay.run(stop, settings.poll_interval, settings.reconcile_interval, settings.requeue_after)
    finally:
        bus.close()
        ledger.close()
    return 0


def _state(settings: KupSettings) -> dict[str, Any]:
    import json

    return dict(json.loads((settings.state_dir / "state.json").read_text(encoding="utf-8")))


if __name__ == "__main__":
    sys.exit(main())
