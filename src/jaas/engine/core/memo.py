"""What warm queries reuse: an explicit memo object, owned by whoever owns the columns.

No global state in the core: a dataset's column cache (or a Dask worker's) holds one
``VetoMemo`` and passes it into :func:`jaas.engine.core.partition.run_partitions`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from jaas.engine.core.exposure import mc_samples
from jaas.engine.core.plan import Partition
from jaas.engine.core.spec import TRACK_COLUMNS, Spec

if TYPE_CHECKING:
    from jaas.engine.core.partition import VetoPhase

__all__ = ["VetoMemo"]

I64 = npt.NDArray[np.int64]


def _frozen(a: np.ndarray) -> bool:
    """True if ``a`` cannot change: read-only down to the array owning its memory."""
    b: object = a
    while isinstance(b, np.ndarray):
        if b.flags.writeable:
            return False
        b = b.base
    return b is None


class VetoMemo:
    """What a warm query can reuse, owned by whoever owns the columns (a dataset's
    column cache, a Dask worker's plugin) and passed in explicitly:

    * the volume-veto Monte Carlo samples of a few recent (segments, spec) keys (a pure
      function of them), see :meth:`samples`;
    * the veto phase of each partition of the last (stream, vetoes) seen: a query that
      changes only the pair cuts skips it. Only for read-only columns (the column
      cache's), held here so that their identity stays valid; one stream at a time.
    """

    max_partitions = 64
    max_samples = 4
    max_joined = 4

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._samples: dict[tuple[bytes, int, float, int], tuple[np.ndarray, ...]] = {}
        # read-only pieces -> their read-only concatenation (the pieces held: their
        # memory, hence the key, stays valid)
        self._joined: dict[tuple[Any, ...], tuple[list[np.ndarray], np.ndarray]] = {}
        self._key: tuple[Any, ...] | None = None
        self._arrays: list[np.ndarray] = []
        self._phases: dict[Partition, VetoPhase] = {}
        self._sorted: np.ndarray | None = None  # a read-only time column checked sorted

    def samples(self, segments: I64, spec: Spec) -> tuple[np.ndarray, ...]:
        """``mc_samples`` for ``segments`` and ``spec``, remembered (read-only arrays)."""
        key = (
            np.ascontiguousarray(segments).tobytes(),
            spec.mc_samples,
            spec.fiducial_radius,
            spec.mc_seed,
        )
        with self._lock:
            got = self._samples.get(key)
        if got is None:
            got = mc_samples(segments, spec.mc_samples, spec.fiducial_radius, spec.mc_seed)
            for a in got:
                a.setflags(write=False)
            with self._lock:
                if len(self._samples) >= self.max_samples:
                    self._samples.pop(next(iter(self._samples)))
                self._samples[key] = got
        return got

    def phases(
        self, cols: Mapping[str, np.ndarray], spec: Spec, segments: I64
    ) -> dict[Partition, VetoPhase] | None:
        """The remembered veto phases for this stream and vetoes (empty when new), or
        None when the columns may change (not read-only)."""
        names = ["t", *(v.trigger for v in spec.vetoes)]
        if any(v.kind != "detector" for v in spec.vetoes):
            names += ["x", "y", "z"]
        if any(v.kind == "cylinder" for v in spec.vetoes):
            names += list(TRACK_COLUMNS)
        arrays = [cols[n] for n in dict.fromkeys(names)]
        if not all(isinstance(a, np.ndarray) and _frozen(a) for a in arrays):
            return None
        key = (
            spec.vetoes,
            spec.gap_veto,
            spec.fiducial_radius,
            spec.mc_samples,
            spec.mc_seed,
            np.ascontiguousarray(segments).tobytes(),
            tuple(id(a) for a in arrays),
        )
        with self._lock:
            same = key == self._key and all(
                a is b for a, b in zip(self._arrays, arrays, strict=True)
            )
            if not same:
                self._key, self._arrays, self._phases = key, arrays, {}
            return self._phases

    def joined(self, pieces: list[np.ndarray], join: Callable[[], np.ndarray]) -> np.ndarray:
        """``join()`` (e.g. the concatenation of ``pieces``), remembered when every piece
        is read-only: a warm query whose partitions reuse their veto phases gets the
        same merged per-event veto bits without copying them again. The result is then
        read-only too."""
        if not all(_frozen(a) for a in pieces):
            return join()
        key = tuple(
            (a.__array_interface__["data"][0], a.shape, a.strides, a.dtype.str) for a in pieces
        )
        with self._lock:
            got = self._joined.get(key)
        if got is not None:
            return got[1]
        out = join()
        out.setflags(write=False)
        with self._lock:
            if len(self._joined) >= self.max_joined:
                self._joined.pop(next(iter(self._joined)))
            self._joined[key] = (pieces, out)
        return out

    def known_sorted(self, t: np.ndarray) -> bool:
        """True if the read-only ``t`` was already found time-sorted here; else checks it
        (``first_unsorted``) and remembers it if sorted. Warm queries skip the check."""
        from jaas.engine.core._intervals import first_unsorted

        with self._lock:
            if self._sorted is t:
                return True
        if not _frozen(t) or int(first_unsorted(t)) >= 0:
            return False
        with self._lock:
            self._sorted = t  # held: its identity stays valid
        return True

    def clear(self) -> None:
        """Forget everything remembered."""
        with self._lock:
            self._samples.clear()
            self._key, self._arrays, self._phases = None, [], {}
            self._sorted = None
            self._joined.clear()
