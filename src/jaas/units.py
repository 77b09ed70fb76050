"""Units used throughout jaas.

Internal conventions: time in integer nanoseconds (absolute trigger times, ns since the
Unix epoch, UTC) or float seconds for durations given by users; energy in MeV; length in
metres. The constants below convert a value in the named unit to the internal one, so
``1.5 * ms`` is 1.5 ms in ns and ``17.2 * m`` is metres.
"""

from __future__ import annotations

__all__ = [
    "ENERGY_UNITS",
    "LENGTH_UNITS",
    "TIME_UNITS",
    "GeV",
    "MeV",
    "cm",
    "keV",
    "m",
    "mm",
    "ms",
    "ns",
    "s",
    "us",
]

# time, in ns
ns = 1.0
us = 1e3
ms = 1e6
s = 1e9
# energy, in MeV
keV = 1e-3
MeV = 1.0
GeV = 1e3
# length, in m
mm = 1e-3
cm = 1e-2
m = 1.0

TIME_UNITS = {"ns": ns, "us": us, "ms": ms, "s": s}
ENERGY_UNITS = {"keV": keV, "MeV": MeV, "GeV": GeV}
LENGTH_UNITS = {"mm": mm, "cm": cm, "m": m}
