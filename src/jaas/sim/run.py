"""Run orchestration: truth chunks -> response (index-level or hit-level) -> files + metadata.

Output layout under ``outdir``::

    index/run{run:06d}_{seq:04d}.parquet        index mode (INDEX_SCHEMA)
    raw/run{run:06d}_{seq:04d}.raw              hit mode (RAW)
    truth/run{run:06d}_{seq:04d}.truth.parquet  truth of the same events (TRUTH_SCHEMA)
    run{run:06d}.json                           config, seed, version, files, counts

The response is computed in batches of a fixed number of events, each with its own seed,
so the output depends only on the seed and the config.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from jaas._io import adler32_file, atomic_path
from jaas._version import __version__
from jaas.errors import ConfigError
from jaas.progress import progress
from jaas.sim.indexlevel import index_columns
from jaas.sim.output import Written, write_index_chunks, write_truth_chunks
from jaas.sim.params import SimConfig, validated
from jaas.sim.stream import generate_batches, prefetch, rng_for
from jaas.sim.truth import ROLES, SOURCES, Events, truth_table

__all__ = ["FileRecord", "SimSummary", "simulate"]

BATCH_INDEX = 1 << 16  # events per response batch (index mode)
BATCH_HIT = 512  # events per response batch (hit mode)
_WRITE_SLICE = 64  # hit mode: events per write_batch call (granularity of byte splitting)
# batches generated ahead on the prefetch thread: it keeps generating while the main
# thread waits for the previous file's writers (~40 MB of batches; 3 % faster than 1)
_PREFETCH = 8
_PRIMARY_ROLES = ("single", "prompt", "muon", "neutron", "beta")  # one per group


@dataclass
class FileRecord:
    """One output file: kind (index, raw, truth), path relative to outdir, content summary."""

    kind: str
    path: str
    seq: int
    n_events: int
    t_first: int
    t_last: int
    bytes: int
    adler32: str


@dataclass
class SimSummary:
    """What a simulation produced: counts per source, files, wall time."""

    config: SimConfig
    outdir: Path
    n_events: int
    counts: dict[str, int]
    roles: dict[str, dict[str, int]]
    files: list[FileRecord] = field(default_factory=list)
    wall_s: float = 0.0
    metadata_path: Path | None = None

    @property
    def events_per_s(self) -> float:
        """Simulated events per wall-clock second."""
        return self.n_events / self.wall_s if self.wall_s > 0 else float("inf")

    def __str__(self) -> str:
        dur = self.config.duration_s
        lines = [
            f"run {self.config.run} ({self.config.mode} mode, seed {self.config.seed}): "
            f"{dur:g} s simulated, {self.n_events} events -> {self.outdir}",
            f"  {'source':<12} {'events':>10} {'rate/Hz':>10} {'per day':>12} {'groups/day':>12}",
        ]
        for name in SOURCES:
            n = self.counts.get(name, 0)
            g = sum(v for r, v in self.roles.get(name, {}).items() if r in _PRIMARY_ROLES)
            lines.append(
                f"  {name:<12} {n:>10} {n / dur:>10.4g} {n / dur * 86400:>12.4g}"
                f" {g / dur * 86400:>12.4g}"
            )
        lines.append(f"  {'files':<12} {'events':>10} {'MB':>10}")
        for rec in self.files:
            lines.append(f"  {rec.path:<40} {rec.n_events:>10} {rec.bytes / 1e6:>10.3f}")
        lines.append(f"  wall time {self.wall_s:.2f} s, {self.events_per_s:,.0f} events/s")
        return "\n".join(lines)


def _name(cfg: SimConfig, seq: int) -> str:
    return f"run{cfg.run:06d}_{seq:04d}"


def _record(
    outdir: Path,
    kind: str,
    path: Path,
    seq: int,
    t: list[np.ndarray],
    written: Written | None = None,
) -> FileRecord:
    """The record of a written file whose event times are the concatenated parts ``t``.

    ``written`` is the file's (bytes, adler32) when the writer gave them; else they are
    read from the file.
    """
    t = [p for p in t if len(p)]
    size, adler = written if written is not None else (path.stat().st_size, adler32_file(path))
    return FileRecord(
        kind=kind,
        path=path.relative_to(outdir).as_posix(),
        seq=seq,
        n_events=sum(len(p) for p in t),
        t_first=int(t[0][0]) if t else 0,
        t_last=int(t[-1][-1]) if t else 0,
        bytes=size,
        adler32=adler,
    )


class _Sink:
    """Collects response batches into files; subclasses write index or RAW files."""

    def __init__(self, cfg: SimConfig, outdir: Path) -> None:
        self.cfg = cfg
        self.outdir = outdir
        self.records: list[FileRecord] = []
        self.seq = 0
        self.truth: list[Events] = []
        self.first_id = 0  # event id of the file's first event
        self.n_file = 0

    def _write_truth(self) -> list[np.ndarray]:
        """Write the buffered truth as this file's truth table; return its times."""
        record = self._truth_file(self.truth, self.first_id, self.seq)
        if record is not None:
            self.records.append(record)
        t = [e["t"] for e in self.truth]
        self.truth, self.n_file = [], 0
        return t

    def _truth_file(self, parts: list[Events], first_id: int, seq: int) -> FileRecord | None:
        """Write one truth file (touches no sink state, so it can run on a thread)."""
        if not self.cfg.write_truth:
            return None
        path = self.outdir / "truth" / f"{_name(self.cfg, seq)}.truth.parquet"
        written = write_truth_chunks(path, parts, run=self.cfg.run, first_id=first_id, file_seq=seq)
        return _record(self.outdir, "truth", path, seq, [p["t"] for p in parts], written)


class _IndexSink(_Sink):
    def __init__(self, cfg: SimConfig, outdir: Path, threads: int) -> None:
        super().__init__(cfg, outdir)
        self.cols: list[dict[str, np.ndarray]] = []
        # two writers: a file's index and truth tables are written at the same time
        self._writer = (
            ThreadPoolExecutor(max_workers=2, thread_name_prefix="jaas-sim-write")
            if threads > 1
            else None
        )
        self._pending: list[Future[FileRecord | None]] = []

    def _submit(self, fn: Callable[..., FileRecord | None], *args: Any) -> None:
        if self._writer is not None:
            self._pending.append(self._writer.submit(fn, *args))
            return
        done: Future[FileRecord | None] = Future()
        done.set_result(fn(*args))  # one thread: write now (an error is raised here)
        self._pending.append(done)

    def add(self, events: Events, first_id: int, rng: np.random.Generator) -> None:
        cols = index_columns(events, rng, self.cfg.physics)
        pos, n = 0, len(events)
        while pos < n:
            take = min(self.cfg.events_per_file - self.n_file, n - pos)
            sl = slice(pos, pos + take)
            if not self.n_file:
                self.first_id = first_id + pos
            self.cols.append({k: v[sl] for k, v in cols.items()})
            self.truth.append(events.take(sl))
            self.n_file += take
            pos += take
            if self.n_file == self.cfg.events_per_file:
                self.flush()

    def flush(self) -> None:
        if not self.n_file:
            return
        # Parquet writing releases the GIL: write this file on threads while the next one
        # is generated (at most two files in flight, so memory stays bounded)
        self._wait(keep=1)
        self._submit(self._write_index, self.cols, self.seq)
        self._submit(self._truth_file, self.truth, self.first_id, self.seq)
        self.cols, self.truth, self.n_file = [], [], 0
        self.seq += 1

    def _write_index(self, cols: list[dict[str, np.ndarray]], seq: int) -> FileRecord:
        path = self.outdir / "index" / f"{_name(self.cfg, seq)}.parquet"
        meta = {"jaas.run": str(self.cfg.run), "jaas.file_seq": str(seq)}
        meta["jaas.version"] = __version__
        written = write_index_chunks(path, cols, run=self.cfg.run, file_id=seq, metadata=meta)
        return _record(self.outdir, "index", path, seq, [c["t"] for c in cols], written)

    def _wait(self, keep: int = 0) -> None:
        """Wait for the writes of all files but the last ``keep`` (2 futures per file)."""
        cut = max(len(self._pending) - 2 * keep, 0)
        pending, self._pending = self._pending[:cut], self._pending[cut:]
        results = [f.result() for f in pending]  # re-raises a write error here
        self.records.extend(r for r in results if r is not None)

    def close(self) -> None:
        try:
            self.flush()
            self._wait()
        finally:
            if self._writer is not None:
                self._writer.shutdown(wait=True)


class _HitSink(_Sink):
    def __init__(self, cfg: SimConfig, outdir: Path) -> None:
        super().__init__(cfg, outdir)
        try:
            from jaas.formats.raw import RawWriter
            from jaas.sim.detector import Detector
        except ImportError as exc:
            raise ConfigError(
                f"mode='hit' needs the detector response and RAW writer ({exc}); "
                "use mode='index' with this build"
            ) from exc
        self._writer_cls = RawWriter
        self.detector = Detector(light_scale=cfg.light_scale, pmt_scale=cfg.pmt_scale)
        self.writer: Any = None
        self.path: Path | None = None

    def _open(self, t_first: int) -> None:
        self.path = self.outdir / "raw" / f"{_name(self.cfg, self.seq)}.raw"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # the detector configuration travels with the data: RAW header -> RTRAW -> reco
        self.writer = self._writer_cls(
            self.path,
            run=self.cfg.run,
            file_seq=self.seq,
            start_time=t_first,
            metadata=json.dumps(
                {"detector": self.detector.to_dict(), "n_pmt": self.detector.n_pmt},
                sort_keys=True,
            ),
        )
        self.writer.__enter__()

    def add(self, events: Events, first_id: int, rng: np.random.Generator) -> None:
        ids = np.arange(first_id, first_id + len(events), dtype=np.int64)
        table = truth_table(events, run=self.cfg.run, event_id=ids, file_seq=-1, entry=ids)
        hits = self.detector.respond(table, rng)
        max_bytes = self.cfg.max_bytes_per_file
        for a in range(0, len(events), _WRITE_SLICE):
            b = min(a + _WRITE_SLICE, len(events))
            while a < b:
                if self.writer is None:
                    self._open(int(events["t"][a]))
                take = min(self.cfg.events_per_file - self.n_file, b - a)
                self.writer.write_batch(hits.slice(a, a + take))
                self.truth.append(events.take(slice(a, a + take)))
                if not self.n_file:
                    self.first_id = int(ids[a])
                self.n_file += take
                a += take
                full = self.n_file >= self.cfg.events_per_file
                if full or (max_bytes is not None and self.writer.bytes_written >= max_bytes):
                    self.flush()

    def flush(self) -> None:
        if self.writer is None:
            return
        self.writer.__exit__(None, None, None)
        assert self.path is not None
        t = self._write_truth()
        self.records.append(_record(self.outdir, "raw", self.path, self.seq, t))
        self.writer = None
        self.seq += 1

    def close(self) -> None:
        self.flush()


_INT64_MAX = (1 << 63) - 1
_SIM_DIRS = ("index", "raw", "truth")
_SIM_META = re.compile(r"run\d{6}\.json")


def _check_time_range(cfg: SimConfig) -> None:
    """Refuse a run whose times do not fit int64 nanoseconds (1677-09-21 .. 2262-04-11)."""
    if not (cfg.start_ns >= -_INT64_MAX - 1 and cfg.end_ns <= _INT64_MAX):
        raise ConfigError(
            f"start {cfg.start!r} with duration {cfg.duration_s:g} s ends outside the range of "
            "int64 nanosecond times (1677-09-21 to 2262-04-11 UTC); choose an earlier --start"
        )


def _prepare_outdir(out: Path, *, force: bool) -> None:
    """Create ``out``; refuse it when it holds files, or with ``force`` clear an old run.

    ``force`` removes only what a simulation writes (index/, raw/, truth/, run*.json); any
    other entry is refused so that a mistyped path never loses unrelated files.
    """
    if out.exists() and not out.is_dir():
        raise ConfigError(f"output {str(out)!r} is a file, not a directory; choose a directory")
    out.mkdir(parents=True, exist_ok=True)
    entries = sorted(out.iterdir())
    if not entries:
        return
    names = ", ".join(repr(e.name) for e in entries[:3]) + (", ..." if len(entries) > 3 else "")
    if not force:
        raise ConfigError(
            f"output directory {str(out)!r} is not empty ({names}); the analysis would read "
            "its old files with the new run: choose an empty directory or pass --force to "
            "clear a previous simulation there"
        )
    foreign = [
        e.name
        for e in entries
        if not ((e.is_dir() and e.name in _SIM_DIRS) or _SIM_META.fullmatch(e.name))
    ]
    if foreign:
        raise ConfigError(
            f"output directory {str(out)!r} holds {foreign[0]!r}, which is not a simulation "
            "output; --force clears only index/, raw/, truth/ and run*.json: choose another "
            "directory"
        )
    for e in entries:
        if e.is_dir() and not e.is_symlink():
            shutil.rmtree(e)
        else:
            e.unlink()


def simulate(
    config: SimConfig | dict[str, Any],
    outdir: str | os.PathLike[str],
    *,
    force: bool = False,
    threads: int = 2,
) -> SimSummary:
    """Simulate a run into ``outdir`` (index-level Parquet or RAW files, truth, metadata).

    Args:
        config: a SimConfig, or a dict of its fields (validated; ConfigError names the field).
        outdir: output directory (created). It must be empty: an old run's files next to
            the new ones would be read with them.
        force: clear a previous simulation's files (index/, raw/, truth/, run*.json) from
            ``outdir`` first; anything else there is still refused.
        threads: 1 runs everything on the calling thread; more generate the next chunk and
            write files on threads (index mode). The files are the same for any number.

    Example:
        >>> cfg = {"duration_s": 60, "block_s": 60, "chunk_s": 60}
        >>> print(simulate(cfg, "/tmp/sim"))  # doctest: +SKIP
    """
    cfg = validated(config)
    _check_time_range(cfg)
    if threads < 1:
        raise ConfigError(f"threads must be at least 1, got {threads}")
    out = Path(outdir)
    _prepare_outdir(out, force=force)
    wall0 = time.perf_counter()
    sink: _IndexSink | _HitSink = (
        _IndexSink(cfg, out, threads) if cfg.mode == "index" else _HitSink(cfg, out)
    )
    batch = BATCH_INDEX if cfg.mode == "index" else BATCH_HIT
    counts = np.zeros((len(SOURCES), len(ROLES)), np.int64)
    n_done, k, done_ns = 0, 0, cfg.start_ns
    with progress(total=cfg.duration_s, desc=f"sim run {cfg.run}", unit="s") as bar:
        # batches of a fixed size whatever the chunks, each with its own response seed
        batches = generate_batches(cfg, batch)
        for ev in prefetch(batches, _PREFETCH) if threads > 1 else batches:
            key = ev["src"].astype(np.intp) * len(ROLES) + ev["role"]
            counts += np.bincount(key, minlength=counts.size).reshape(counts.shape)
            sink.add(ev, n_done, rng_for(cfg.seed, "response", k))
            n_done, k = n_done + len(ev), k + 1
            t_last = min(int(ev["t"][-1]), cfg.end_ns)
            step = max(t_last - done_ns, 0) * 1e-9
            done_ns = max(done_ns, t_last)
            bar.update(min(step, cfg.duration_s - bar.n))  # float sums must not overshoot
        bar.update(max(cfg.duration_s - bar.n, 0.0))
        sink.close()
    summary = SimSummary(
        config=cfg,
        outdir=out,
        n_events=n_done,
        counts={s: int(counts[i].sum()) for i, s in enumerate(SOURCES)},
        roles={
            s: {r: int(counts[i, j]) for j, r in enumerate(ROLES) if counts[i, j]}
            for i, s in enumerate(SOURCES)
        },
        files=sink.records,
    )
    summary.metadata_path = _write_metadata(summary)
    summary.wall_s = time.perf_counter() - wall0
    return summary


def _iso(ns: int) -> str:
    return np.datetime_as_string(np.datetime64(ns, "ns"), unit="ns", timezone="UTC")


def _write_metadata(s: SimSummary) -> Path:
    cfg = s.config
    meta = {
        "run": cfg.run,
        "mode": cfg.mode,
        "seed": cfg.seed,
        "software": {
            "name": "jaas",
            "version": __version__,
            "numpy": np.__version__,
            "pyarrow": pa.__version__,
        },
        "start_ns": cfg.start_ns,
        "end_ns": cfg.end_ns,
        "start": _iso(cfg.start_ns),
        "end": _iso(cfg.end_ns),
        "duration_s": cfg.duration_s,
        "n_events": s.n_events,
        "counts": s.counts,
        "counts_by_role": s.roles,
        "files": [vars(r) for r in s.files],
        "config": cfg.model_dump(mode="json"),
    }
    if cfg.mode == "hit":
        from jaas.sim.detector import Detector

        det = Detector(light_scale=cfg.light_scale, pmt_scale=cfg.pmt_scale)
        meta["detector"] = det.to_dict()
    path = s.outdir / f"run{cfg.run:06d}.json"
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n")
    return path
