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


def test_import_jaas_stays_light_and_wires_the_dask_backend_by_scheme() -> None:
    import subprocess
    import sys

    code = (
        "import sys, jaas\n"
        "names = ('numpy', 'numba', 'jaas.engine', 'jaas.cluster')\n"
        "heavy = [m for m in names if m in sys.modules]\n"
        "print(heavy); raise SystemExit(1 if heavy else 0)\n"
    )
    got = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert got.returncode == 0, got.stdout + got.stderr
    assert jaas.BACKENDS["tcp"] == jaas.BACKENDS["dask"] == "jaas.cluster.backend:DaskBackend"
