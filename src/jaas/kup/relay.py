"""Outbox relay: publishes unpublished outbox rows, fires due retries, expires leases, reconciles.

Run as ``python -m jaas.kup.relay STATE_DIR`` (``jaas kup up`` does it).
Reconciliation: the relay keeps a sentinel topic (``<group_prefix>.epoch``) that nobody
writes to; when it is missing the broker is new (the embedded one keeps nothing across a
restart), so the relay recreates every topic and writes a fresh message for every queued job.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
import time
from typing import Any

from jaas.kup.bus import Bus, BusConfig, Message
from jaas.kup.config import KupSettings, PipelineConfig
from jaas.kup.ledger import Ledger, dead_letter_topic

__all__ = ["Relay", "all_topics", "main"]

log = logging.getLogger("jaas.kup.relay")


def all_topics(config: PipelineConfig) -> list[str]:
    """Stage topics and their dead-letter topics."""
    topics = set(config.topics)
    topics |= {dead_letter_topic(s.input) for s in config.stages}
    return sorted(topics)


class Relay:
    """One relay loop over a ledger and a bus.

    Args:
        ledger: the pipeline ledger.
        bus: the message bus.
        sentinel: name of the topic whose absence means "the broker lost everything".
    """

    def __init__(self, ledger: Ledger, bus: Bus, sentinel: str = "jaas-kup.epoch") -> None:
        self.ledger = ledger
        self.bus = bus
        self.sentinel = sentinel
        self.reconciled = 0

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
        """Fire due retries, expire leases, publish; return messages published."""
        self.ledger.fire_due_retries()
        self.ledger.expire_leases()
        return self.publish_pending()

    def run(self, stop: threading.Event, poll: float = 0.2, reconcile_every: float = 2.0) -> None:
        """Loop until ``stop`` is set; broker outages are logged and retried."""
        next_check = 0.0
        while not stop.is_set():
            try:
                if time.monotonic() >= next_check:
                    self.reconcile()
                    next_check = time.monotonic() + reconcile_every
                if self.step() == 0:
                    stop.wait(poll)
            except Exception as exc:  # broker or DB hiccup: keep going
                log.warning("relay step failed, retrying: %s", exc)
                next_check = 0.0
                stop.wait(max(poll, 0.5))


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
    relay = Relay(ledger, bus, sentinel=f"{settings.group_prefix}.epoch")
    try:
        relay.run(stop, settings.poll_interval, settings.reconcile_interval)
    finally:
        bus.close()
        ledger.close()
    return 0


def _state(settings: KupSettings) -> dict[str, Any]:
    import json

    return dict(json.loads((settings.state_dir / "state.json").read_text(encoding="utf-8")))


if __name__ == "__main__":
    sys.exit(main())
