"""Kafka driver (confluent-kafka only): producers that confirm delivery, manual-commit consumers.

Talking to a production Apache Kafka cluster instead of the embedded broker only changes
``bootstrap`` (and, if needed, ``extra`` client settings such as SASL options).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from jaas.errors import PipelineError

__all__ = ["BusConfig", "Message", "Publisher", "make_consumer"]


@dataclass(frozen=True)
class BusConfig:
    """Client settings shared by every producer and consumer.

    Attributes:
        bootstrap: ``host:port[,host:port]`` of the brokers.
        session_timeout_ms: consumer-group session timeout (short on the embedded broker,
            where a new group takes about this long to join).
        extra: more librdkafka settings (security, client ids, ...).
    """

    bootstrap: str
    session_timeout_ms: int = 6000
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Message:
    """A message to publish: topic, key (the file), JSON payload, id (header ``message_id``)."""

    topic: str
    key: str
    payload: dict[str, Any]
    message_id: str


class Publisher:
    """A producer that sends a batch and waits until the broker acknowledged every message.

    ``batch.num.messages=1`` keeps Tansu's high watermark counting records, not batches
    (needed for consumer-lag accounting).
    """

    def __init__(self, cfg: BusConfig) -> None:
        from confluent_kafka import Producer

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
            value = json.dumps({**m.payload, "message_id": m.message_id}).encode()
            self._producer.produce(
                m.topic,
                key=m.key.encode(),
                value=value,
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
    """A consumer in ``group`` subscribed to ``topics``, auto-commit OFF (commit after the ledger).

    Offsets are committed by the caller with ``consumer.commit(message, asynchronous=False)``
    once the ledger write is done; a new group starts at the earliest message.
    """
    from confluent_kafka import Consumer

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


def decode(msg: Any) -> dict[str, Any]:
    """Payload of a consumed message as a dict; PipelineError naming topic and offset if bad."""
    try:
        data = json.loads(msg.value())
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        return data
    except (ValueError, TypeError) as exc:
        raise PipelineError(
            f"topic {msg.topic()!r} partition {msg.partition()} offset {msg.offset()}: "
            f"message is not a JSON object: {exc}"
        ) from exc
