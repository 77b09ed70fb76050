"""Entry reads straight from a TTree's baskets, without uproot's per-basket object model.

For the index -> full event redirect a few entries of many files are read: per branch,
the baskets holding them. uproot reads a basket by building a ``TBasket`` model (cursor,
chunk, member reads) and decoding it through awkward; at a few hundred baskets per fetch
that model is most of the time. Here a basket is located from its branch's
``fBasketSeek`` / ``fBasketBytes`` / ``fBasketEntry``, its TKey header is parsed with
``struct``, its ROOT compression blocks are decompressed with the codec named in the
block header (zstd / lz4 / zlib / lzma) and its data decoded with numpy (big-endian
values, entry byte offsets of counted lists).

Local files (``read_local``): the basket layout of a file (the plans of its branches and
its entry count) is kept in memory, keyed by the file's path, inode, size and mtime, so a
repeated read of a file does not open it with uproot at all; its bytes are read through a
kept read-only memory map (32 files at most). A file changed on disk gets a new key and
is opened anew. Remote files (``read_rows`` on an open uproot tree) read the byte ranges
of the baskets through uproot's source, neighbouring ones merged into one read.

zstd (ROOT's default codec, and ours) is decompressed with one reusable python-zstandard
decompression context per thread (creating a context costs ~13 us, as much as
decompressing a 16 kB basket).

Only what this module can decode exactly is decoded: flat numbers and counted lists of
numbers (``AsDtype``, ``AsJagged`` of ``AsDtype`` without a header) in free baskets. For
anything else (embedded baskets, objects, an unknown codec) the readers return None and
the caller uses uproot's own path. Bytes that contradict the branch's metadata (a key of
another size, another entry count, a block that does not decompress to its stated size,
entry offsets out of range, a basket past the end of the file) raise ``FormatError``
naming the file, the basket's byte offset, the branch and what was expected.
"""

from __future__ import annotations

import contextlib
import lzma
import mmap
import os
import struct
import threading
import zlib
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import cramjam
import numpy as np
import numpy.typing as npt
import uproot
import zstandard

from jaas.errors import FormatError

__all__ = ["Column", "Layout", "clear_cache", "file_key", "layout", "read_local", "read_rows"]

_KEY = struct.Struct(">ihiIhh")  # fNbytes, key version, fObjlen, fDatime, fKeylen, fCycle
_BASKET = struct.Struct(">Hiiii")  # fVersion, fBufferSize, fNevBufSize, fNevBuf, fLast
_BLOCK = 9  # ROOT compression block header: algo(2) method(1) csize(3, LE) usize(3, LE)
_MERGE_GAP = 4096  # bytes between two baskets still read as one range (remote reads)


class _Unsupported(Exception):
    """This basket (or branch) is not decoded here: use uproot's path."""


class _Corrupt(Exception):
    """The bytes contradict the branch's metadata (turned into a FormatError): the message
    says what was expected and what was found; ``basket``: the basket, when not the one
    being decoded."""

    def __init__(self, message: str, basket: int | None = None) -> None:
        super().__init__(message)
        self.basket = basket


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


# --- zstd with a reusable context -----------------------------------------------------

_local = threading.local()


def _zstd_into(src: Any, out: npt.NDArray[np.uint8]) -> None:
    """Decompress the zstd frame ``src`` into exactly all of ``out``, with this thread's
    reusable decompression context (creating one per call, as cramjam and pyarrow do,
    costs as much as decompressing a 16 kB basket)."""
    dctx: zstandard.ZstdDecompressor | None = getattr(_local, "zstd", None)
    if dctx is None:
        dctx = _local.zstd = zstandard.ZstdDecompressor()
    want = len(out)
    try:
        got = dctx.decompress(src, max_output_size=want)
    except zstandard.ZstdError as exc:
        raise _Corrupt(f"a zstd block of {len(src)} bytes, zstd says: {exc}") from exc
    if len(got) != want:
        raise _Corrupt(f"{want} bytes from a zstd block (its header), got {len(got)}")
    out[:] = np.frombuffer(got, np.uint8)


# --- one basket -------------------------------------------------------------------------


def _decompress(payload: npt.NDArray[np.uint8], size: int) -> npt.NDArray[np.uint8]:
    """The ``size`` bytes of ROOT compression blocks ``payload``."""
    out = np.empty(size, dtype=np.uint8)
    pos = filled = 0
    end = len(payload)
    while pos < end:
        if pos + _BLOCK > end:
            raise _Corrupt(f"a {_BLOCK}-byte compression block header, found {end - pos} bytes")
        head = payload[pos : pos + _BLOCK].tobytes()
        algo = head[:2]
        csize = head[3] | head[4] << 8 | head[5] << 16
        usize = head[6] | head[7] << 8 | head[8] << 16
        pos += _BLOCK
        if pos + csize > end or filled + usize > size:
            raise _Corrupt(
                f"compression blocks within the basket ({end - pos} compressed and "
                f"{size - filled} uncompressed bytes left), found one of {csize} -> {usize}"
            )
        block = payload[pos : pos + csize]
        dest = out[filled : filled + usize]
        if algo == b"ZS":
            _zstd_into(block, dest)
        else:
            dest[:] = _other_codec(algo, block, usize)
        filled += usize
        pos += csize
    if filled != size:
        raise _Corrupt(f"{size} bytes (the key's fObjlen), the compression blocks hold {filled}")
    return out


def _other_codec(algo: bytes, block: Any, usize: int) -> npt.NDArray[np.uint8]:
    try:
        if algo == b"L4":  # an 8-byte xxhash64 checksum precedes the lz4 block
            data = block[8:]
            if len(block) < 8 or int.from_bytes(block[:8].tobytes(), "big") != _xxh64(data):
                raise _Corrupt("the lz4 block's xxhash64 checksum, it does not match")
            got: Any = cramjam.lz4.decompress_block(data, output_len=usize)
        elif algo == b"ZL":
            got = zlib.decompress(block, bufsize=usize)
        elif algo == b"XZ":
            got = lzma.decompress(block.tobytes())
        else:
            raise _Unsupported(f"compression {algo!r}")
    except (zlib.error, lzma.LZMAError, cramjam.DecompressionError) as exc:
        name = algo.decode(errors="replace")
        raise _Corrupt(
            f"a {name} block of {len(block)} bytes, it does not decompress: {exc}"
        ) from exc
    arr = np.frombuffer(got, dtype=np.uint8)
    if len(arr) != usize:
        raise _Corrupt(f"{usize} bytes from a compression block (its header), got {len(arr)}")
    return arr


def _xxh64(block: Any) -> int:
    import xxhash  # uproot's own dependency for lz4 files

    return int(xxhash.xxh64(block).intdigest())


def _basket(
    buf: Any, nbytes: int, n_entries: int, jagged: bool
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64] | None]:
    """(data bytes, entry byte offsets or None) of the basket whose key starts ``buf``."""
    if len(buf) < nbytes:
        raise _Corrupt(f"a basket of {nbytes} bytes, the file ends {len(buf)} bytes into it")
    if nbytes < _KEY.size:
        raise _Corrupt(f"a basket key of at least {_KEY.size} bytes, fBasketBytes says {nbytes}")
    fnbytes, _, objlen, _, keylen, _ = _KEY.unpack_from(buf, 0)
    if fnbytes != nbytes or not _KEY.size + _BASKET.size < keylen < fnbytes:
        raise _Corrupt(
            f"a basket key of {nbytes} bytes (fBasketBytes), found fNbytes {fnbytes} "
            f"and fKeylen {keylen}"
        )
    _, _, _, nevbuf, last = _BASKET.unpack_from(buf, keylen - _BASKET.size - 1)
    if nevbuf != n_entries:
        raise _Corrupt(f"{n_entries} entries (fBasketEntry), the basket header says {nevbuf}")
    if objlen < 0:
        raise _Corrupt(f"a basket size (fObjlen) >= 0, found {objlen}")
    payload = buf[keylen:fnbytes]
    raw = payload if len(payload) == objlen else _decompress(payload, objlen)
    border = last - keylen
    if not 0 <= border <= objlen:
        raise _Corrupt(f"the data end (fLast) within the basket's {objlen} bytes, found {border}")
    if not jagged:
        if border != objlen:
            raise _Unsupported("entry offsets in a flat basket")
        return raw, None
    if border == objlen:
        raise _Unsupported("counted list without entry offsets")
    tail = raw[border:]
    if len(tail) % 4:
        raise _Corrupt(f"entry offsets of 4 bytes each, found {len(tail)} bytes")
    offs = tail.view(">i4")[1:].astype(np.int64) - keylen
    if len(offs) != n_entries + 1:
        raise _Corrupt(f"{n_entries + 1} entry offsets, found {len(offs)}")
    offs[-1] = border
    if n_entries and (offs[0] != 0 or np.any(offs[1:] < offs[:-1])):
        raise _Corrupt("entry offsets rising from 0 to the data end, they do not")
    return raw[:border], offs


def _take(
    plan: _Branch,
    uniq: npt.NDArray[np.int64],
    which: npt.NDArray[np.int64],
    ks: list[int],
    cuts: list[int],
    baskets: dict[int, tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64] | None]],
) -> Column:
    """Rows ``uniq`` of one branch from its decoded baskets (``which``: the basket of each
    row; ``ks`` / ``cuts``: the distinct baskets and where each one's rows start)."""
    item = plan.dtype.itemsize
    values: list[npt.NDArray[Any]] = []
    counts: list[npt.NDArray[np.int64]] = []
    starts = plan.starts
    for lo, hi, k in zip(cuts[:-1], cuts[1:], ks, strict=True):
        data, offs = baskets[k]
        first_entry = int(starts[k])
        if offs is None:
            if len(data) != (int(starts[k + 1]) - first_entry) * item:
                nent = int(starts[k + 1]) - first_entry
                raise _Corrupt(f"{nent * item} bytes for {nent} entries, found {len(data)}", k)
            view = data.view(plan.dtype)
            values.append(
                view[int(uniq[lo]) - first_entry : int(uniq[lo]) - first_entry + 1]
                if hi - lo == 1
                else view[uniq[lo:hi] - first_entry]
            )
            continue
        if hi - lo == 1:  # one entry of this basket: a slice
            j = int(uniq[lo]) - first_entry
            a, b = int(offs[j]), int(offs[j + 1])
            if a % item or b % item:
                raise _Corrupt(f"entry offsets in steps of {item} bytes, found {a}, {b}", k)
            values.append(data[a:b].view(plan.dtype))
            counts.append(np.array([(b - a) // item], dtype=np.int64))
            continue
        local = uniq[lo:hi] - first_entry
        first, stop = offs[local], offs[local + 1]
        if np.any(first % item) or np.any(stop % item):
            raise _Corrupt(f"entry offsets in steps of {item} bytes, they are not", k)
        first, stop = first // item, stop // item
        n = stop - first
        shift = np.repeat(first - np.concatenate(([0], np.cumsum(n)[:-1])), n)
        values.append(data.view(plan.dtype)[shift + np.arange(int(n.sum()), dtype=np.int64)])
        counts.append(n)
    native = plan.dtype.newbyteorder("=")
    if not values:
        flat = np.zeros(0, native)
    elif len(values) == 1:
        flat = values[0].astype(native)
    else:
        flat = np.concatenate(values).astype(native, copy=False)
    if not plan.jagged:
        return Column(flat)
    return Column(flat, np.concatenate(counts) if counts else np.zeros(0, np.int64))


def _decode(
    plans: list[_Branch],
    uniq: npt.NDArray[np.int64],
    get: Callable[[int, int], npt.NDArray[np.uint8]],
    where: Any,
) -> dict[str, Column]:
    """``plans``' rows ``uniq``, each needed basket taken as ``get(seek, nbytes)``."""
    groups: dict[int, tuple[npt.NDArray[np.int64], list[int], list[int]]] = {}
    out: dict[str, Column] = {}
    for plan in plans:
        group = groups.get(id(plan.starts))
        if group is None:
            which = np.searchsorted(plan.starts, uniq, side="right") - 1
            cut = np.flatnonzero(which[1:] != which[:-1]) + 1
            cuts = [0, *cut.tolist(), len(uniq)] if len(uniq) else [0]
            group = groups[id(plan.starts)] = (which, which[cuts[:-1]].tolist(), cuts)
        which, ks, cuts = group
        baskets = {}
        k = -1
        try:
            for k in ks:
                n_entries = int(plan.starts[k + 1] - plan.starts[k])
                seek, nbytes = int(plan.seek[k]), int(plan.nbytes[k])
                baskets[k] = _basket(get(seek, nbytes), nbytes, n_entries, plan.jagged)
            out[plan.name] = _take(plan, uniq, which, ks, cuts, baskets)
        except _Corrupt as exc:
            k = k if exc.basket is None else exc.basket
            first, stop = int(plan.starts[k]), int(plan.starts[k + 1])
            raise FormatError(
                f"basket {k} of branch '{plan.name}' (entries {first}-{stop - 1}) is "
                f"damaged: expected {exc}",
                path=where,
                offset=int(plan.seek[k]),
            ) from None
    return out


# --- remote files: through uproot's source -----------------------------------------------


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


def read_rows(
    tree: Any, branches: list[str], uniq: npt.NDArray[np.int64], path: Any = None
) -> dict[str, Column] | None:
    """``branches`` of the sorted, distinct entries ``uniq`` of the open uproot ``tree``,
    decoded from the baskets that hold them (each basket read and decompressed once).
    None when a branch or a basket is not one this module decodes (then read through
    uproot). Raises FormatError for a damaged basket."""
    plans = []
    for name in branches:
        plan = _plan(tree[name])
        if plan is None:
            return None
        plans.append(plan)
    spans: list[tuple[int, int]] = []
    for p in plans:
        which = np.unique(np.searchsorted(p.starts, uniq, side="right") - 1)
        spans.extend((int(p.seek[k]), int(p.seek[k] + p.nbytes[k])) for k in which)
    source = tree.file.source
    chunks: dict[int, npt.NDArray[np.uint8]] = {}
    for start, stop, members in _ranges(spans):
        chunk = np.asarray(source.chunk(start, stop).raw_data, dtype=np.uint8)
        for i in members:
            lo, hi = spans[i]
            chunks[lo] = chunk[lo - start : hi - start]
    try:
        return _decode(plans, uniq, lambda seek, n: chunks[seek], path or tree.file.file_path)
    except _Unsupported:
        return None


# --- local files: a kept layout and memory map ---------------------------------------------


@dataclass
class Layout:
    """What entry reads need of one file's tree: its entry count and the basket plans of
    the branches asked for so far (None: not decoded here)."""

    key: tuple[Any, ...]
    n_entries: int
    plans: dict[str, _Branch | None]

    @property
    def nbytes(self) -> int:
        return sum(
            p.seek.nbytes + p.nbytes.nbytes + p.starts.nbytes
            for p in self.plans.values()
            if p is not None
        )


_LAYOUT_BYTES = 64 << 20  # layouts kept, by the size of their arrays (~100 kB per RTRAW file)
_MAPS_MAX = 32  # memory maps kept (each holds a file descriptor)
_lock = threading.Lock()
_layouts: OrderedDict[tuple[Any, ...], Layout] = OrderedDict()
_layout_bytes = 0
_maps: OrderedDict[tuple[Any, ...], npt.NDArray[np.uint8]] = OrderedDict()


def clear_cache() -> None:
    """Forget every kept layout and memory map."""
    global _layout_bytes
    with _lock:
        _layouts.clear()
        _maps.clear()
        _layout_bytes = 0


def file_key(path: str | os.PathLike[str], tree: str) -> tuple[Any, ...]:
    """The identity of ``tree`` in the local file ``path`` as it is on disk now (path,
    inode, size, mtime): what kept layouts, maps and open trees are keyed by."""
    st = os.stat(path)
    return (os.path.abspath(path), tree, st.st_ino, st.st_size, st.st_mtime_ns)


def layout(
    path: str | os.PathLike[str], tree: str, branches: list[str], open_tree: Callable[[], Any]
) -> Layout:
    """The kept layout of ``tree`` in the local file ``path`` with the plans of
    ``branches``; the tree is opened (``open_tree()``: a context manager yielding the
    uproot tree) only when the file is not known yet, has changed on disk or lacks one of
    ``branches``' plans. Raises OSError when the file cannot be stat'ed."""
    global _layout_bytes
    key = file_key(path, tree)
    with _lock:
        lay = _layouts.get(key)
        if lay is not None:
            _layouts.move_to_end(key)
    if lay is not None and all(b in lay.plans for b in branches):
        return lay
    with open_tree() as t:
        plans = dict(lay.plans) if lay is not None else {}
        for b in branches:
            if b not in plans:
                plans[b] = _plan(t[b]) if b in t else None
        new = Layout(key, int(t.num_entries), plans)
    _share_starts(new)
    with _lock:
        old = _layouts.pop(key, None)
        _layout_bytes -= 0 if old is None else old.nbytes
        _layouts[key] = new
        _layout_bytes += new.nbytes
        while _layout_bytes > _LAYOUT_BYTES and len(_layouts) > 1:
            _layout_bytes -= _layouts.popitem(last=False)[1].nbytes
    return new


def _share_starts(lay: Layout) -> None:
    """Branches with the same basket boundaries share one ``starts`` array, so that the
    baskets of the requested entries are looked up once per boundary set."""
    seen: list[npt.NDArray[np.int64]] = []
    for plan in lay.plans.values():
        if plan is None:
            continue
        for s in seen:
            if len(s) == len(plan.starts) and np.array_equal(s, plan.starts):
                plan.starts = s
                break
        else:
            seen.append(plan.starts)


def _mapped(lay: Layout, path: str | os.PathLike[str]) -> npt.NDArray[np.uint8] | None:
    """The bytes of ``path`` as kept for ``lay``; None when the file on disk is no longer
    the one the layout was read from (replaced meanwhile)."""
    with _lock:
        view = _maps.get(lay.key)
        if view is not None:
            _maps.move_to_end(lay.key)
            return view
    with open(path, "rb") as f:
        st = os.fstat(f.fileno())
        size = st.st_size
        if (st.st_ino, size, st.st_mtime_ns) != lay.key[2:]:
            return None
        if size == 0:
            view = np.zeros(0, np.uint8)
        else:
            view = np.frombuffer(mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ), np.uint8)
    with _lock:
        _maps[lay.key] = view
        while len(_maps) > _MAPS_MAX:
            _maps.popitem(last=False)  # closed when the last view of it is gone
    return view


def read_local(
    lay: Layout, path: str | os.PathLike[str], branches: list[str], uniq: npt.NDArray[np.int64]
) -> dict[str, Column] | None:
    """``branches`` of the sorted, distinct entries ``uniq`` of the local file ``path``
    whose layout is ``lay``; None when a branch or basket is not decoded here. Raises
    FormatError for a damaged basket (file, byte offset, branch and what was expected)."""
    plans = [lay.plans.get(b) for b in branches]
    if any(p is None for p in plans):
        return None
    view = _mapped(lay, path)
    if view is None:
        return None
    try:
        return _decode(
            [p for p in plans if p is not None], uniq, lambda s, n: view[s : s + n], path
        )
    except _Unsupported:
        return None
