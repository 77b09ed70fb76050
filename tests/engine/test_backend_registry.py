"""Choosing where a query runs: names, addresses, registered schemes, backend objects."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import jaas
from jaas.engine.session import backend as B
from jaas.engine.session.analysis import coincidence
from jaas.errors import ConfigError
from tests.engine import test_analysis

dataset = test_analysis.dataset  # the hand-built dataset fixture


class Recording:
    """A backend that runs locally and remembers what it was asked."""

    name = "recording"

    def __init__(self, target: Any = None) -> None:
        self.target = target
        self.calls: list[B.BuiltQuery] = []

    def run(self, ds: Any, query: B.BuiltQuery, **kwargs: Any) -> B.Execution:
        self.calls.append(query)
        done = B.LocalBackend().run(ds, query, **kwargs)
        done.info = B.BackendInfo("recording", str(self.target or ""))
        return done


def test_local_is_the_default_and_a_name() -> None:
    assert isinstance(B.resolve_backend(None), B.LocalBackend)
    assert isinstance(B.resolve_backend("local"), B.LocalBackend)
    assert isinstance(B.LocalBackend(), B.Backend)


def test_unknown_scheme_is_a_config_error_naming_the_known_ones() -> None:
    with pytest.raises(ConfigError, match=r"no analysis backend for 'nosuch'.*'local'"):
        B.resolve_backend("nosuch://host:1")
    with pytest.raises(ConfigError, match="not both"):
        B.resolve_backend("local", client=object())


def test_dask_schemes_are_wired_by_the_top_package_without_engine_imports() -> None:
    assert jaas.BACKENDS["tcp"].startswith("jaas.cluster")
    assert {"local", "tcp", "dask"} <= set(B.backend_names())


def test_registered_scheme_and_backend_object_run_the_same_query(
    dataset: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    made: list[Recording] = []

    def factory(target: Any) -> Recording:
        made.append(Recording(target))
        return made[-1]

    # a registry entry for this test only: later tests resolve the real spark:// backend
    monkeypatch.setattr(B, "_REGISTRY", dict(B._REGISTRY))
    B.register_backend("spark", factory)
    query = {"prompt": "E > 1 MeV", "delayed": "E > 1 MeV", "dt": "1 ms", "mode": "all"}
    local = coincidence(dataset, **query)  # type: ignore[arg-type]
    remote = coincidence(dataset, backend="spark://master:7077", **query)  # type: ignore[arg-type]
    assert made[0].target == "spark://master:7077"
    assert remote.backend_info == B.BackendInfo("recording", "spark://master:7077")
    assert remote.provenance["backend"] == "recording spark://master:7077"
    np.testing.assert_array_equal(remote.result.delayed, local.result.delayed)
    obj = Recording()
    again = dataset.ibd(backend=obj)
    assert len(obj.calls) == 1 and "__prompt" in obj.calls[0].exprs
    assert again.n_pairs == dataset.ibd().n_pairs
    assert local.backend_info.name == "local"


def test_lazy_import_path_and_broken_path() -> None:
    B.register_backend("rec", f"{__name__}:Recording")
    got = B.resolve_backend("rec://x")
    assert isinstance(got, Recording) and got.target == "rec://x"
    B.register_backend("broken", "no_such_module_xyz:Thing")
    with pytest.raises(ConfigError, match="cannot be loaded"):
        B.resolve_backend("broken://x")
