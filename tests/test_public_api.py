"""The public surface: everything in ``jaas.__all__`` resolves."""

from __future__ import annotations

import pytest

import jaas


def test_all_names_resolve() -> None:
    for name in jaas.__all__:
        assert getattr(jaas, name) is not None, name


def test_lazy_names_are_exported() -> None:
    assert set(jaas._LAZY) <= set(jaas.__all__)


def test_unknown_attribute_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no_such_thing"):
        jaas.no_such_thing  # type: ignore[attr-defined]  # noqa: B018
