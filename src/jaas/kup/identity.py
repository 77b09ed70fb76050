"""Input files are identified by content (adler32 + size) and by (run, sequence), not by name.

``ingest`` (CLI, drop directory) registers each RAW file in table ``kup_inputs`` in the
same transaction that queues its first-stage job:

- a file whose name is known with the same content is already known (nothing happens);
- a file whose name is known with other content is **refused** (a different file under a
  known name: rename it, or ``kup reset`` the old one);
- the same content under another name is a **duplicate** and is not published again;
- a RAW file whose (run, sequence) is already taken by other content is **refused**.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Column, DateTime, Integer, String, Table, Text, and_, insert, select
from sqlalchemy.engine import Connection

from jaas._io import adler32_file
from jaas.kup.ledger import Ledger, jobs, metadata
from jaas.kup.states import JobKey

__all__ = ["IngestReport", "InputFile", "identify", "inputs_table", "submit_inputs"]

inputs_table = Table(
    "kup_inputs",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("file", String(512), nullable=False, unique=True),
    Column("path", Text, nullable=False),
    Column("adler32", String(8), nullable=False, index=True),
    Column("size", Integer, nullable=False),
    Column("run", Integer),
    Column("seq", Integer),
    Column("created", DateTime(timezone=True), nullable=False),
)


@dataclass(frozen=True)
class InputFile:
    """What identifies an input: name, content (adler32, size) and RAW (run, sequence)."""

    path: Path
    adler32: str
    size: int
    run: int | None = None
    seq: int | None = None

    @property
    def name(self) -> str:
        """The base name (the ledger's file key)."""
        return self.path.name


@dataclass
class IngestReport:
    """Outcome of one ingest: queued keys, known names, duplicates and refusals (with why)."""

    queued: list[JobKey] = field(default_factory=list)
    known: list[str] = field(default_factory=list)
    duplicates: list[tuple[str, str]] = field(default_factory=list)  # (name, same as)
    refused: list[tuple[str, str]] = field(default_factory=list)  # (name, reason)


def identify(path: str | os.PathLike[str]) -> InputFile:
    """Checksum a file and, if it is a RAW file with a readable header, its (run, seq)."""
    p = Path(path).resolve()
    run = seq = None
    try:
        from jaas.formats.raw import raw_info

        info = raw_info(p)
        run, seq = int(info["run"]), int(info["file_seq"])
    except Exception:  # not RAW, or damaged: the ingest stage says why
        pass
    return InputFile(p, adler32_file(p), p.stat().st_size, run, seq)


def _check(conn: Connection, f: InputFile) -> tuple[str, str | None]:
    t = inputs_table
    row = conn.execute(select(t).where(t.c.file == f.name)).first()
    if row is not None:
        if (row.adler32, row.size) == (f.adler32, f.size):
            return "known", None
        return "refused", (
            f"{f.name}: a different file under a known name (ingested before with adler32 "
            f"{row.adler32}, {row.size} bytes; this one has {f.adler32}, {f.size} bytes); "
            "rename it, or reset the old file first"
        )
    same = conn.execute(
        select(t.c.file).where(t.c.adler32 == f.adler32, t.c.size == f.size)
    ).first()
    if same is not None:
        return "duplicate", same.file
    if f.run is not None and f.seq is not None:
        clash = conn.execute(select(t.c.file).where(t.c.run == f.run, t.c.seq == f.seq)).first()
        if clash is not None:
            return "refused", (
                f"{f.name}: run {f.run} sequence {f.seq} is already ingested as "
                f"{clash.file} with other content"
            )
    return "new", None


def submit_inputs(ledger: Ledger, files: Iterable[InputFile]) -> IngestReport:
    """Register and queue new inputs (one transaction); see the module doc for the rules."""
    first = ledger.config.stages[0]
    report = IngestReport()
    with ledger._tx() as conn:
        now = dt.datetime.now(dt.UTC)
        for f in files:
            verdict, detail = _check(conn, f)
            if verdict == "known":
                report.known.append(f.name)
                continue
            if verdict == "duplicate":
                report.duplicates.append((f.name, detail or ""))
                continue
            if verdict == "refused":
                report.refused.append((f.name, detail or ""))
                continue
            key = JobKey(f.name, first.name, first.version)
            legacy = conn.execute(
                select(jobs.c.id).where(and_(jobs.c.file == f.name, jobs.c.stage == first.name))
            ).first()  # ingested before inputs were identified: keep it as known
            conn.execute(
                insert(inputs_table).values(
                    file=f.name,
                    path=str(f.path),
                    adler32=f.adler32,
                    size=f.size,
                    run=f.run,
                    seq=f.seq,
                    created=now,
                )
            )
            if legacy is None and ledger._submit(conn, key, str(f.path), now):
                report.queued.append(key)
            else:
                report.known.append(f.name)
    return report
