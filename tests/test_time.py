"""The one time helper: ns <-> datetime, date and duration parsing, the 2262 limit."""

from __future__ import annotations

import datetime as dt

import pytest

from jaas._time import (
    MAX_NS,
    datetime_to_ns,
    ns_to_datetime,
    ns_to_iso,
    parse_duration,
    parse_time,
)
from jaas.errors import ConfigError

JAN1 = 1767225600 * 10**9  # 2026-01-01T00:00:00Z


def test_iso_times_and_zones() -> None:
    assert parse_time("2026-01-01T00:00:00Z") == JAN1
    assert parse_time("2026-01-01T01:00:00+01:00") == JAN1
    assert parse_time("2026-01-01T00:00:00") == JAN1  # no zone: UTC
    assert parse_time("2026-01-01T00:00:00.000001Z") == JAN1 + 1000
    assert parse_time(JAN1 + 7) == JAN1 + 7
    assert parse_time(dt.datetime(2026, 1, 1, tzinfo=dt.UTC)) == JAN1


def test_round_trips() -> None:
    when = dt.datetime(2031, 5, 6, 7, 8, 9, 123456, tzinfo=dt.UTC)
    assert ns_to_datetime(datetime_to_ns(when)) == when
    assert ns_to_iso(JAN1 + 1) == "2026-01-01T00:00:00.000000001Z"
    assert parse_time(ns_to_iso(JAN1 + 5000)) == JAN1 + 5000
    assert ns_to_iso(MAX_NS) == "2262-04-11T23:47:16.854775807Z"


@pytest.mark.parametrize("text", ["2262-04-12T00:00:00Z", "9999-01-01", "1600-01-01T00:00:00Z"])
def test_dates_outside_int64_ns_are_refused(text: str) -> None:
    with pytest.raises(ConfigError, match=r"outside the range of int64 nanosecond timestamps"):
        parse_time(text, "start")
    with pytest.raises(ConfigError, match=r"^start "):
        parse_time(text, "start")


def test_bad_time_text() -> None:
    with pytest.raises(ConfigError, match=r"^since 'yesterday': expected an ISO-8601 time"):
        parse_time("yesterday", "since")
    with pytest.raises(ConfigError, match="outside the range"):
        parse_time(2**63)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("600s", 600), ("10min", 600), ("1.5h", 5400), ("2d", 172800), ("42", 42), ("5ms", 0.005)],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "1 week", "-5s", "0", "h"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ConfigError, match=r"^window "):
        parse_duration(text, "window")
