"""Canonical adler32: 8 lower-case hex digits, zero padded (the WLCG convention)."""

from __future__ import annotations

import re

from jaas._io import adler32_file
from jaas.errors import ConfigError

__all__ = ["adler32_file", "canonical_adler32"]

_HEX = re.compile(r"^(?:0x)?([0-9a-fA-F]{1,8})$")


def canonical_adler32(value: str | int) -> str:
    """``value`` (an int, or hex with or without ``0x`` and leading zeros) as 8 lower hex digits.

    Raises:
        ConfigError: not an adler32 value.
    """
    if isinstance(value, int):
        if not 0 <= value <= 0xFFFFFFFF:
            raise ConfigError(f"adler32 {value} is out of range")
        return f"{value:08x}"
    m = _HEX.match(value.strip())
    if m is None:
        raise ConfigError(f"{value!r} is not an adler32 checksum (up to 8 hex digits)")
    return f"{int(m.group(1), 16):08x}"
