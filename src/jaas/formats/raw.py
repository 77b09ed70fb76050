"""RAW files, our binary DAQ format: writer, streaming reader, salvage and quick info.

The byte layout, CRC coverage and salvage rules are specified in ``docs/raw-format.md``.

Example:
    >>> with RawWriter("run1.raw", run=1, file_seq=0) as w:   # doctest: +SKIP
    ...     w.write_batch(events)
    >>> for batch in RawReader("run1.raw"):                    # doctest: +SKIP
    ...     print(len(batch), batch.t[0])
"""

from __future__ import annotations

import contextlib
import os
import struct
from types import TracebackType
from typing import Any, BinaryIO

import numpy as np
import numpy.typing as npt
from crc32c import crc32c

from jaas._io import atomic_path
from jaas.errors import ConfigError, FormatError, TruncatedFileError
from jaas.formats import _raw_layout as L
from jaas.formats._raw_layout import RawHeader
from jaas.formats._raw_reader import LostRange, RawReader, SalvageReport
from jaas.formats.events import HitEvents

__all__ = [
    "LostRange",
    "RawHeader",
    "RawReader",
    "RawWriter",
    "SalvageReport",
    "raw_info",
    "read_raw",
]

_WRITE_CHUNK = 8 << 20  # bytes laid out per write() call in write_batch (buffer reused)
_U32 = 1 << 32


def _check_int(name: str, value: int, lo: int, hi: int) -> int:
    value = int(value)
    if not lo <= value < hi:
        raise ConfigError(f"RAW {name} must be in [{lo}, {hi}), got {value}")
    return value


class RawWriter:
    """Write a RAW file event by event or batch by batch; atomic (temp name, then rename).

    Events must come in time order (RAW files of a run are time-sorted); an event earlier
    than the previous one is refused with ConfigError and not written. Leaving a ``with``
    block by an exception leaves no file behind.

    Args:
        path: output file.
        run: run number (uint32).
        file_seq: sequence number of the file within the run (uint32).
        start_time: ns since the Unix epoch when the file was opened.
        metadata: free text stored in the header (e.g. JSON).

    Example:
        >>> with RawWriter("r.raw", run=7, file_seq=0, start_time=t0) as w:   # doctest: +SKIP
        ...     w.write_event(0, t0 + 10, 1, pmt, charge, time)
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        run: int,
        file_seq: int,
        start_time: int = 0,
        metadata: str = "",
    ) -> None:
        self.path = os.fspath(path)
        self.header = RawHeader(
            version=L.VERSION,
            run=_check_int("run", run, 0, _U32),
            file_seq=_check_int("file_seq", file_seq, 0, _U32),
            start_time=_check_int("start_time", start_time, -(1 << 63), 1 << 63),
            metadata=metadata,
        )
        if self.header.length > L.HEADER_MAX:
            raise ConfigError(f"RAW metadata too long: header would exceed {L.HEADER_MAX} bytes")
        self._n_events = 0
        self._n_hits = 0
        self._t_first = 0
        self._t_last: int | None = None
        self._chain = 0
        self._wbuf = np.empty(0, np.uint32)
        self._stack = contextlib.ExitStack()
        tmp = self._stack.enter_context(atomic_path(self.path))
        self._f: BinaryIO | None = self._stack.enter_context(open(tmp, "wb"))  # noqa: SIM115
        head = self.header.pack()
        self._f.write(head)
        self._bytes = len(head)

    @property
    def n_events(self) -> int:
        """Events written so far."""
        return self._n_events

    @property
    def bytes_written(self) -> int:
        """Bytes written so far (the end-of-file record is added by close)."""
        return self._bytes

    def _file(self) -> BinaryIO:
        if self._f is None:
            raise ConfigError(f"{self.path}: RAW writer is closed")
        return self._f

    def _check_order(self, event_id: int, t_first: int) -> None:
        if self._t_last is not None and t_first < self._t_last:
            raise ConfigError(
                f"{self.path}: event id {event_id} at t={t_first} ns is earlier than the "
                f"previous event (t={self._t_last} ns); RAW files must be time-ordered"
            )

    def _account(self, t_first: int, t_last: int, n: int, nhits: int) -> None:
        if self._n_events == 0:
            self._t_first = t_first
        self._t_last = t_last
        self._n_events += n
        self._n_hits += nhits

    def write_event(
        self,
        event_id: int,
        t: int,
        trigger: int,
        pmt: npt.ArrayLike,
        charge: npt.ArrayLike,
        time: npt.ArrayLike,
    ) -> None:
        """Append one event.

        Args:
            event_id: trigger number in the run (uint64).
            t: trigger time, ns since the Unix epoch; not earlier than the previous event.
            trigger: TriggerBit mask (uint16).
            pmt, charge, time: hit arrays of equal length (PMT id, PE, ns from trigger).
        """
        f = self._file()
        event_id = _check_int("event_id", event_id, 0, 1 << 64)
        t = _check_int("trigger time", t, -(1 << 63), 1 << 63)
        trigger = _check_int("trigger", trigger, 0, 1 << 16)
        p = np.asarray(pmt)
        c = np.asarray(charge, dtype=np.float32)
        h = np.asarray(time, dtype=np.float32)
        if not p.ndim == c.ndim == h.ndim == 1 or not len(p) == len(c) == len(h):
            raise ConfigError(
                f"{self.path}: event id {event_id}: pmt, charge and time must be 1-d arrays "
                f"of equal length, got shapes {p.shape}, {c.shape}, {h.shape}"
            )
        if len(p) and (p.min() < 0 or p.max() >= _U32):
            raise ConfigError(f"{self.path}: event id {event_id}: PMT ids must fit uint32")
        nh = len(p)
        length = L.record_bytes(nh)
        if length > L.MAX_RECORD_BYTES:
            raise ConfigError(f"{self.path}: event id {event_id}: {nh} hits exceed the limit")
        self._check_order(event_id, t)
        body = L.EVENT_HEAD.pack(L.EVENT_MAGIC, length, event_id, t, trigger, 0, nh)
        body += p.astype("<u4").tobytes() + c.astype("<f4").tobytes() + h.astype("<f4").tobytes()
        crc = crc32c(body)
        f.write(body + struct.pack("<I", crc))
        self._chain = crc32c(struct.pack("<I", crc), self._chain)
        self._bytes += length
        self._account(t, t, 1, nh)

    def write_batch(self, events: HitEvents) -> None:
        """Append a batch of events (time-ordered, not earlier than the last one written).

        Records are laid out by a compiled loop and written with one call per ~8 MB.
        """
        f = self._file()
        n = len(events)
        if n == 0:
            return
        t = np.ascontiguousarray(events.t, dtype=np.int64)
        offsets = np.ascontiguousarray(events.offsets, dtype=np.int64)
        nh = np.diff(offsets)
        if len(offsets) != n + 1 or offsets[0] != 0 or np.any(nh < 0):
            raise ConfigError(f"{self.path}: batch offsets must start at 0 and not decrease")
        nhits = int(offsets[-1])
        if not len(events.pmt) == len(events.charge) == len(events.time) == nhits:
            raise ConfigError(f"{self.path}: batch hit arrays must have offsets[-1] entries")
        event_id = np.ascontiguousarray(events.event_id, dtype=np.uint64)
        bad = np.flatnonzero(t[1:] < t[:-1])
        if len(bad):
            i = int(bad[0]) + 1
            raise ConfigError(
                f"{self.path}: event id {int(event_id[i])} at t={int(t[i])} ns is earlier "
                f"than the previous event (t={int(t[i - 1])} ns); RAW files must be "
                "time-ordered"
            )
        self._check_order(int(event_id[0]), int(t[0]))
        sizes = L.EVENT_OVERHEAD + L.HIT_BYTES * nh
        if sizes.max() > L.MAX_RECORD_BYTES:
            raise ConfigError(f"{self.path}: an event has more hits than the limit")
        trigger = np.ascontiguousarray(events.trigger, dtype=np.uint16)
        pmt = np.ascontiguousarray(events.pmt, dtype=np.uint32)
        charge = np.ascontiguousarray(events.charge, dtype=np.float32).view(np.uint32)
        time = np.ascontiguousarray(events.time, dtype=np.float32).view(np.uint32)
        ends = np.cumsum(sizes)
        eid = event_id.view(np.int64)
        a = 0
        while a < n:
            # events [a, b) fill about _WRITE_CHUNK bytes (at least one event)
            base = int(ends[a - 1]) if a else 0
            b = max(a + 1, int(np.searchsorted(ends, base + _WRITE_CHUNK, side="right")))
            b = min(b, n)
            starts = np.concatenate([[0], ends[a : b - 1] - base]).astype(np.int64)
            total = int(ends[b - 1]) - base
            if len(self._wbuf) < total // 4:
                self._wbuf = np.empty(total // 4, np.uint32)
            words = self._wbuf[: total // 4]
            h0 = int(offsets[a])
            L.fill(
                words,
                starts // 4,
                (
                    eid[a:b],
                    t[a:b],
                    trigger[a:b],
                    offsets[a : b + 1] - h0,
                    pmt[h0 : offsets[b]],
                    charge[h0 : offsets[b]],
                    time[h0 : offsets[b]],
                ),
            )
            mv = words.data.cast("B")
            crc_at = (ends[a:b] - base - 4).tolist()
            crcs = [crc32c(mv[s:e]) for s, e in zip(starts.tolist(), crc_at, strict=True)]
            crc_words = np.array(crcs, dtype=np.uint32)
            words[np.asarray(crc_at, dtype=np.int64) // 4] = crc_words
            self._chain = crc32c(crc_words.astype("<u4").tobytes(), self._chain)
            f.write(mv)
            self._bytes += total
            a = b
        self._account(int(t[0]), int(t[-1]), n, nhits)

    def close(self) -> None:
        """Write the end-of-file record and move the file to its final name."""
        if self._f is None:
            return
        end = L.EndRecord(
            n_events=self._n_events,
            n_hits=self._n_hits,
            t_first=self._t_first,
            t_last=self._t_last if self._t_last is not None else 0,
            crc_chain=self._chain,
        )
        self._f.write(end.pack())
        self._bytes += L.END_BYTES
        self._f = None
        self._stack.close()

    def abort(self) -> None:
        """Discard the file being written."""
        if self._f is None:
            return
        self._f = None
        exc = ConfigError(f"{self.path}: RAW writing aborted")
        self._stack.__exit__(ConfigError, exc, None)

    def __enter__(self) -> RawWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        elif self._f is not None:
            self._f = None
            self._stack.__exit__(exc_type, exc, tb)


def read_raw(path: str | os.PathLike[str], *, salvage: bool = False) -> HitEvents:
    """Read a whole RAW file as one batch.

    Args:
        path: the RAW file.
        salvage: skip damaged records instead of raising (see RawReader).

    Example:
        >>> ev = read_raw("run1.raw")   # doctest: +SKIP
    """
    with RawReader(path, salvage=salvage) as reader:
        return HitEvents.concatenate(list(reader))


def raw_info(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Header fields, event and hit counts, time range and size; reads header and footer only.

    Raises FormatError (or its subclasses) when the header or the end-of-file record is
    damaged; ``jaas raw check --salvage`` then tells what can be recovered.

    Example:
        >>> raw_info("run1.raw")["n_events"]   # doctest: +SKIP
    """
    name = os.fspath(path)
    with open(name, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        head = f.read(L.HEADER_MAX)
        header = L.unpack_header(head, name)
        end_off = size - L.END_BYTES
        if end_off < header.length:
            raise FormatError(
                f"missing end-of-file record: the file has {size} bytes, header "
                f"{header.length} + end record {L.END_BYTES} need more",
                path=name,
                offset=size,
            )
        f.seek(end_off)
        tail = f.read(L.END_BYTES)
        if tail[:4] != L.END_MAGIC:
            raise TruncatedFileError(
                "missing end-of-file record: the file is truncated or damaged; run "
                f"`jaas raw check --salvage {name}` to see what can be recovered",
                path=name,
                offset=size,
            )
        end = L.unpack_end(tail, name, end_off, event=None)
    return {
        "path": name,
        "version": header.version,
        "run": header.run,
        "file_seq": header.file_seq,
        "start_time": header.start_time,
        "metadata": header.metadata,
        "n_events": end.n_events,
        "n_hits": end.n_hits,
        "t_first": end.t_first if end.n_events else None,
        "t_last": end.t_last if end.n_events else None,
        "size": size,
    }
