"""An in-process :class:`~jaas.kup.bus.Bus` for unit tests (like httpx's ``MockTransport``).

Topics are lists of records per partition; a consumer group has committed offsets and
members; partitions are spread over the members round-robin and a member that joins or
leaves rebalances the group, which restarts every member at the committed offsets (so an
uncommitted record is delivered again, as with Kafka). :meth:`MemoryBus.go_down` makes
every call fail like an unreachable broker; :meth:`MemoryBus.restart` loses everything,
like the embedded broker does.

Example:
    >>> bus = MemoryBus()
    >>> bus.publish([Message("t", "k", {"n": 1}, "m1")])
    ['m1']
    >>> sub = bus.subscribe("g", ["t"])
    >>> rec = sub.poll(0)
    >>> decode(rec)["n"], bus.committed("g", "t")
    (1, {})
    >>> sub.commit(rec); bus.committed("g", "t")
    {0: 1}
"""

from __future__ import annotations

import threading
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field

from jaas.errors import PipelineError
from jaas.kup.bus import BrokerState, Message, Record, decode, encode

__all__ = ["MemoryBus", "MemorySubscription", "decode"]


@dataclass
class _Group:
    committed: dict[tuple[str, int], int] = field(default_factory=dict)
    members: list[MemorySubscription] = field(default_factory=list)


class MemorySubscription:
    """A member of a group on a :class:`MemoryBus`."""

    def __init__(self, bus: MemoryBus, group: str, topics: Sequence[str]) -> None:
        self.bus = bus
        self.group = group
        self.topics = list(topics)
        self.assigned: list[tuple[str, int]] = []
        self.position: dict[tuple[str, int], int] = {}
        self.closed = False
        self._next = 0

    def poll(self, timeout: float) -> Record | None:
        """The next record of an assigned partition, or None after ``timeout`` s."""
        deadline = time.monotonic() + timeout
        while True:
            with self.bus._cond:
                rec = self._take()
                if rec is not None:
                    return rec
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.bus._cond.wait(min(left, 0.05))

    def _take(self) -> Record | None:
        self.bus._check()
        if self.closed:
            raise PipelineError("poll on a closed subscription")
        n = len(self.assigned)
        for i in range(n):  # round-robin over the partitions
            tp = self.assigned[(self._next + i) % n]
            log = self.bus._log.get(tp[0], [])
            records = log[tp[1]] if tp[1] < len(log) else []
            pos = self.position.get(tp, 0)
            if pos < len(records):
                self.position[tp] = pos + 1
                self._next = (self._next + i + 1) % n
                return records[pos]
        return None

    def commit(self, record: Record) -> None:
        """Commit the group's offset past ``record``."""
        with self.bus._cond:
            self.bus._check()
            tp = (record.topic, record.partition)
            if self.closed or tp not in self.assigned:
                raise PipelineError(f"commit of {tp}: partition not assigned to this member")
            self.bus._groups[self.group].committed[tp] = record.offset + 1
            self.bus.commits += 1

    def seek(self, record: Record) -> None:
        """Deliver ``record`` again at the next poll."""
        with self.bus._cond:
            self.position[(record.topic, record.partition)] = record.offset

    def close(self) -> None:
        """Leave the group; the others rebalance."""
        with self.bus._cond:
            if self.closed:
                return
            self.closed = True
            group = self.bus._groups.get(self.group)
            if group is not None and self in group.members:
                group.members.remove(self)
                self.bus._rebalance(self.group)


class MemoryBus:
    """In-memory topics, consumer groups and offsets, safe to share between threads.

    Args:
        partitions: partitions of a topic created implicitly (by publish or subscribe).
        auto_create: whether publishing to or subscribing to a missing topic creates it.
    """

    def __init__(self, partitions: int = 1, auto_create: bool = True) -> None:
        self.name = "memory"
        self.partitions = partitions
        self.auto_create = auto_create
        self._cond = threading.Condition()
        self._log: dict[str, list[list[Record]]] = {}
        self._groups: dict[str, _Group] = {}
        self._down: str | None = None
        self.epoch = 0
        self.published: list[Message] = []  # everything ever acknowledged, for assertions
        self.commits = 0

    def __repr__(self) -> str:
        return f"MemoryBus(epoch={self.epoch}, topics={sorted(self._log)})"

    # ---- failure injection -----------------------------------------------------------------

    def go_down(self, error: str = "broker unreachable") -> None:
        """Every later call raises PipelineError(error) until :meth:`come_up`."""
        with self._cond:
            self._down = error

    def come_up(self) -> None:
        """Answer again (with the data kept)."""
        with self._cond:
            self._down = None

    def restart(self) -> None:
        """Lose every topic, record and offset (members stay, at offset 0), and answer."""
        with self._cond:
            self._log.clear()
            for group in self._groups.values():
                group.committed.clear()
                for m in group.members:
                    m.position.clear()
            self._down = None
            self.epoch += 1
            self._cond.notify_all()

    def _check(self) -> None:
        if self._down is not None:
            raise PipelineError(f"bus {self.name}: {self._down}")

    # ---- data path -------------------------------------------------------------------------

    def _topic(self, name: str, partitions: int | None = None) -> list[list[Record]]:
        if name not in self._log:
            if not self.auto_create and partitions is None:
                raise PipelineError(f"bus {self.name}: unknown topic {name!r}")
            self._log[name] = [[] for _ in range(partitions or self.partitions)]
            for gname, group in self._groups.items():
                if any(name in m.topics for m in group.members):
                    self._rebalance(gname)
        return self._log[name]

    def publish(self, messages: Sequence[Message], timeout: float = 15.0) -> list[str]:
        """Append each message to the partition of its key (CRC-32 of the key)."""
        with self._cond:
            self._check()
            for m in messages:
                parts = self._topic(m.topic)
                p = zlib.crc32(m.key.encode()) % len(parts)
                parts[p].append(Record(m.topic, p, len(parts[p]), m.key.encode(), encode(m)))
                self.published.append(m)
            self._cond.notify_all()
            return [m.message_id for m in messages]

    def subscribe(self, group: str, topics: Sequence[str]) -> MemorySubscription:
        """Join ``group``; the group rebalances."""
        with self._cond:
            self._check()
            sub = MemorySubscription(self, group, topics)
            self._groups.setdefault(group, _Group()).members.append(sub)
            if self.auto_create:
                for t in topics:
                    self._topic(t)
            self._rebalance(group)
            return sub

    def _rebalance(self, name: str) -> None:
        group = self._groups[name]
        for m in group.members:
            m.assigned = []
            m.position = {}
        if not group.members:
            return
        wanted = sorted({t for m in group.members for t in m.topics if t in self._log})
        for i, tp in enumerate((t, p) for t in wanted for p in range(len(self._log[t]))):
            members = [m for m in group.members if tp[0] in m.topics]
            member = members[i % len(members)]
            member.assigned.append(tp)
            member.position[tp] = group.committed.get(tp, 0)

    def topics(self, timeout: float = 5.0) -> set[str]:
        """Names of the topics."""
        with self._cond:
            self._check()
            return set(self._log)

    def ensure_topics(self, topics: Sequence[str], partitions: int = 1) -> list[str]:
        """Create the missing topics with ``partitions`` partitions."""
        with self._cond:
            self._check()
            created = [t for t in topics if t not in self._log]
            for t in created:
                self._topic(t, partitions)
            return created

    # ---- monitoring ------------------------------------------------------------------------

    def cluster(self) -> BrokerState:
        """One broker; ``up=False`` while down."""
        with self._cond:
            if self._down is not None:
                return BrokerState(self.name, up=False, error=f"PipelineError: {self._down}")
            return BrokerState(
                self.name,
                up=True,
                cluster_id=f"memory-{self.epoch}",
                controller=0,
                brokers=1,
                topics={t: len(p) for t, p in sorted(self._log.items())},
            )

    def watermarks(self, topic: str) -> dict[int, tuple[int, int]]:
        """``{partition: (0, records)}``."""
        with self._cond:
            self._check()
            return {p: (0, len(r)) for p, r in enumerate(self._log.get(topic, []))}

    def committed(self, group: str, topic: str) -> dict[int, int | None]:
        """Committed offsets of the partitions ``group`` committed on."""
        with self._cond:
            self._check()
            g = self._groups.get(group)
            if g is None:
                return {}
            return {p: off for (t, p), off in sorted(g.committed.items()) if t == topic}

    def group_alive(self, group: str) -> bool:
        """Whether ``group`` has open members."""
        with self._cond:
            self._check()
            g = self._groups.get(group)
            return bool(g and g.members)

    def reset(self) -> None:
        """Nothing to reconnect."""

    def close(self) -> None:
        """Nothing to release."""
