"""YAML loading that remembers the line of every key, so validation errors can name it."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from jaas.errors import ConfigError

__all__ = ["Located", "line_of", "load_located"]

Loc = tuple[str | int, ...]


class Located:
    """Plain Python data from a YAML file plus the 1-based line of each key path."""

    def __init__(self, data: Any, lines: dict[Loc, int], path: str) -> None:
        self.data = data
        self.lines = lines
        self.path = path


def _walk(node: yaml.Node, loc: Loc, lines: dict[Loc, int]) -> Any:
    lines.setdefault(loc, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = _scalar(key_node)
            sub = (*loc, key)
            lines[sub] = key_node.start_mark.line + 1
            out[key] = _walk(value_node, sub, lines)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_walk(item, (*loc, i), lines) for i, item in enumerate(node.value)]
    return _scalar(node)


def _scalar(node: yaml.Node) -> Any:
    return yaml.SafeLoader("").construct_object(node, deep=True)


def load_located(path: str | os.PathLike[str]) -> Located:
    """Parse a YAML file safely and record the line of every mapping key and list item.

    Raises:
        ConfigError: the file is missing or is not valid YAML (message names file and line).
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read the file: {exc.strerror or exc}") from exc
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{p}:{mark.line + 1}" if mark is not None else str(p)
        raise ConfigError(f"{where}: not valid YAML: {getattr(exc, 'problem', exc)}") from exc
    lines: dict[Loc, int] = {}
    data = None if node is None else _walk(node, (), lines)
    return Located(data, lines, str(p))


def line_of(located: Located, loc: Sequence[str | int]) -> int | None:
    """Line of the deepest known prefix of ``loc`` (a pydantic error location)."""
    key = tuple(loc)
    while key:
        if key in located.lines:
            return located.lines[key]
        key = key[:-1]
    return located.lines.get(())
