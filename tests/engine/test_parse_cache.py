"""Warm queries reuse parsed conditions; bad text still fails every time, named."""

from __future__ import annotations

import pytest

from jaas.engine.session.analysis import _parsed, build_query, quantity, veto
from jaas.errors import SelectionError


def _query(prompt: str = "E > 1 MeV and not muon", window: str = "1 ms") -> object:
    return build_query(
        prompt=prompt, delayed="E > 2 MeV", dt="1 ms",
        vetoes=[veto("detector", "muon", window)],
    )  # fmt: skip


def test_same_query_reuses_the_parsed_conditions() -> None:
    _parsed.cache_clear()
    spec1, exprs1, _ = _query()  # type: ignore[misc]
    misses = _parsed.cache_info().misses
    spec2, exprs2, _ = _query()  # type: ignore[misc]
    assert _parsed.cache_info().misses == misses  # nothing parsed again
    assert spec1 == spec2
    assert all(exprs1[k] is exprs2[k] for k in exprs1)


def test_changed_text_gives_the_new_condition() -> None:
    _, exprs, _ = _query(prompt="E > 3 MeV")  # type: ignore[misc]
    assert str(exprs["__prompt"]) != str(_query()[1]["__prompt"])  # type: ignore[index]
    spec, _, _ = _query(window="2 ms")  # type: ignore[misc]
    assert spec.vetoes[0].window_ns == 2_000_000


@pytest.mark.parametrize("attempt", [1, 2])
def test_bad_text_raises_every_time_naming_the_argument(attempt: int) -> None:
    with pytest.raises(SelectionError) as err:
        _query(prompt="E > 1 MeV and nonsense_column")
    assert err.value.argument == "prompt"
    with pytest.raises(SelectionError, match="no unit"):
        quantity("3", "time")
