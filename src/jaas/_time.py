"""The one time helper: int64 ns timestamps <-> datetime, parsing of dates and durations.

jaas carries absolute times as integer nanoseconds since the Unix epoch (UTC), which int64
holds from 1677-09-21 to 2262-04-11; dates outside that range are refused with a clear
error instead of wrapping around. Durations given by users are float seconds.

Example:
    >>> parse_time("2026-01-01T00:00:00Z")
    1767225600000000000
    >>> ns_to_iso(1767225600000000001)
    '2026-01-01T00:00:00.000000001Z'
    >>> parse_duration("1.5h")
    5400.0
"""

from __future__ import annotations

import datetime as _dt
import re

from jaas.errors import ConfigError

__all__ = [
    "MAX_NS",
    "MIN_NS",
    "NS_PER_S",
    "datetime_to_ns",
    "ns_to_datetime",
    "ns_to_iso",
    "parse_duration",
    "parse_time",
]

NS_PER_S = 1_000_000_000
MAX_NS = 2**63 - 1  # 2262-04-11T23:47:16.854775807Z
MIN_NS = -(2**63)  # 1677-09-21T00:12:43.145224192Z
_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.UTC)
_DURATION_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "min": 60.0,
    "h": 3600.0,
    "d": 86400.0,
}
_DURATION_RE = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([a-z]*)\s*$")


def datetime_to_ns(when: _dt.datetime, what: str = "time") -> int:
    """Nanoseconds since the epoch of ``when`` (a naive datetime is taken as UTC).

    Raises:
        ConfigError: ``when`` is outside 1677-09-21 .. 2262-04-11 (int64 ns).
    """
    if when.tzinfo is None:
        when = when.replace(tzinfo=_dt.UTC)
    delta = when - _EPOCH
    ns = (delta.days * 86400 + delta.seconds) * NS_PER_S + delta.microseconds * 1000
    return _checked(ns, what, when.isoformat())


def ns_to_datetime(ns: int) -> _dt.datetime:
    """The UTC datetime of ``ns`` (truncated to microseconds, datetime's resolution)."""
    return _EPOCH + _dt.timedelta(microseconds=int(ns) // 1000)


def ns_to_iso(ns: int) -> str:
    """ISO-8601 UTC text of ``ns`` with all nine fractional digits, e.g. ``...00.000000001Z``."""
    ns = int(ns)
    seconds, frac = divmod(ns, NS_PER_S)
    base = (_EPOCH + _dt.timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{base}.{frac:09d}Z"


def parse_time(text: str | int | _dt.datetime, what: str = "time") -> int:
    """An ISO-8601 time (``2026-01-01T00:00:00Z``; UTC if no zone), datetime or int ns.

    Raises:
        ConfigError: ``WHAT 'text': ...`` for text that is not a date, or a date past 2262.
    """
    if isinstance(text, bool):
        raise ConfigError(f"{what} {text!r}: expected an ISO-8601 time or integer ns")
    if isinstance(text, int):
        return _checked(text, what, str(text))
    if isinstance(text, _dt.datetime):
        return datetime_to_ns(text, what)
    try:
        when = _dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(
            f"{what} {text!r}: expected an ISO-8601 time such as 2026-01-01T00:00:00Z"
        ) from None
    return datetime_to_ns(when, what)


def parse_duration(text: str | float, what: str = "duration") -> float:
    """A positive duration in seconds: ``600s``, ``10min``, ``1h``, ``2d``, ``5ms`` or ``42`` (s).

    Raises:
        ConfigError: not a number with one of the units ns, us, ms, s, min, h, d; or not > 0.
    """
    if isinstance(text, int | float) and not isinstance(text, bool):
        value = float(text)
    else:
        match = _DURATION_RE.match(str(text).lower())
        if not match or match.group(2) not in ("", *_DURATION_UNITS):
            raise ConfigError(
                f"{what} {text!r}: expected a number with a unit among s, min, h, d (e.g. 1h)"
            )
        value = float(match.group(1)) * _DURATION_UNITS[match.group(2) or "s"]
    if not value > 0:
        raise ConfigError(f"{what} {text!r}: must be positive")
    return value


def _checked(ns: int, what: str, shown: str) -> int:
    if not MIN_NS <= ns <= MAX_NS:
        raise ConfigError(
            f"{what} {shown}: outside the range of int64 nanosecond timestamps "
            "(1677-09-21 to 2262-04-11 UTC)"
        )
    return ns
