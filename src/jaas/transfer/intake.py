"""SPADE-like raw-data intake from the detector site's dropbox to the central site.

A file closed by the DAQ appears in the dropbox with a completion marker ``NAME.done``.
Each marked file is checksummed (adler32) at the source, copied to the central site,
verified there, registered in the catalog (with its central replica), handed to keep-up
(a callable hook, e.g. one calling ``jaas kup ingest STATE FILES``) and only then deleted
from the dropbox. A failure at any step leaves the source file and its marker in place.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Sequence
from pathlib import Path

from jaas.errors import JaasError
from jaas.store.catalog import Catalog
from jaas.transfer.checksum import adler32_file
from jaas.transfer.errors import TransferFailure
from jaas.transfer.replicator import Replicator, lfn_for

__all__ = ["MARKER_SUFFIX", "IntakeResult", "intake_dropbox", "parse_run_seq"]

MARKER_SUFFIX = ".done"
_RUN_SEQ = re.compile(r"run0*(\d+)[._]0*(\d+)")

IngestHook = Callable[[Sequence[str]], None]  # central paths or URLs of newly registered files


@dataclasses.dataclass(frozen=True)
class IntakeResult:
    name: str
    ok: bool
    file_id: int | None = None
    checksum: str | None = None
    message: str = ""


def parse_run_seq(name: str) -> tuple[int | None, int | None]:
    """Run and sequence number from a DAQ file name (``run12.003.raw``, ``run000012_0003.raw``)."""
    m = _RUN_SEQ.search(name)
    return (int(m.group(1)), int(m.group(2))) if m else (None, None)


def intake_dropbox(
    dropbox: Path,
    replicator: Replicator,
    *,
    central: str,
    ingest: IngestHook | None = None,
    kind: str = "raw",
) -> list[IntakeResult]:
    """Move every marked file of ``dropbox`` to site ``central`` safely; one result per file."""
    catalog: Catalog = replicator.catalog
    store = replicator.storages[central]
    results = []
    for marker in sorted(dropbox.glob(f"*{MARKER_SUFFIX}")):
        name = marker.name[: -len(MARKER_SUFFIX)]
        path = dropbox / name
        if not path.is_file():
            results.append(IntakeResult(name, False, message="marker without its data file"))
            continue
        try:
            checksum = adler32_file(path)
            run, seq = parse_run_seq(name)
            lfn = f"{kind}/run{run}/{name}" if run is not None else f"{kind}/{name}"
            store.upload(path, lfn)
            found = store.checksum(lfn)
            if found != checksum:
                store.delete(lfn)
                raise TransferFailure(
                    f"central copy has adler32 {found}, source {checksum}", "checksum_mismatch"
                )
            rec = catalog.add_file(
                store.url(lfn),
                kind=kind,
                run=run,
                seq=seq,
                checksum=checksum,
                size=path.stat().st_size,
            )
            if lfn_for(rec) != lfn:
                raise TransferFailure(f"catalog name {lfn_for(rec)} differs from {lfn}")
            replicator.add_source(rec, central)
            if ingest is not None:
                ingest([rec.path])
        except (JaasError, OSError) as exc:
            results.append(IntakeResult(name, False, message=f"kept in the dropbox: {exc}"))
            continue
        path.unlink()  # only now: verified at central, registered, handed to keep-up
        marker.unlink()
        results.append(IntakeResult(name, True, rec.id, checksum, f"at {central} as {lfn}"))
    return results
