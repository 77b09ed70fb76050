"""Entry reads straight from a TTree's baskets, without uproot's per-basket object model.

For the index -> full event redirect a few entries of many files are read: per branch,
the baskets holding them. uproot reads a basket by building a ``TBasket`` model (cursor,
chunk, member reads) and decoding it through awkward; at a few hundred baskets per fetch
that model is most of the time. Here a basket is located from its branch's
``fBasketSeek`` / ``fBasketBytes`` / ``fBasketEntry``, the byte ranges of all the baskets
needed (of every branch) are sorted and merged when adjacent on disk (the branches of one
cluster usually are), each merged range is read once from the file's source, and each
basket's TKey header is parsed with ``struct``, its ROOT compression blocks are
decompressed with the codec named in the block header (zstd / lz4 with cramjam, zlib,
lzma) and its data decoded with numpy (big-endian values, entry byte offsets of counted
lists).

Only what this module can decode exactly is decoded: flat numbers and counted lists of
numbers (``AsDtype``, ``AsJagged`` of ``AsDtype`` without a header) in free baskets. For
anything else (embedded baskets, objects, an unknown codec, a header that does not match
the branch's metadata) ``read_rows`` returns None and the caller uses uproot's own path.
"""

from __future__ import annotations

import contextlib
import lzma
import struct
import zlib
from dataclasses import dataclass
from typing import Any

import cramjam
import numpy as np
import numpy.typing as npt
import uproot

__all__ = ["Column", "read_rows"]

_KEY = struct.Struct(">ihiIhh")  # fNbytes, key version, fObjlen, fDatime, fKeylen, fCycle
_BASKET = struct.Struct(">Hiiii")  # fVersion, fBufferSize, fNevBufSize, fNevBuf, fLast
_BLOCK = 9  # ROOT compression block header: algo(2) method(1) csize(3, LE) usize(3, LE)
_MERGE_GAP = 4096  # bytes between two baskets still read as one range


class _Unsupported(Exception):
    """This basket (or branch) is not decoded here: use uproot's path."""


@dataclass
class Column:
    """One branch's rows: ``values`` (native dtype) and, for a counted list, ``counts``."""

    values: npt.NDArray[Any]
    counts: npt.NDArray[np.int64] | None = None


@dataclass
class _Branch:
    name: str
    dtype: np.dtype[Any]  # on-disk (big-endian) item type
    jagged: bool
    seek: npt.NDArray[np.int64]
    nbytes: npt.NDArray[np.int64]
    starts: npt.NDArray[np.int64]  # entry of each basket's first entry, + the total


_MEMO = "_jaas_basket_plan"


def _plan(branch: Any) -> _Branch | None:
    """The basket layout of ``branch`` (remembered on the branch object: a kept open tree
    read again skips this), None if it is not decoded here."""
    plan: _Branch | bool | None = getattr(branch, _MEMO, False)
    if plan is False or plan is True:
        plan = _make_plan(branch)
        with contextlib.suppress(AttributeError):  # no attribute slots: no memo
            setattr(branch, _MEMO, plan)
    return plan if isinstance(plan, _Branch) else None


def _make_plan(branch: Any) -> _Branch | None:
    interp = branch.interpretation
    jagged = isinstance(interp, uproot.interpretation.jagged.AsJagged)
    inner = interp.content if jagged else interp
    if type(inner) is not uproot.interpretation.numerical.AsDtype or inner.inner_shape:
        return None  # subclasses (bit sets, truncated floats) and fixed-size arrays
    if inner.from_dtype.fields is not None or inner.from_dtype.kind not in "biuf":
        return None  # leaf lists (records), anything not a plain number
    if jagged and interp.header_bytes != 0:
        return None
    if branch.embedded_baskets:  # baskets kept in the TBranch itself (ROOT, unclosed file)
        return None
    nb = int(branch.num_baskets)
    starts = np.asarray(branch.entry_offsets, dtype=np.int64)
    if len(starts) != nb + 1 or int(starts[-1]) != int(branch.num_entries):
        return None
    seek = np.asarray(branch.member("fBasketSeek")[:nb], dtype=np.int64)
    nbytes = np.asarray(branch.member("fBasketBytes")[:nb], dtype=np.int64)
    return _Branch(branch.name, np.dtype(inner.from_dtype), jagged, seek, nbytes, starts)


def _decompress(payload: Any, size: int) -> npt.NDArray[np.uint8]:
    """The ``size`` bytes of ROOT compression blocks ``payload``."""
    pos = filled = 0
    end = len(payload)
    parts: list[npt.NDArray[np.uint8]] = []
    while pos < end:
        if pos + _BLOCK > end:
            raise _Unsupported("truncated compression block header")
        head = payload[pos : pos + _BLOCK].tobytes()
        algo = head[:2]
        csize = head[3] | head[4] << 8 | head[5] << 16
        usize = head[6] | head[7] << 8 | head[8] << 16
        pos += _BLOCK
        if algo == b"L4":  # an 8-byte xxhash64 checksum precedes the lz4 block
            block = payload[pos + 8 : pos + csize]
            if int.from_bytes(payload[pos : pos + 8].tobytes(), "big") != _xxh64(block):
                raise _Unsupported("lz4 block checksum mismatch")
            data: Any = cramjam.lz4.decompress_block(block, output_len=usize)
        elif algo == b"ZS":
            data = cramjam.zstd.decompress(payload[pos : pos + csize], output_len=usize)
        elif algo == b"ZL":
            data = zlib.decompress(payload[pos : pos + csize], bufsize=usize)
        elif algo == b"XZ":
            data = lzma.decompress(payload[pos : pos + csize].tobytes())
        else:
            raise _Unsupported(f"compression {algo!r}")
        got = np.frombuffer(data, dtype=np.uint8)
        if len(got) != usize:
            raise _Unsupported("block size does not match its header")
        parts.append(got)
        filled += usize
        pos += csize
    if filled != size:
        raise _Unsupported("decompressed size does not match the basket header")
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


def _xxh64(block: Any) -> int:
    import xxhash  # uproot's own dependency for lz4 files

    return int(xxhash.xxh64(block).intdigest())


def _basket(
    buf: Any, nbytes: int, n_entries: int, jagged: bool
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64] | None]:
    """(data bytes, entry byte offsets or None) of the basket whose key starts ``buf``."""
    if len(buf) < _KEY.size:
        raise _Unsupported("short basket")
    fnbytes, _, objlen, _, keylen, _ = _KEY.unpack_from(buf, 0)
    if fnbytes != nbytes or keylen <= _KEY.size or fnbytes <= keylen:
        raise _Unsupported("basket key does not match the branch")
    _, _, _, nevbuf, last = _BASKET.unpack_from(buf, keylen - _BASKET.size - 1)
    if nevbuf != n_entries:
        raise _Unsupported("basket entry count does not match the branch")
    payload = buf[keylen:fnbytes]
    raw = payload if len(payload) == objlen else _decompress(payload, objlen)
    border = last - keylen
    if not 0 <= border <= objlen:
        raise _Unsupported("basket border out of range")
    if not jagged:
        if border != objlen:
            raise _Unsupported("entry offsets in a flat basket")
        return raw, None
    if border == objlen:
        raise _Unsupported("counted list without entry offsets")
    offs = raw[border:].view(">i4")[1:].astype(np.int64) - keylen
    if len(offs) != n_entries + 1:
        raise _Unsupported("entry offsets do not match the entry count")
    offs[-1] = border
    return raw[:border], offs


def _ranges(spans: list[tuple[int, int]]) -> list[tuple[int, int, list[int]]]:
    """Sorted (start, stop) spans merged when at most ``_MERGE_GAP`` apart: (start, stop,
    indices of the spans in it)."""
    order = sorted(range(len(spans)), key=lambda i: spans[i][0])
    out: list[tuple[int, int, list[int]]] = []
    for i in order:
        lo, hi = spans[i]
        if out and lo - out[-1][1] <= _MERGE_GAP:
            start, stop, members = out[-1]
            out[-1] = (start, max(stop, hi), [*members, i])
        else:
            out.append((lo, hi, [i]))
    return out


def _take(
    plan: _Branch,
    uniq: npt.NDArray[np.int64],
    which: npt.NDArray[np.int64],
    baskets: dict[int, tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64] | None]],
) -> Column:
    item = plan.dtype.itemsize
    values: list[npt.NDArray[Any]] = []
    counts: list[npt.NDArray[np.int64]] = []
    starts = plan.starts
    cuts = (np.flatnonzero(which[1:] != which[:-1]) + 1).tolist()
    for lo, hi in zip([0, *cuts], [*cuts, len(uniq)], strict=True) if len(uniq) else ():
        k = int(which[lo])
        data, offs = baskets[k]
        local = uniq[lo:hi] - starts[k]
        if offs is None:
            if len(data) != (starts[k + 1] - starts[k]) * item:
                raise _Unsupported("flat basket size does not match its entries")
            values.append(data.view(plan.dtype)[local])
            continue
        first, stop = offs[local], offs[local + 1]
        if hi - lo == 1:  # one entry of this basket: a slice
            a, b = int(first[0]), int(stop[0])
            if b < a or a % item or b % item:
                raise _Unsupported("entry offsets not aligned to the item size")
            values.append(data[a:b].view(plan.dtype))
            counts.append(np.array([(b - a) // item], dtype=np.int64))
            continue
        if np.any(stop < first) or np.any(first % item) or np.any(stop % item):
            raise _Unsupported("entry offsets not aligned to the item size")
        first, stop = first // item, stop // item
        n = stop - first
        shift = np.repeat(first - np.concatenate(([0], np.cumsum(n)[:-1])), n)
        values.append(data.view(plan.dtype)[shift + np.arange(int(n.sum()), dtype=np.int64)])
        counts.append(n)
    native = plan.dtype.newbyteorder("=")
    flat = np.concatenate(values).astype(native) if values else np.zeros(0, native)
    if not plan.jagged:
        return Column(flat)
    return Column(flat, np.concatenate(counts) if counts else np.zeros(0, np.int64))


def read_rows(
    tree: Any, branches: list[str], uniq: npt.NDArray[np.int64]
) -> dict[str, Column] | None:
    """``branches`` of the sorted, distinct entries ``uniq`` of ``tree``, decoded from the
    baskets that hold them (each basket read and decompressed once). None when a branch
    or a basket is not one this module decodes (then read through uproot)."""
    plans = []
    for name in branches:
        plan = _plan(tree[name])
        if plan is None:
            return None
        plans.append(plan)
    whiches = [np.searchsorted(p.starts, uniq, side="right") - 1 for p in plans]
    wanted: list[tuple[int, int]] = []  # (branch, basket)
    for b, which in enumerate(whiches):
        wanted.extend((b, int(k)) for k in np.unique(which))
    spans = [(int(plans[b].seek[k]), int(plans[b].seek[k] + plans[b].nbytes[k])) for b, k in wanted]
    source = tree.file.source
    decoded: list[dict[int, Any]] = [{} for _ in plans]
    try:
        for start, stop, members in _ranges(spans):
            chunk = np.asarray(source.chunk(start, stop).raw_data, dtype=np.uint8)
            for i in members:
                b, k = wanted[i]
                p = plans[b]
                at = spans[i][0] - start
                n_entries = int(p.starts[k + 1] - p.starts[k])
                buf = chunk[at : at + int(p.nbytes[k])]
                decoded[b][k] = _basket(buf, int(p.nbytes[k]), n_entries, p.jagged)
        return {
            p.name: _take(p, uniq, which, decoded[b])
            for b, (p, which) in enumerate(zip(plans, whiches, strict=True))
        }
    except _Unsupported:
        return None
