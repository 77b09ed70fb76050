"""Streaming RAW reader: chunked reads, compiled record walk, per-record CRC, salvage."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
from crc32c import crc32c

from jaas._closing import Closing
from jaas.errors import (
    ConfigError,
    CorruptRecordError,
    FormatError,
    InvalidContentError,
    TruncatedFileError,
)
from jaas.formats import _raw_layout as L
from jaas.formats.events import HitEvents

__all__ = ["LostRange", "RawReader", "SalvageReport"]

CHUNK_BYTES = 1 << 20  # read size: small enough that CRC and copy find the bytes in cache
BATCH_BYTES = 4 << 20  # hit bytes per batch: small enough to stay in cache when reused (bench)
_MAGIC_J, _MAGIC_E = ord("J"), ord("E")
# PMT ids of a file that does not say its detector: every channel of a JUNO-like detector
# (17,612 20-inch + 25,600 3-inch in the central detector, 2,400 in the water pool)
MAX_PMT_CHANNELS = 17_612 + 25_600 + 2_400


def pmt_limit(metadata: str) -> int:
    """Number of valid PMT ids (0..n-1) for a RAW file with this header metadata.

    The simulation writes ``n_pmt`` (and its detector configuration) in the metadata; a
    file that states neither may use any channel of a JUNO-like detector.
    """
    try:
        meta = json.loads(metadata) if metadata else None
    except ValueError:
        meta = None
    if not isinstance(meta, dict):
        return MAX_PMT_CHANNELS
    n = meta.get("n_pmt")
    if isinstance(n, int) and n >= 1:
        return n
    det = meta.get("detector")
    if isinstance(det, dict) and isinstance(det.get("params"), dict):
        n_full, scale = det["params"].get("n_pmt"), det.get("pmt_scale", 1.0)
        if isinstance(n_full, int) and isinstance(scale, int | float):
            return max(1, round(n_full * scale))  # as jaas.sim.detector.Detector does
    return MAX_PMT_CHANNELS


@dataclass
class LostRange:
    """A byte range salvage skipped.

    Attributes:
        start, end: byte offsets of the skipped range [start, end).
        nbytes: end - start.
        reason: why the first record of the range was refused.
        event_before: id of the last event recovered before the range (None: none).
        event_after: id of the first event recovered after the range (None: none).
    """

    start: int
    end: int
    reason: str
    event_before: int | None = None
    event_after: int | None = None
    nbytes: int = field(init=False)
    n_missing: int | None = None  # inferred from the end record when a neighbour is unknown

    def __post_init__(self) -> None:
        self.nbytes = self.end - self.start

    @property
    def missing_ids(self) -> range | None:
        """Event ids lost, assuming ids are consecutive (None when unknown)."""
        if self.event_before is None or self.event_after is None:
            if self.n_missing is None:
                return None
            if self.event_after is not None:
                return range(max(self.event_after - self.n_missing, 0), self.event_after)
            if self.event_before is not None:
                return range(self.event_before + 1, self.event_before + 1 + self.n_missing)
            return None
        if self.event_after <= self.event_before:
            return None
        return range(self.event_before + 1, self.event_after)

    def __str__(self) -> str:
        ids = self.missing_ids
        if ids is None:
            what = "lost event ids unknown"
        elif len(ids) == 0:
            what = "no event id missing"
        elif len(ids) == 1:
            what = f"event id {ids[0]} lost"
        else:
            what = f"event ids {ids[0]}..{ids[-1]} lost ({len(ids)} events)"
        return f"bytes {self.start}-{self.end} ({self.nbytes} bytes): {self.reason}; {what}"


@dataclass
class SalvageReport:
    """What a salvage read skipped; filled while the reader iterates.

    Attributes:
        path: the file.
        lost: the skipped byte ranges, in file order.
        events_recovered: events yielded.
        events_lost_estimate: from the end-of-file record's count when it was found, else
            from the gaps in event ids around each lost range; None when unknown.
        end_record: whether a valid end-of-file record was found.
    """

    path: str
    lost: list[LostRange] = field(default_factory=list)
    events_recovered: int = 0
    events_lost_estimate: int | None = None
    end_record: bool = False

    @property
    def ok(self) -> bool:
        """True when nothing was lost."""
        return not self.lost

    def __str__(self) -> str:
        est = "unknown" if self.events_lost_estimate is None else str(self.events_lost_estimate)
        lines = [
            f"{self.path}: {self.events_recovered} events recovered, {len(self.lost)} damaged "
            f"range(s), {est} events lost"
            + ("" if self.end_record else ", no valid end-of-file record")
        ]
        lines += [f"  {r}" for r in self.lost]
        return "\n".join(lines)


def _unreferenced(ev: HitEvents) -> bool:
    """True when no view of ``ev``'s arrays is alive outside the reader (CPython refcount:
    one reference from ``ev`` itself plus the call's argument)."""
    return all(
        sys.getrefcount(a) == 2
        for a in (ev.event_id, ev.t, ev.trigger, ev.offsets, ev.pmt, ev.charge, ev.time)
    )


class RawReader(Closing):
    """Stream a RAW file as HitEvents batches of at most ``batch_events`` events.

    The file is read in chunks of ``chunk_bytes``; memory stays bounded (one chunk plus
    one batch of at most ``batch_events`` events and ``batch_bytes`` of hits). Every
    record's CRC-32C is checked before its event is yielded. Without
    salvage a damaged record raises CorruptRecordError and a short file
    TruncatedFileError, after the valid events before it were yielded. With
    ``salvage=True`` damaged ranges are skipped (the reader resynchronises on the next
    record whose length and CRC validate) and described in ``report``. A damaged file
    header always raises FormatError.

    Args:
        path: the RAW file.
        salvage: skip damaged records instead of raising.
        batch_events: maximum events per yielded batch.
        chunk_bytes: read size (grown automatically for a record larger than it).
        batch_bytes: maximum hit bytes per yielded batch (exceeded only by a batch of
            one event larger than it).

    Example:
        >>> with RawReader("run1.raw", salvage=True) as r:   # doctest: +SKIP
        ...     n = sum(len(b) for b in r)
        ...     print(r.report)
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        salvage: bool = False,
        batch_events: int = 10_000,
        chunk_bytes: int = CHUNK_BYTES,
        batch_bytes: int = BATCH_BYTES,
    ) -> None:
        if batch_events < 1 or chunk_bytes < 64:
            raise ConfigError(
                f"batch_events must be >= 1 and chunk_bytes >= 64, got {batch_events}, "
                f"{chunk_bytes}"
            )
        self.path = os.fspath(path)
        self.salvage = salvage
        self.batch_events = batch_events
        self.batch_hits = max(batch_bytes // L.HIT_BYTES, 1)
        self._f = open(self.path, "rb", buffering=0)  # noqa: SIM115
        try:
            self.size = os.fstat(self._f.fileno()).st_size
            head = os.pread(self._f.fileno(), 4096, 0)
            if head[:8] == L.FILE_MAGIC and len(head) >= 16:
                hlen = int.from_bytes(head[12:16], "little")
                if len(head) < hlen <= L.HEADER_MAX:
                    head = os.pread(self._f.fileno(), hlen, 0)
            self.header = L.unpack_header(head, self.path)
        except BaseException:
            self._f.close()
            raise
        self.report: SalvageReport | None = SalvageReport(self.path) if salvage else None
        self.n_pmt = pmt_limit(self.header.metadata)
        self._buf = np.empty(max(chunk_bytes, 64) // 4 * 4, np.uint8)
        self._rs = np.empty(batch_events, np.int64)
        self._rnh = np.empty(batch_events, np.int64)
        self._spare: HitEvents | None = None  # last batch's arrays, reused when released

    # -- buffer: buf[pos:n] holds file bytes [base + pos, base + n) ---------------------
    def _seek(self, off: int) -> None:
        self._f.seek(off)
        self._base, self._pos, self._n, self._eof = off, 0, 0, off >= self.size

    def _moveto(self, off: int) -> None:
        if self._base <= off <= self._base + self._n:
            self._pos = off - self._base
        else:
            self._seek(off)

    def _refill(self, need: int) -> None:
        """Move the unread bytes to the buffer start and read until ``need`` are there."""
        keep = self._n - self._pos
        if need > len(self._buf):
            new = np.empty((max(need, 2 * len(self._buf)) + 3) // 4 * 4, np.uint8)
            new[:keep] = self._buf[self._pos : self._n]
            self._buf = new
        elif self._pos:
            self._buf[:keep] = self._buf[self._pos : self._n]
        self._base += self._pos
        self._pos, self._n = 0, keep
        view = self._buf.data
        while self._n < len(self._buf) and not self._eof:
            got = self._f.readinto(view[self._n :])
            if not got:
                self._eof = True
            else:
                self._n += got
        del view

    def _avail(self) -> int:
        return self._n - self._pos

    # -- iteration ----------------------------------------------------------------------
    def __iter__(self) -> Iterator[HitEvents]:
        self._seek(self.header.length)
        self._index = 0  # events decoded so far
        self._last_id: int | None = None
        self._chain = 0
        self._lost_any = False
        self._ev: HitEvents | None = None
        self._k = 0
        if self.report is not None:
            self.report = SalvageReport(self.path)
        while True:
            if self._avail() < L.EVENT_HEAD.size and not self._eof:
                self._refill(L.EVENT_HEAD.size)
            if self._pos % 4:
                self._refill(0)
            nbytes = self._avail() // 4 * 4
            words = self._buf[self._pos : self._pos + nbytes].view(np.uint32)
            ev = self._ev if self._ev is not None else self._new_batch(0)
            free_hits = len(ev.pmt) - int(ev.offsets[self._k])
            free_events = self.batch_events - self._k
            k, status, stop = L.scan(words, free_events, free_hits, self._rs, self._rnh)
            if k:
                bad, why = self._verify(words, k)
                good = k if bad < 0 else bad
                if good:
                    self._decode(words, good)
                if bad >= 0:
                    self._pos += 4 * int(self._rs[bad])
                    yield from self._flush()
                    self._damaged(why, CorruptRecordError)
                    continue
            self._pos += 4 * stop
            if status == L.FULL:
                if self._k == 0:  # a record with more hits than a batch holds
                    self._new_batch(int(words[stop + 7]))
                else:
                    yield from self._flush()
                continue
            if status == L.NEED_MORE and not self._eof:
                need = L.EVENT_HEAD.size
                if self._avail() >= 8:
                    p = self._pos
                    need = max(need, int(self._buf[p + 4 : p + 8].view("<u4")[0]))
                self._refill(need)
                continue
            yield from self._flush()
            if status == L.NEED_MORE:
                if self._avail() == 0:
                    why = "missing end-of-file record"
                else:
                    why = self._truncated_reason()
                if not self._damaged(why, TruncatedFileError):
                    break
            elif status == L.AT_END:
                if self._end_record():
                    break
            else:
                self._damaged(self._bad_head_reason(status), CorruptRecordError)
        yield from self._flush()
        self._finish()

    def _new_batch(self, min_hits: int) -> HitEvents:
        n, h = self.batch_events, max(self.batch_hits, min_hits)
        spare, self._spare = self._spare, None
        if spare is not None and len(spare.pmt) >= h and _unreferenced(spare):
            # the caller dropped the previous batch: reuse its memory instead of having
            # the kernel hand out (and zero) fresh pages for every batch
            self._ev = spare
            self._k = 0
            return spare
        self._ev = HitEvents(
            event_id=np.empty(n, np.uint64),
            t=np.empty(n, np.int64),
            trigger=np.empty(n, np.uint16),
            offsets=np.zeros(n + 1, np.int64),
            pmt=np.empty(h, np.uint32),
            charge=np.empty(h, np.float32),
            time=np.empty(h, np.float32),
        )
        self._k = 0
        return self._ev

    def _flush(self) -> Iterator[HitEvents]:
        """Yield the events decoded so far (views of the batch arrays) and start anew."""
        ev, k = self._ev, self._k
        if ev is None or k == 0:
            return
        h = int(ev.offsets[k])
        self._ev, self._k = None, 0
        self._spare = ev
        yield HitEvents(
            event_id=ev.event_id[:k],
            t=ev.t[:k],
            trigger=ev.trigger[:k],
            offsets=ev.offsets[: k + 1],
            pmt=ev.pmt[:h],
            charge=ev.charge[:h],
            time=ev.time[:h],
        )

    def _verify(self, words: npt.NDArray[np.uint32], k: int) -> tuple[int, str]:
        """CRC-check the first ``k`` scanned records; return (first bad index or -1, why)."""
        starts = self._rs[:k] * 4
        ends = starts + L.EVENT_HEAD.size + L.HIT_BYTES * self._rnh[:k]
        stored = words[ends // 4]
        mv = words.data.cast("B")
        computed = np.array(
            [crc32c(mv[s:e]) for s, e in zip(starts.tolist(), ends.tolist(), strict=True)],
            dtype=np.uint32,
        )
        bad = np.flatnonzero(computed != stored)
        good = k if not len(bad) else int(bad[0])
        self._chain = crc32c(stored[:good].astype("<u4").tobytes(), self._chain)
        if not len(bad):
            return -1, ""
        i = int(bad[0])
        return i, (
            f"CRC-32C mismatch in event record: stored 0x{int(stored[i]):08x}, "
            f"computed 0x{int(computed[i]):08x}"
        )

    def _decode(self, words: npt.NDArray[np.uint32], k: int) -> None:
        ev = self._ev
        assert ev is not None
        L.gather(
            words,
            self._rs[:k],
            self._rnh[:k],
            (
                ev.event_id.view(np.int64),
                ev.t,
                ev.trigger,
                ev.offsets,
                ev.pmt,
                ev.charge.view(np.uint32),
                ev.time.view(np.uint32),
            ),
            self._k,
        )
        self._check_content(ev, self._k, k)
        self._k += k
        self._index += k
        self._last_id = int(ev.event_id[self._k - 1])
        if self.report is not None:
            self.report.events_recovered += k

    def _check_content(self, ev: HitEvents, first: int, k: int) -> None:
        """Refuse impossible values in events [first, first + k) of ``ev`` (CRCs passed)."""
        a, b = int(ev.offsets[first]), int(ev.offsets[first + k])
        limit = self.n_pmt
        checks = (
            ("pmt", ev.pmt[a:b] >= limit, f"PMT id out of range (the detector has {limit})"),
            ("charge", ~np.isfinite(ev.charge[a:b]), "charge is not a finite number"),
            ("time", ~np.isfinite(ev.time[a:b]), "hit time is not a finite number"),
        )
        for name, bad, what in checks:
            if bad.any():
                hit = a + int(np.argmax(bad))
                j = int(np.searchsorted(ev.offsets[first : first + k + 1], hit, "right")) - 1
                value = getattr(ev, name)[hit]
                raise InvalidContentError(
                    f"{what}: {value} in hit {hit - int(ev.offsets[first + j])} of event id "
                    f"{int(ev.event_id[first + j])}; the file is readable but its content is "
                    "wrong at the source (regenerate it; retrying cannot help)",
                    field=name,
                    path=self.path,
                    event=self._index + j,
                )

    # -- damage -------------------------------------------------------------------------
    def _event_id_here(self) -> int | None:
        if self._avail() < 16 or bytes(self._buf[self._pos : self._pos + 4]) != L.EVENT_MAGIC:
            return None
        return int(self._buf[self._pos + 8 : self._pos + 16].view("<u8")[0])

    def _truncated_reason(self) -> str:
        left = self._avail()
        head = bytes(self._buf[self._pos : self._pos + min(left, 4)])
        if left < L.EVENT_HEAD.size:
            return (
                f"truncated event record: its header needs {L.EVENT_HEAD.size} bytes, the "
                f"file ends after {left}: expected {L.EVENT_HEAD.size - left} more bytes"
                + ("" if L.EVENT_MAGIC.startswith(head) else f" (and magic {head!r} is bad)")
            )
        length = int(self._buf[self._pos + 4 : self._pos + 8].view("<u4")[0])
        return (
            f"truncated event record: record is {length} bytes, the file ends after "
            f"{left}: expected {length - left} more bytes"
        )

    def _bad_head_reason(self, status: int) -> str:
        p = self._pos
        if status == L.BAD_MAGIC:
            head = bytes(self._buf[p : p + 4])
            return f"bad record magic {head!r}, expected {L.EVENT_MAGIC!r} or {L.END_MAGIC!r}"
        length, nh = (int(x) for x in self._buf[p + 4 : p + 32].view("<u4")[[0, 6]])
        return (
            f"bad event record length {length}: {nh} hits need {L.record_bytes(nh)} "
            f"(limit {L.MAX_RECORD_BYTES})"
        )

    def _damaged(self, why: str, kind: type[FormatError]) -> bool:
        """Raise, or in salvage mode skip to the next valid record; False at end of file."""
        off = self._base + self._pos
        eid = self._event_id_here()
        if self.report is None:
            if eid is not None and kind is CorruptRecordError and "CRC" not in why:
                why += f" (event id {eid} as stored)"
            elif eid is not None:
                why = why.replace("event record", f"event record (event id {eid}, unverified)", 1)
            raise kind(why, path=self.path, offset=off, event=self._index)
        self._lost_any = True
        found = self._resync(off + 1) if off < self.size else None
        end, after = (found[0], found[1]) if found else (self.size, None)
        self.report.lost.append(LostRange(off, end, why, self._last_id, after))
        if found is None:
            return False
        self._moveto(end)
        self._refill(0)
        return True

    def _resync(self, off: int) -> tuple[int, int | None] | None:
        """First offset >= off with a valid event or end record, and its event id."""
        while off < self.size:
            self._moveto(off)
            self._refill(L.END_BYTES)
            seg = self._buf[: self._n]
            j = np.flatnonzero(seg[:-3] == _MAGIC_J) if len(seg) >= 4 else np.zeros(0, int)
            j = j[seg[j + 1] == _MAGIC_E]
            cands = [int(c) for c in j if bytes(seg[c : c + 4]) in (L.EVENT_MAGIC, L.END_MAGIC)]
            if not cands:
                if self._eof:
                    return None
                off = self._base + max(self._n - 3, 1)
                continue
            base = self._base
            for c in cands:
                ok, eid = self._valid_at(base + c)
                if ok:
                    return base + c, eid
            off = base + cands[-1] + 1
        return None

    def _valid_at(self, off: int) -> tuple[bool, int | None]:
        self._moveto(off)
        self._refill(L.END_BYTES)
        data = self._buf[: self._n]
        if len(data) >= 4 and bytes(data[:4]) == L.END_MAGIC:
            try:
                L.unpack_end(bytes(data[: L.END_BYTES]), self.path, off, self._index)
            except FormatError:
                return False, None
            return True, None
        if len(data) < L.EVENT_HEAD.size:
            return False, None
        _, length, eid, _, _, _, nh = L.EVENT_HEAD.unpack_from(data.data)
        if length != L.record_bytes(nh) or length > L.MAX_RECORD_BYTES:
            return False, None
        self._refill(length)
        if self._n < length:
            return False, None
        stored = int(self._buf[length - 4 : length].view("<u4")[0])
        return crc32c(self._buf.data[: length - 4]) == stored, eid

    def _end_record(self) -> bool:
        """Check the end-of-file record at pos; True when reading is complete."""
        self._refill(L.END_BYTES)
        off = self._base + self._pos
        data = bytes(self._buf[self._pos : self._pos + min(self._avail(), L.END_BYTES)])
        try:
            end = L.unpack_end(data, self.path, off, self._index)
        except (CorruptRecordError, TruncatedFileError) as exc:
            return not self._damaged(exc.reason, type(exc))
        problems = []
        if end.n_events != self._index:
            problems.append(
                f"end-of-file record counts {end.n_events} events, {self._index} were read"
            )
        elif end.crc_chain != self._chain:
            problems.append(
                f"end-of-file record CRC chain 0x{end.crc_chain:08x} does not match the "
                f"records read (0x{self._chain:08x}): records were replaced"
            )
        tail = self.size - off - L.END_BYTES
        if tail > 0:
            problems.append(f"unexpected {tail} bytes after the end-of-file record")
        if self.report is None:
            if problems:
                raise CorruptRecordError("; ".join(problems), path=self.path, offset=off)
            return True
        self.report.end_record = True
        self.report.events_lost_estimate = max(end.n_events - self._index, 0)
        if problems and not self._lost_any and end.n_events != self._index:
            self.report.lost.append(LostRange(off, off, problems[0], self._last_id))
        if tail > 0:
            self.report.lost.append(
                LostRange(off + L.END_BYTES, self.size, problems[-1], self._last_id)
            )
        return True

    def _finish(self) -> None:
        r = self.report
        if r is None:
            return
        if r.end_record:
            unknown = [x for x in r.lost if x.missing_ids is None]
            if len(unknown) == 1 and r.events_lost_estimate is not None:
                known = sum(len(x.missing_ids or ()) for x in r.lost if x is not unknown[0])
                unknown[0].n_missing = max(r.events_lost_estimate - known, 0)
            return
        gaps = [x.missing_ids for x in r.lost]
        r.events_lost_estimate = (
            sum(len(g) for g in gaps if g is not None) if all(g is not None for g in gaps) else None
        )

    # -- context manager ----------------------------------------------------------------
    def close(self) -> None:
        """Close the file."""
        self._f.close()
