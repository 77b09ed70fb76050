"""Warm attempts draw their own random numbers: a fork must not share the parent's RNG state."""

from __future__ import annotations

import json
import os
import sys
import textwrap

import pytest

from jaas.kup.executors import ExecutorStatus
from jaas.kup.executors.local import LocalExecutor
from tests.kup.test_executor_local import wait
from tests.kup.test_warm import parent_pid, spec

STAGES = """\
import json, os, random
from pathlib import Path

import numpy as np
import numpy.random  # imported in the parent, as a stage module that simulates would

def draw(ctx):
    Path(ctx.params["out"]).write_text(json.dumps({
        "np": np.random.random(), "py": random.random(), "ppid": os.getppid()}))
    print("drew", np.random.random(), flush=True)
    return ctx.input
"""


@pytest.fixture
def ex(tmp_path, monkeypatch):
    """A warm executor whose parent has imported numpy.random (through the preloaded stages)."""
    d = tmp_path / "mods"
    d.mkdir()
    (d / "rngstages.py").write_text(textwrap.dedent(STAGES))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(d), *sys.path]))
    e = LocalExecutor(slots=2, kill_grace=0.5, preload=("rngstages",))
    yield e
    e.shutdown()


def test_two_forked_attempts_draw_different_unseeded_random_numbers(ex, tmp_path):
    seen = []
    for i in range(2):
        out = tmp_path / f"draw{i}.json"
        h = ex.submit(spec(tmp_path, "rngstages:draw", f"d{i}", {"out": str(out)}))
        assert wait(ex, h).status is ExecutorStatus.SUCCEEDED
        ex.forget(h)
        seen.append(json.loads(out.read_text()))
    assert seen[0]["ppid"] == seen[1]["ppid"] == parent_pid(ex)  # both forked by one parent
    assert seen[0]["np"] != seen[1]["np"]  # numpy's legacy global RandomState
    assert seen[0]["py"] != seen[1]["py"]  # the random module
    logs = [(tmp_path / f"d{i}.log").read_text() for i in range(2)]
    assert all("drew" in log for log in logs) and logs[0] != logs[1]
