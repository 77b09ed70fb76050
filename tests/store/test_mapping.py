"""Schema-mapping validation: errors name the file, the line and the nearest valid key."""

from __future__ import annotations

from pathlib import Path

import pytest

from jaas.errors import ConfigError
from jaas.store.mapping import load_mapping, parse_mapping

GOOD = """\
tree: TEvent
run: 1234
time: {seconds: sec, nanoseconds: nanosec}
columns:
  E: {branch: Erec, unit: GeV}
  x: {branch: recx, unit: mm}
  y: {branch: recy, unit: mm}
  z: {branch: recz, unit: mm}
defaults: {cls: 0, quality: 0}
"""


def test_good_mapping_loads(tmp_path: Path) -> None:
    path = tmp_path / "map.yaml"
    path.write_text(GOOD)
    m = load_mapping(path)
    assert m.tree == "TEvent"
    assert m.columns["x"].unit == "mm"
    assert m.time is not None and m.time.seconds == "sec"
    assert m.line("columns", "y", "branch") == 7
    assert m.where("tree") == f"{path} line 1"


def _error(text: str) -> str:
    with pytest.raises(ConfigError) as info:
        parse_mapping(text, source="map.yaml")
    return str(info.value)


def test_misspelled_key_names_line_and_suggestion() -> None:
    text = GOOD.replace("x: {branch: recx", "x: {brnach: recx")
    assert "map.yaml line 6: unknown key 'brnach' (did you mean 'branch'?)" in _error(text)


def test_misspelled_top_level_key() -> None:
    text = GOOD.replace("columns:", "colums:")
    assert "map.yaml line 4: unknown key 'colums' (did you mean 'columns'?)" in _error(text)


def test_unknown_index_column_suggests() -> None:
    text = GOOD.replace("defaults:", "  pee: {branch: npe, unit: PE}\ndefaults:")
    assert "map.yaml line 9: unknown index column 'pee' (did you mean 'pe'?)" in _error(text)


def test_bad_unit_named_with_choices() -> None:
    text = GOOD.replace("recy, unit: mm", "recy, unit: km")
    msg = _error(text)
    assert msg.startswith("map.yaml line 7: unit 'km' of column 'y'")
    assert "['mm', 'cm', 'm']" in msg


def test_missing_unit_and_missing_required_column() -> None:
    assert "line 5: declare the unit of column 'E'" in _error(GOOD.replace(", unit: GeV", ""))
    msg = _error(GOOD.replace("  z: {branch: recz, unit: mm}\n", ""))
    assert "map.yaml line 4: the mapping lacks required index columns ['z']" in msg


def test_branch_and_expr_together_refused() -> None:
    text = GOOD.replace("{branch: Erec, unit: GeV}", "{branch: Erec, expr: 'Erec*2', unit: GeV}")
    assert "map.yaml line 5: columns.E: give exactly one of 'branch' or 'expr'" in _error(text)


def test_time_given_twice_and_run_missing() -> None:
    text = GOOD.replace("columns:\n", "columns:\n  t: {branch: T, unit: ns}\n")
    assert "give the trigger time once" in _error(text)
    assert "exactly one of 'run'" in _error(GOOD.replace("run: 1234\n", ""))


def test_duplicate_key_and_bad_yaml() -> None:
    assert "map.yaml:2: duplicate key 'tree' (first on line 1)" in _error("tree: A\ntree: B\n")
    assert _error("tree: [A\n").startswith("map.yaml:2: not valid YAML")


def test_missing_tree_key() -> None:
    assert "missing key 'tree'" in _error(GOOD.replace("tree: TEvent\n", ""))
