"""The one YAML loader: lines of keys, and the inputs it refuses with FILE:LINE messages."""

from __future__ import annotations

from pathlib import Path

import pytest

from jaas._yaml import line_of, load_located, load_yaml_lines
from jaas.errors import ConfigError


def test_lines_of_keys_and_list_items() -> None:
    doc = load_yaml_lines("a:\n  b: 1\n  c:\n    - x\n    - y\n", "f.yaml")
    assert doc.data == {"a": {"b": 1, "c": ["x", "y"]}}
    assert doc.line(("a", "b")) == 2
    assert doc.line(("a", "c", 1)) == 5
    assert line_of(doc, ("a", "c", 1, "deeper")) == 5  # nearest known prefix
    assert doc.where(("a",)) == "f.yaml:1"
    _data, lines = doc
    assert lines[("a", "c")] == 3


def test_duplicate_key_names_both_lines() -> None:
    with pytest.raises(ConfigError, match=r"^f.yaml:3: duplicate key 'b' \(first on line 2\)$"):
        load_yaml_lines("a:\n  b: 1\n  b: 2\n", "f.yaml")


def test_merge_keys_may_be_overridden() -> None:
    doc = load_yaml_lines("base: &b {x: 1, y: 2}\nd:\n  <<: *b\n  y: 3\n", "f.yaml")
    assert doc.data["d"] == {"x": 1, "y": 3}
    assert doc.line(("d", "y")) == 4


def test_recursive_alias_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"^f.yaml:1: a.1: recursive alias"):
        load_yaml_lines("a: &x\n  - 1\n  - *x\n", "f.yaml")
    with pytest.raises(ConfigError, match=r"recursive alias"):
        load_yaml_lines("a: &x {b: *x}\n", "f.yaml")


def test_non_alias_reuse_is_fine() -> None:
    doc = load_yaml_lines("a: &x [1, 2]\nb: *x\n", "f.yaml")
    assert doc.data == {"a": [1, 2], "b": [1, 2]}


def test_non_utf8_file(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("a: 1\nname: caf\u00e9\n".encode("latin-1"))
    with pytest.raises(ConfigError, match=rf"^{path}:2: not UTF-8 text \(byte offset 14\)"):
        load_located(path)


def test_syntax_error_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^f.yaml:2: not valid YAML"):
        load_yaml_lines("a: [1\n", "f.yaml")
    with pytest.raises(ConfigError, match=r"cannot read the file"):
        load_located(tmp_path / "nope.yaml")


def test_unsafe_tags_and_odd_keys_are_refused() -> None:
    with pytest.raises(ConfigError, match=r"^f.yaml:1: not valid YAML"):
        load_yaml_lines("a: !!python/object/apply:os.system ['true']\n", "f.yaml")
    with pytest.raises(ConfigError, match=r"^f.yaml:1: bad key"):
        load_yaml_lines("[1, 2]: x\n", "f.yaml")


def test_empty_document() -> None:
    assert load_yaml_lines("", "f.yaml").data is None
