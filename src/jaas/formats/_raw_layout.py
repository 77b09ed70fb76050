"""Byte layout of RAW files (see docs/raw-format.md) and the numba kernels that walk it.

Everything is little-endian. Records start at 4-byte aligned offsets and their length is
a multiple of 4, so a chunk of records is viewed as a ``uint32`` word array with zero copy
and the kernels below work on word indices.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numba as nb
import numpy as np
import numpy.typing as npt
from crc32c import crc32c

from jaas.errors import CorruptRecordError, FormatError, TruncatedFileError

FILE_MAGIC = b"JAASRAW\x00"
VERSION = 1  # bumped on any change an older reader would misread (docs/raw-format.md)
EVENT_MAGIC = b"JEVT"
END_MAGIC = b"JEND"
EVENT_MAGIC_WORD = int.from_bytes(EVENT_MAGIC, "little")
END_MAGIC_WORD = int.from_bytes(END_MAGIC, "little")

# File header: magic, version, flags, header_len, run, file_seq, start_time, meta_len;
# then meta_len bytes of metadata (UTF-8), zero padding to a multiple of 4, CRC-32C.
HEADER_FIXED = struct.Struct("<8sHHIIIqI")  # 36 bytes
HEADER_MIN = HEADER_FIXED.size + 4
HEADER_MAX = 1 << 20  # a header longer than this is taken as corrupt
# Event record header: magic, length, event_id, t, trigger, reserved, nhits (32 bytes);
# then the hits as three packed arrays pmt[nhits] (u4), charge[nhits] (f4), time[nhits]
# (f4), so that each column is one contiguous copy; then CRC-32C of all preceding bytes.
EVENT_HEAD = struct.Struct("<4sIQqHHI")
EVENT_HEAD_WORDS = EVENT_HEAD.size // 4
HIT_BYTES = 12
EVENT_OVERHEAD = EVENT_HEAD.size + 4  # header + CRC
MAX_RECORD_BYTES = 1 << 28  # 256 MB: ~22 M hits; longer lengths are taken as corrupt
# End-of-file record: magic, length, n_events, n_hits, t_first, t_last, crc_chain, CRC.
END_RECORD = struct.Struct("<4sIQQqqII")  # 48 bytes
END_BYTES = END_RECORD.size

# _scan status codes
NEED_MORE = 0  # the next record is not complete in the buffer
AT_END = 1  # the next record has the end-of-file magic
BAD_MAGIC = 2
BAD_LENGTH = 3
FULL = 4  # max_records reached


def record_bytes(nhits: int) -> int:
    """Length in bytes of an event record with ``nhits`` hits."""
    return EVENT_OVERHEAD + HIT_BYTES * nhits


@nb.njit(cache=True, nogil=True)
def scan(
    words: npt.NDArray[np.uint32],
    max_records: int,
    max_hits: int,
    rec_start: npt.NDArray[np.int64],
    rec_nh: npt.NDArray[np.int64],
) -> tuple[int, int, int]:
    """Walk event records from word 0; return (n records, status, word where it stopped).

    Stops (status FULL) before ``max_records`` records or before the record that would
    take the hit count past ``max_hits``.
    """
    nwords = words.shape[0]
    n = 0
    w = 0
    hits = 0
    while n < max_records:
        if w >= nwords:
            return n, NEED_MORE, w
        magic = words[w]
        if magic != EVENT_MAGIC_WORD:
            if magic == END_MAGIC_WORD:
                return n, AT_END, w
            return n, BAD_MAGIC, w
        if w + 8 > nwords:
            return n, NEED_MORE, w
        length = int(words[w + 1])
        nh = int(words[w + 7])
        if length != EVENT_OVERHEAD + HIT_BYTES * nh or length > MAX_RECORD_BYTES:
            return n, BAD_LENGTH, w
        lw = length // 4
        if hits + nh > max_hits:
            return n, FULL, w
        if w + lw > nwords:
            return n, NEED_MORE, w
        hits += nh
        rec_start[n] = w
        rec_nh[n] = nh
        n += 1
        w += lw
    return n, FULL, w


# The columns of a batch of events as the record kernels see them: event_id, t, trigger
# (low 16 bits), hit offsets (n + 1), then per hit pmt, charge and time (their float32
# values passed as raw uint32 bits).
EventArrays = tuple[
    npt.NDArray[np.int64],
    npt.NDArray[np.int64],
    npt.NDArray[np.uint16],
    npt.NDArray[np.int64],
    npt.NDArray[np.uint32],
    npt.NDArray[np.uint32],
    npt.NDArray[np.uint32],
]


@nb.njit(cache=True, nogil=True)
def gather(
    words: npt.NDArray[np.uint32],
    rec_start: npt.NDArray[np.int64],
    rec_nh: npt.NDArray[np.int64],
    ev: EventArrays,
    e0: int,
) -> None:
    """Copy the scanned records into the flat event and hit arrays ``ev`` from event
    ``e0`` on.

    ``offsets[e0]`` must hold the hit index where the first record's hits go.
    """
    event_id, t, trigger, offsets, pmt, charge, time = ev
    h = offsets[e0]
    for j in range(rec_start.shape[0]):
        w = rec_start[j]
        i = e0 + j
        event_id[i] = np.int64(words[w + 2]) | (np.int64(words[w + 3]) << 32)
        t[i] = np.int64(words[w + 4]) | (np.int64(words[w + 5]) << 32)
        trigger[i] = words[w + 6] & 0xFFFF
        nh = rec_nh[j]
        b = w + EVENT_HEAD_WORDS
        pmt[h : h + nh] = words[b : b + nh]
        charge[h : h + nh] = words[b + nh : b + 2 * nh]
        time[h : h + nh] = words[b + 2 * nh : b + 3 * nh]
        h += nh
        offsets[i + 1] = h


@nb.njit(cache=True, nogil=True)
def fill(words: npt.NDArray[np.uint32], rec_start: npt.NDArray[np.int64], ev: EventArrays) -> None:
    """Lay out the events ``ev`` as records (all but their CRC word) at word offsets
    ``rec_start``."""
    event_id, t, trigger, offsets, pmt, charge, time = ev
    mask = np.int64(0xFFFFFFFF)
    for i in range(rec_start.shape[0]):
        w = rec_start[i]
        a = offsets[i]
        nh = offsets[i + 1] - a
        words[w] = EVENT_MAGIC_WORD
        words[w + 1] = EVENT_OVERHEAD + HIT_BYTES * nh
        words[w + 2] = event_id[i] & mask
        words[w + 3] = (event_id[i] >> 32) & mask
        words[w + 4] = t[i] & mask
        words[w + 5] = (t[i] >> 32) & mask
        words[w + 6] = trigger[i]
        words[w + 7] = nh
        b = w + EVENT_HEAD_WORDS
        words[b : b + nh] = pmt[a : a + nh]
        words[b + nh : b + 2 * nh] = charge[a : a + nh]
        words[b + 2 * nh : b + 3 * nh] = time[a : a + nh]


@dataclass(frozen=True)
class RawHeader:
    """The file header of a RAW file.

    Attributes:
        version: format version the file was written with.
        run: run number.
        file_seq: sequence number of the file within the run.
        start_time: ns since the Unix epoch (UTC) when the file was opened by the DAQ.
        metadata: free text (UTF-8), e.g. JSON; empty by default.
    """

    version: int
    run: int
    file_seq: int
    start_time: int  # ns
    metadata: str = ""

    @property
    def length(self) -> int:
        """Bytes the header occupies in the file (records start here)."""
        meta = len(self.metadata.encode())
        return HEADER_FIXED.size + (meta + 3) // 4 * 4 + 4

    def pack(self) -> bytes:
        """The header bytes, CRC included."""
        meta = self.metadata.encode()
        pad = b"\x00" * ((-len(meta)) % 4)
        body = HEADER_FIXED.pack(
            FILE_MAGIC,
            self.version,
            0,
            self.length,
            self.run,
            self.file_seq,
            self.start_time,
            len(meta),
        )
        body += meta + pad
        return body + struct.pack("<I", crc32c(body))


def unpack_header(data: bytes, path: str) -> RawHeader:
    """Parse and check a file header from the first bytes of a file.

    Raises:
        TruncatedFileError: fewer bytes than the header needs.
        FormatError: wrong magic, unknown version, bad length or CRC.
    """
    if len(data) < len(FILE_MAGIC) and FILE_MAGIC.startswith(data):
        raise TruncatedFileError(
            f"file header needs at least {HEADER_MIN} bytes, the file has {len(data)}",
            path=path,
            offset=0,
        )
    if data[: len(FILE_MAGIC)] != FILE_MAGIC:
        raise FormatError(
            f"not a RAW file: magic {data[:8]!r}, expected {FILE_MAGIC!r}", path=path, offset=0
        )
    if len(data) < HEADER_MIN:
        raise TruncatedFileError(
            f"file header needs at least {HEADER_MIN} bytes, the file has {len(data)}",
            path=path,
            offset=0,
        )
    _, version, _, hlen, run, seq, start, meta_len = HEADER_FIXED.unpack_from(data)
    if version != VERSION:
        raise FormatError(
            f"RAW format version {version} is not supported (this jaas reads version "
            f"{VERSION}); upgrade jaas",
            path=path,
            offset=8,
        )
    expected_len = HEADER_FIXED.size + (meta_len + 3) // 4 * 4 + 4
    if hlen != expected_len or hlen > HEADER_MAX:
        raise FormatError(
            f"bad file header: header length {hlen} does not match metadata length "
            f"{meta_len} (expected {expected_len})",
            path=path,
            offset=12,
        )
    if len(data) < hlen:
        raise TruncatedFileError(
            f"file header is {hlen} bytes, the file has {len(data)}: "
            f"expected {hlen - len(data)} more bytes",
            path=path,
            offset=0,
        )
    (stored,) = struct.unpack_from("<I", data, hlen - 4)
    computed = crc32c(data[: hlen - 4])
    if stored != computed:
        raise FormatError(
            f"bad file header: CRC-32C mismatch: stored 0x{stored:08x}, computed 0x{computed:08x}",
            path=path,
            offset=0,
        )
    meta = data[HEADER_FIXED.size : HEADER_FIXED.size + meta_len]
    try:
        text = meta.decode()
    except UnicodeDecodeError as exc:
        raise FormatError(
            f"bad file header: metadata is not UTF-8 ({exc})", path=path, offset=HEADER_FIXED.size
        ) from None
    return RawHeader(version=version, run=run, file_seq=seq, start_time=start, metadata=text)


@dataclass(frozen=True)
class EndRecord:
    """The end-of-file record: totals that let a reader detect missing records."""

    n_events: int
    n_hits: int
    t_first: int
    t_last: int
    crc_chain: int

    def pack(self) -> bytes:
        body = END_RECORD.pack(
            END_MAGIC,
            END_BYTES,
            self.n_events,
            self.n_hits,
            self.t_first,
            self.t_last,
            self.crc_chain,
            0,
        )[:-4]
        return body + struct.pack("<I", crc32c(body))


def unpack_end(data: bytes, path: str, offset: int, event: int | None) -> EndRecord:
    """Parse and check an end-of-file record (``data`` holds exactly its bytes or fewer).

    Raises:
        TruncatedFileError: fewer than END_BYTES bytes.
        CorruptRecordError: bad magic, length or CRC.
    """
    head = bytes(data[:4])
    if head != END_MAGIC[: len(head)]:
        raise CorruptRecordError(
            f"bad end-of-file record magic {head!r}, expected {END_MAGIC!r}",
            path=path,
            offset=offset,
            event=event,
        )
    if len(data) < END_BYTES:
        raise TruncatedFileError(
            f"end-of-file record is {END_BYTES} bytes, the file has {len(data)} left: "
            f"expected {END_BYTES - len(data)} more bytes",
            path=path,
            offset=offset,
            event=event,
        )
    _, length, n_events, n_hits, t_first, t_last, chain, stored = END_RECORD.unpack_from(data)
    if length != END_BYTES:
        raise CorruptRecordError(
            f"bad end-of-file record length {length}, expected {END_BYTES}",
            path=path,
            offset=offset,
            event=event,
        )
    computed = crc32c(bytes(data[: END_BYTES - 4]))
    if stored != computed:
        raise CorruptRecordError(
            f"end-of-file record CRC-32C mismatch: stored 0x{stored:08x}, "
            f"computed 0x{computed:08x}",
            path=path,
            offset=offset,
            event=event,
        )
    return EndRecord(n_events, n_hits, t_first, t_last, chain)
