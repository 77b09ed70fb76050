"""Atomic writes: an output that cannot be created is named as the user gave it."""

from __future__ import annotations

from pathlib import Path

import pytest

from jaas._io import atomic_path


def test_unwritable_output_names_the_output_not_the_temporary(tmp_path: Path) -> None:
    with pytest.raises(OSError) as info, atomic_path("/proc/jaas-cannot-write.json"):
        pass
    assert info.value.filename == "/proc/jaas-cannot-write.json"


def _write_then_fail(out: Path) -> None:
    with atomic_path(out) as tmp:
        tmp.write_bytes(b"partial")
        raise RuntimeError("writer failed")


def test_failed_write_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError):
        _write_then_fail(tmp_path / "x.bin")
    assert list(tmp_path.iterdir()) == []
