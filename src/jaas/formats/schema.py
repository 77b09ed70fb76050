"""Column schemas shared by the simulation, the processing chain and the engine.

One place names every column of the index files and of the simulation truth table, with
its type and unit, so that writers and readers cannot drift apart.
"""

from __future__ import annotations

import enum

import pyarrow as pa

__all__ = ["INDEX_SCHEMA", "TRUTH_SCHEMA", "EventClass", "Source", "TriggerBit"]


class EventClass(enum.IntEnum):
    """Reconstructed event class (column ``cls`` of the index)."""

    POINT = 0  # point-like energy deposit in the central detector (CD)
    MUON = 1  # muon crossing the CD
    WP_ONLY = 2  # muon seen by the water pool only (no CD deposit)


class TriggerBit(enum.IntFlag):
    """Bits of a RAW event's trigger type."""

    CD = 1  # central-detector multiplicity trigger
    WP = 2  # water-pool (veto) trigger
    PERIODIC = 4  # random/periodic trigger (no physics)


class Source(enum.StrEnum):
    """Simulation sources (column ``source`` of the truth table)."""

    REACTOR_IBD = "reactor_ibd"
    GEO_IBD = "geo_ibd"
    SINGLES = "singles"
    MUON = "muon"
    MUON_WP = "muon_wp"
    SPALL_N = "spall_n"
    LI9HE8 = "li9he8"
    BIPO214 = "bipo214"
    BIPO212 = "bipo212"


def _metres(*names: str) -> list[pa.Field]:
    """Float32 length columns, in m."""
    return [pa.field(n, pa.float32(), metadata={"unit": "m"}) for n in names]


# Muon track: entry point (mx0, my0, mz0) and exit point (mx1, my1, mz1).
_TRACK = _metres("mx0", "my0", "mz0", "mx1", "my1", "mz1")

# One row per trigger, time-sorted within a file. Times in ns since the Unix epoch (UTC),
# energies in MeV, lengths in m. Muon track columns are NaN where no track was fitted.
INDEX_SCHEMA = pa.schema(
    [
        pa.field("run", pa.int32()),
        pa.field("file_id", pa.int32()),  # catalog id (or file sequence) of the ESD file
        pa.field("entry", pa.int64()),  # entry in that file: (file_id, entry) -> full event
        pa.field("t", pa.int64(), metadata={"unit": "ns"}),
        pa.field("E", pa.float32(), metadata={"unit": "MeV"}),
        *_metres("x", "y", "z", "r"),
        pa.field("pe", pa.float32(), metadata={"unit": "PE"}),
        pa.field("cls", pa.uint8()),  # EventClass
        pa.field("muon", pa.bool_()),  # cls in (MUON, WP_ONLY): any muon tag
        pa.field("wp", pa.bool_()),  # water-pool tagged
        pa.field("showering", pa.bool_()),  # showering muon (large deposit)
        pa.field("tracked", pa.bool_()),  # muon track reconstructed
        *_TRACK,
        pa.field("quality", pa.uint8()),  # 0 = good
    ]
)

# Simulation truth: one row per trigger, in the same order as the RAW/index events.
TRUTH_SCHEMA = pa.schema(
    [
        pa.field("run", pa.int32()),
        pa.field("event_id", pa.int64()),  # trigger number in the run (RAW event id)
        pa.field("file_seq", pa.int32()),  # RAW (or index) file sequence number
        pa.field("entry", pa.int64()),  # entry in that file
        pa.field("t", pa.int64(), metadata={"unit": "ns"}),
        pa.field("source", pa.dictionary(pa.int8(), pa.string())),  # Source
        pa.field("role", pa.dictionary(pa.int8(), pa.string())),  # single/prompt/delayed/...
        pa.field("corr_id", pa.int64()),  # links correlated events (-1: none)
        pa.field("E_true", pa.float32(), metadata={"unit": "MeV"}),  # visible energy
        *_metres("x", "y", "z"),
        *_TRACK,
        pa.field("showering", pa.bool_()),
        pa.field("wp", pa.bool_()),
    ]
)
