"""Kafka driver of the :class:`~jaas.kup.bus.Bus` (confluent-kafka is imported only here and
in :mod:`jaas.kup.broker`).

Talking to a production Apache Kafka cluster instead of the embedded broker only changes
``bootstrap`` (and, if needed, ``extra`` client settings such as SASL options).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from typing import Any

from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from jaas.errors import PipelineError
from jaas.kup import broker
from jaas.kup.bus import BrokerState, BusConfig, Message, Record, encode

__all__ = ["KafkaBus", "KafkaSubscription", "Publisher", "make_consumer"]

log = logging.getLogger("jaas.kup.kafka")

_LIVE_GROUP_STATES = {"STABLE", "PREPARING_REBALANCE", "COMPLETING_REBALANCE"}


class Publisher:
    """A producer that sends a batch and waits until the broker acknowledged every message.

    ``batch.num.messages=1`` keeps Tansu's high watermark counting records, not batches
    (needed for consumer-lag accounting).
    """

    def __init__(self, cfg: BusConfig) -> None:
        self.cfg = cfg
        self._producer = Producer(
            {
                "bootstrap.servers": cfg.bootstrap,
                "batch.num.messages": 1,
                "linger.ms": 0,
                "acks": "all",
                "message.timeout.ms": 10000,
                "log_level": 3,
                **cfg.extra,
            }
        )

    def publish(self, messages: Sequence[Message], timeout: float = 15.0) -> list[str]:
        """Send messages; return the ids acknowledged (the others failed and stay pending)."""
        acked: list[str] = []
        errors: list[str] = []

        def on_delivery(mid: str, err: Any, _msg: Any) -> None:
            if err is None:
                acked.append(mid)
            else:
                errors.append(f"{mid}: {err}")

        for m in messages:
            self._producer.produce(
                m.topic,
                key=m.key.encode(),
                value=encode(m),
                headers=[("message_id", m.message_id.encode())],
                on_delivery=functools.partial(on_delivery, m.message_id),
            )
            self._producer.poll(0)
        remaining = self._producer.flush(timeout)
        if remaining and not acked:
            raise PipelineError(
                f"broker at {self.cfg.bootstrap}: {remaining} message(s) not acknowledged "
                f"within {timeout:g} s ({'; '.join(errors[:3]) or 'no answer'})"
            )
        return acked


def make_consumer(cfg: BusConfig, group: str, topics: Sequence[str]) -> Any:
    """A raw confluent-kafka consumer in ``group`` on ``topics``, auto-commit OFF.

    Offsets are committed by the caller with ``consumer.commit(message, asynchronous=False)``
    once the ledger write is done; a new group starts at the earliest message.
    """
    consumer = Consumer(
        {
            "bootstrap.servers": cfg.bootstrap,
            "group.id": group,
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest",
            "session.timeout.ms": cfg.session_timeout_ms,
            "heartbeat.interval.ms": max(100, cfg.session_timeout_ms // 5),
            "max.poll.interval.ms": max(60000, cfg.session_timeout_ms * 2),
            "topic.metadata.refresh.interval.ms": 2000,
            # the embedded broker (Tansu) answers a fetch only when this wait expires,
            # not when data arrives: librdkafka's 500 ms default would add ~250 ms per
            # message (bench_kup); Apache Kafka answers early either way
            "fetch.wait.max.ms": 20,
            "log_level": 3,
            **cfg.extra,
        }
    )
    consumer.subscribe(list(topics))
    return consumer


class KafkaSubscription:
    """A :class:`~jaas.kup.bus.Subscription` over a confluent-kafka consumer."""

    def __init__(self, consumer: Any) -> None:
        self.consumer = consumer

    def poll(self, timeout: float) -> Record | None:
        """The next record, or None (also on a consumer error, which is logged)."""
        msg = self.consumer.poll(timeout)
        if msg is None:
            return None
        if msg.error():
            log.debug("consumer: %s", msg.error())
            return None
        return Record(msg.topic(), msg.partition(), msg.offset(), msg.key(), msg.value())

    def commit(self, record: Record) -> None:
        """Commit offset ``record.offset + 1`` of its partition, synchronously."""
        tp = TopicPartition(record.topic, record.partition, record.offset + 1)
        self.consumer.commit(offsets=[tp], asynchronous=False)

    def seek(self, record: Record) -> None:
        """Rewind the partition to ``record``."""
        self.consumer.seek(TopicPartition(record.topic, record.partition, record.offset))

    def close(self) -> None:
        """Leave the group."""
        self.consumer.close()


class KafkaBus:
    """The :class:`~jaas.kup.bus.Bus` on a Kafka-protocol broker.

    Args:
        cfg: client settings (a bare ``host:port`` string is accepted too).
        timeout: seconds per monitoring request (watermarks, offsets, group state).
    """

    def __init__(self, cfg: BusConfig | str, timeout: float = 2.0) -> None:
        self.cfg = BusConfig(cfg) if isinstance(cfg, str) else cfg
        self.name = self.cfg.bootstrap
        self.timeout = timeout
        self._publisher: Publisher | None = None
        self._admin: Any = None
        self._probe: Any = None
        self._partitions: dict[str, list[int]] = {}

    def __repr__(self) -> str:
        return f"KafkaBus({self.name!r})"

    # ---- data path -------------------------------------------------------------------------

    def publish(self, messages: Sequence[Message], timeout: float = 15.0) -> list[str]:
        """Send messages and wait for the broker's acknowledgements."""
        if self._publisher is None:
            self._publisher = Publisher(self.cfg)
        return self._publisher.publish(messages, timeout)

    def subscribe(self, group: str, topics: Sequence[str]) -> KafkaSubscription:
        """A manual-commit member of ``group``."""
        return KafkaSubscription(make_consumer(self.cfg, group, topics))

    def topics(self, timeout: float = 5.0) -> set[str]:
        """Topic names (KafkaException if the broker does not answer)."""
        return broker.list_topics(self.cfg.bootstrap, timeout=timeout)

    def ensure_topics(self, topics: Sequence[str], partitions: int = 1) -> list[str]:
        """Create missing topics."""
        return broker.ensure_topics(self.cfg.bootstrap, list(topics), partitions)

    # ---- monitoring (read-only: never joins a group or commits) -------------------------------

    def _clients(self) -> tuple[Any, Any]:
        if self._admin is None:
            common: dict[str, Any] = {
                "bootstrap.servers": self.cfg.bootstrap,
                "socket.timeout.ms": int(self.timeout * 1000),
                **self.cfg.extra,
            }
            self._admin = AdminClient({**common, "log_level": 0})
            self._probe = Consumer(
                {
                    **common,
                    "group.id": "jaas-kup-monitor",
                    "enable.auto.commit": False,
                    "log_level": 0,
                }
            )
        return self._admin, self._probe

    def reset(self) -> None:
        """Drop the monitoring clients (a broker restart): the next call reconnects."""
        probe, self._admin, self._probe = self._probe, None, None
        if probe is not None:
            probe.close()

    def cluster(self) -> BrokerState:
        """Cluster id, controller, broker count and topics; ``up=False`` if no answer."""
        admin, _ = self._clients()
        try:
            md = admin.list_topics(timeout=self.timeout)
            desc = admin.describe_cluster(request_timeout=self.timeout).result(self.timeout)
        except Exception as exc:
            self.reset()  # a restarted broker is not seen by old clients: reconnect
            what = str(exc).strip() or "no answer"
            return BrokerState(
                self.name,
                up=False,
                error=(
                    f"metadata request to {self.name} failed within {self.timeout:g} s: "
                    f"{type(exc).__name__}: {what}"
                ),
            )
        self._partitions = {name: sorted(t.partitions) for name, t in md.topics.items()}
        return BrokerState(
            self.name,
            up=True,
            cluster_id=desc.cluster_id,
            controller=getattr(desc.controller, "id", None),
            brokers=len(md.brokers),
            topics={k: len(v) for k, v in sorted(self._partitions.items())},
        )

    def watermarks(self, topic: str) -> dict[int, tuple[int, int]]:
        """``{partition: (low, high)}`` of a topic seen by the last :meth:`cluster` call."""
        _, probe = self._clients()
        out = {}
        for p in self._partitions.get(topic, []):
            try:
                low, high = probe.get_watermark_offsets(
                    TopicPartition(topic, p), timeout=self.timeout
                )
            except Exception as exc:
                raise PipelineError(
                    f"watermarks of {topic}[{p}] on {self.name}: no answer within "
                    f"{self.timeout:g} s ({type(exc).__name__}: {str(exc).strip() or 'timed out'})"
                ) from exc
            out[p] = (int(low), int(high))
        return out

    def committed(self, group: str, topic: str) -> dict[int, int | None]:
        """Committed offsets of ``group`` on ``topic`` per partition."""
        admin, _ = self._clients()
        futures = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)])
        try:
            res = futures[group].result(self.timeout)
        except Exception as exc:
            raise PipelineError(
                f"committed offsets of group {group!r} on {self.name}: no answer within "
                f"{self.timeout:g} s ({type(exc).__name__}: {str(exc).strip() or 'timed out'})"
            ) from exc
        return {
            tp.partition: (tp.offset if tp.offset >= 0 else None)
            for tp in res.topic_partitions or []
            if tp.topic == topic
        }

    def group_alive(self, group: str) -> bool:
        """Whether ``group`` has live members (state Stable or rebalancing)."""
        admin, _ = self._clients()
        try:
            desc = admin.describe_consumer_groups([group])[group].result(self.timeout)
        except Exception:  # unknown group
            return False
        return getattr(desc.state, "name", str(desc.state)) in _LIVE_GROUP_STATES

    def close(self) -> None:
        """Flush nothing, close the monitoring consumer."""
        self.reset()
        self._publisher = None
