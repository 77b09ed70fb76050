"""Pure parts, no network: the ownership registry and the partition plan."""

from __future__ import annotations

import numpy as np
import pytest

from jaas.cluster.plan import FAR, check_time_order, plan, without_files
from jaas.cluster.registry import Registry
from jaas.engine.session.cache import ColumnCache
from jaas.engine.session.dataset import Dataset, IndexFile
from jaas.errors import ConfigError


def _files(n: int, span: int = 100, events: int = 10) -> list[IndexFile]:
    return [IndexFile(f"f{i}", 1, i, events, i * span, i * span + span - 1, i) for i in range(n)]


def test_registry_assigns_contiguous_blocks_and_moves_shared_files() -> None:
    reg = Registry()
    for w in ("b", "a"):
        reg.add_worker(w)
    files = [(f"f{i}", i * 10, i * 10 + 9) for i in range(6)]
    owners = reg.assign(files)
    assert [owners[f"f{i}"] for i in range(6)] == ["a"] * 3 + ["b"] * 3
    assert reg.assign(files) == owners  # stable
    moved, lost = reg.remove_worker("b")
    assert (sorted(moved), lost) == (["f3", "f4", "f5"], [])
    assert set(reg.assign(files).values()) == {"a"}


def test_registry_node_local_files_become_lost_until_claimed() -> None:
    reg = Registry()
    reg.claim("w1", [("x", 0, 9), ("y", 10, 19)], local=True)
    reg.add_worker("w2")
    moved, lost = reg.remove_worker("w1")
    assert (moved, sorted(lost)) == ([], ["x", "y"])
    owners = reg.assign([("x", 0, 9), ("y", 10, 19), ("z", 20, 29)], local=True)
    assert owners == {"x": None, "y": None, "z": "w2"}
    assert reg.lost() == {"x": "w1", "y": "w1"}
    reg.claim("w3", [("x", 0, 9)], local=True)  # its disk is back with a new worker
    assert reg.lost() == {"y": "w1"}
    snap = reg.snapshot()
    assert snap["workers"]["w3"]["files"] == ["x"]
    assert snap["lost"] == {"y": "w1"}


def test_registry_sync_treats_a_vanished_worker_as_removed() -> None:
    reg = Registry()
    reg.claim("w1", [("x", 0, 9)], local=True)
    reg.claim("w2", [("y", 10, 19)])
    reg.claim("w3", [("z", 20, 29)])
    reg.sync(["w3"])  # w1 and w2 left without the plugin hearing it
    assert reg.lost() == {"x": "w1"}
    assert reg.assign([("x", 0, 9), ("y", 10, 19)]) == {"x": None, "y": "w3"}


def test_plan_halo_longer_than_many_partitions() -> None:
    files = _files(4)  # t in [0, 400)
    parts = plan(files, before=250, after=5, partition_ns=50)
    assert [p.t_lo for p in parts[1:]] == list(range(50, 400, 50))
    assert parts[0].t_lo == -FAR and parts[-1].t_hi == FAR
    p = parts[7]  # core [350, 400): needs [100, 404]
    assert (p.t_lo, p.lo, p.hi) == (350, 100, FAR)
    assert p.files == (1, 2, 3) and p.home == 3
    p = parts[3]  # core [150, 200): needs [-100, 204] -> files 0, 1, 2
    assert p.files == (0, 1, 2) and p.home == 1


def test_plan_by_events_cuts_files_in_equal_slices() -> None:
    parts = plan(_files(2, events=30), 0, 0, partition_events=10)
    assert [p.t_lo for p in parts[1:]] == [33, 66, 100, 133, 166]
    assert [p.home for p in parts] == [0, 0, 0, 1, 1, 1]


def test_overlapping_files_refused() -> None:
    files = _files(2)
    files[1] = IndexFile("late", 1, 1, 10, 50, 150, 1)
    with pytest.raises(ConfigError, match=r"f0 \(up to t=99\) and late \(from t=50\)"):
        check_time_order(files)


def test_without_files_cuts_their_time_between_neighbours() -> None:
    files = _files(5)
    ds = Dataset(files=files, segments=np.array([[0, 500]], np.int64), cache=ColumnCache())
    sub = without_files(ds, {"f1": "w9", "f2": "w9", "f4": "w8"}, "gone")
    assert [f.path for f in sub.files] == ["f0", "f3"]
    # f1, f2 lost: from f0's last event + 1 to f3's first event; f4: to the end
    assert sub.segments.tolist() == [[0, 100], [300, 400]]
    assert [(x.start, x.end, x.reason) for x in sub.lost] == [
        (100, 300, "gone"),
        (400, 500, "gone"),
    ]
    assert "f1, f2" in sub.lost[0].what and "w9" in sub.lost[0].what
    assert without_files(ds, {}, "gone") is ds
