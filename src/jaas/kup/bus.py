"""The message-bus seam of keep-up: the :class:`Bus` protocol and the types it speaks.

Workers, the relay and the monitor talk to a :class:`Bus`; two implementations exist:
:class:`jaas.kup.kafka.KafkaBus` (confluent-kafka, the embedded Tansu broker or a real
Apache Kafka cluster) and :class:`jaas.kup.membus.MemoryBus` (in-process, for unit tests,
like httpx's ``MockTransport``). Nothing here imports a Kafka client.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from jaas.errors import PipelineError

__all__ = [
    "BrokerState",
    "Bus",
    "BusConfig",
    "Message",
    "Record",
    "Subscription",
    "decode",
    "encode",
]


@dataclass(frozen=True)
class BusConfig:
    """Client settings shared by every producer and consumer of the Kafka driver.

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


@dataclass(frozen=True)
class Record:
    """A consumed message: where it sits (topic, partition, offset), key and raw value."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


@dataclass(frozen=True)
class BrokerState:
    """What the broker says about itself: up, cluster id, controller, brokers, topics."""

    bootstrap: str | None
    up: bool
    cluster_id: str | None = None
    controller: int | None = None
    brokers: int = 0
    topics: dict[str, int] = field(default_factory=dict)  # name -> partitions
    error: str | None = None


class Subscription(Protocol):
    """A member of a consumer group; offsets are committed by hand, after the ledger write."""

    def poll(self, timeout: float) -> Record | None:
        """The next record of an assigned partition, or None after ``timeout`` s."""

    def commit(self, record: Record) -> None:
        """Commit the group's offset past ``record`` (synchronous)."""

    def seek(self, record: Record) -> None:
        """Rewind so that ``record`` is delivered again by the next :meth:`poll`."""

    def close(self) -> None:
        """Leave the group (uncommitted records go to the next member)."""


class Bus(Protocol):
    """Publish, consume, commit, and the read-only views monitoring needs."""

    @property
    def name(self) -> str:
        """Where the bus is (``host:port`` of the brokers, or ``memory``)."""

    def publish(self, messages: Sequence[Message], timeout: float = 15.0) -> list[str]:
        """Send messages; return the ids acknowledged (PipelineError if none was)."""

    def subscribe(self, group: str, topics: Sequence[str]) -> Subscription:
        """Join ``group`` on ``topics``; a new group starts at the earliest record."""

    def topics(self, timeout: float = 5.0) -> set[str]:
        """Names of the topics that exist (raises if the broker does not answer)."""

    def ensure_topics(self, topics: Sequence[str], partitions: int = 1) -> list[str]:
        """Create the topics that do not exist yet; return the names created."""

    def cluster(self) -> BrokerState:
        """Cluster id, brokers and topics; ``up=False`` (with the error) if no answer."""

    def watermarks(self, topic: str) -> dict[int, tuple[int, int]]:
        """``{partition: (low, high)}`` of a topic (empty if it does not exist)."""

    def committed(self, group: str, topic: str) -> dict[int, int | None]:
        """Committed offsets of ``group`` on ``topic`` per partition (None: never)."""

    def group_alive(self, group: str) -> bool:
        """Whether ``group`` has live members."""

    def reset(self) -> None:
        """Drop the connections (after a failure): the next call reconnects."""

    def close(self) -> None:
        """Release the clients."""


def encode(message: Message) -> bytes:
    """The wire value of a message: its payload with ``message_id`` added, as JSON."""
    return json.dumps({**message.payload, "message_id": message.message_id}).encode()


def decode(record: Record) -> dict[str, Any]:
    """Payload of a consumed record as a dict; PipelineError naming topic and offset if bad."""
    try:
        data = json.loads(record.value or b"")
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        return data
    except (ValueError, TypeError) as exc:
        raise PipelineError(
            f"topic {record.topic!r} partition {record.partition} offset {record.offset}: "
            f"message is not a JSON object: {exc}"
        ) from exc
