"""In-memory batch of hit-level events: what the RAW reader yields and the simulation writes."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = ["HitEvents"]


@dataclass
class HitEvents:
    """A batch of events with their PMT hits as flat arrays plus offsets (awkward layout).

    Event ``i`` owns hits ``offsets[i]:offsets[i+1]``.

    Attributes:
        event_id: (n,) uint64, trigger number within the run.
        t: (n,) int64, trigger time in ns since the Unix epoch (UTC).
        trigger: (n,) uint16, TriggerBit mask.
        offsets: (n+1,) int64, starts with 0.
        pmt: (nhits,) uint32, PMT id.
        charge: (nhits,) float32, charge in photoelectrons.
        time: (nhits,) float32, hit time in ns relative to the trigger time.
    """

    event_id: npt.NDArray[np.uint64]
    t: npt.NDArray[np.int64]
    trigger: npt.NDArray[np.uint16]
    offsets: npt.NDArray[np.int64]
    pmt: npt.NDArray[np.uint32]
    charge: npt.NDArray[np.float32]
    time: npt.NDArray[np.float32]

    def __len__(self) -> int:
        return len(self.event_id)

    @property
    def nhits(self) -> npt.NDArray[np.int64]:
        """Number of hits per event."""
        return np.diff(self.offsets)

    def event(self, i: int) -> dict[str, object]:
        """The ``i``-th event of the batch as a dict of scalars and hit arrays."""
        a, b = int(self.offsets[i]), int(self.offsets[i + 1])
        return {
            "event_id": int(self.event_id[i]),
            "t": int(self.t[i]),
            "trigger": int(self.trigger[i]),
            "pmt": self.pmt[a:b],
            "charge": self.charge[a:b],
            "time": self.time[a:b],
        }

    def slice(self, a: int, b: int) -> HitEvents:
        """Events ``a:b`` as a new batch sharing memory with this one (no copy)."""
        lo, hi = int(self.offsets[a]), int(self.offsets[b])
        return HitEvents(
            event_id=self.event_id[a:b],
            t=self.t[a:b],
            trigger=self.trigger[a:b],
            offsets=self.offsets[a : b + 1] - lo,
            pmt=self.pmt[lo:hi],
            charge=self.charge[lo:hi],
            time=self.time[lo:hi],
        )

    @classmethod
    def concatenate(cls, batches: list[HitEvents]) -> HitEvents:
        """Join batches in order into one."""
        if not batches:
            return cls.empty()
        counts = [b.offsets[-1] for b in batches]
        shifts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
        offsets = np.concatenate(
            [[0]] + [b.offsets[1:] + s for b, s in zip(batches, shifts, strict=True)]
        ).astype(np.int64)
        return cls(
            event_id=np.concatenate([b.event_id for b in batches]),
            t=np.concatenate([b.t for b in batches]),
            trigger=np.concatenate([b.trigger for b in batches]),
            offsets=offsets,
            pmt=np.concatenate([b.pmt for b in batches]),
            charge=np.concatenate([b.charge for b in batches]),
            time=np.concatenate([b.time for b in batches]),
        )

    @classmethod
    def empty(cls) -> HitEvents:
        return cls(
            event_id=np.zeros(0, np.uint64),
            t=np.zeros(0, np.int64),
            trigger=np.zeros(0, np.uint16),
            offsets=np.zeros(1, np.int64),
            pmt=np.zeros(0, np.uint32),
            charge=np.zeros(0, np.float32),
            time=np.zeros(0, np.float32),
        )
