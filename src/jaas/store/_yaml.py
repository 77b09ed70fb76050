"""YAML loading that remembers the line of every key, for error messages that name it."""

from __future__ import annotations

import os
from typing import Any

import yaml

from jaas.errors import ConfigError

__all__ = ["Lines", "line_of", "load_yaml_lines"]

Loc = tuple[str | int, ...]
Lines = dict[Loc, int]


def load_yaml_lines(text: str, source: str | os.PathLike[str]) -> tuple[Any, Lines]:
    """Parse YAML ``text``; return the data and ``{key path: 1-based line}``.

    Duplicate keys (which PyYAML silently overrides) are an error naming both lines.
    """
    name = os.fspath(source)
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        lines: Lines = {}
        data = _construct(loader, node, (), lines, name) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{name}{where}: not valid YAML: {exc.problem or exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{name}: not valid YAML: {exc}") from None
    finally:
        loader.dispose()
    return data, lines


def _construct(loader: yaml.SafeLoader, node: yaml.Node, loc: Loc, lines: Lines, name: str) -> Any:
    lines.setdefault(loc, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if not isinstance(key, str | int):
                raise ConfigError(f"{name} line {key_node.start_mark.line + 1}: bad key {key!r}")
            sub = (*loc, key)
            line = key_node.start_mark.line + 1
            if key in out:
                raise ConfigError(
                    f"{name} line {line}: duplicate key {key!r} (first on line {lines[sub]})"
                )
            lines[sub] = line
            out[key] = _construct(loader, value_node, sub, lines, name)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [
            _construct(loader, item, (*loc, i), lines, name) for i, item in enumerate(node.value)
        ]
    return loader.construct_object(node, deep=True)


def line_of(lines: Lines, loc: tuple[Any, ...]) -> int | None:
    """The line of ``loc`` or of its nearest enclosing key that has one."""
    loc = tuple(loc)
    while loc:
        if loc in lines:
            return lines[loc]
        loc = loc[:-1]
    return lines.get(())
