"""The one YAML loader of jaas: safe, strict, and remembering the line of every key.

Every YAML file jaas reads (keep-up stages, schema mappings, ...) goes through here, so
all of them refuse the same things with the same kind of message, ``FILE:LINE: what``:

- input that is not UTF-8 (message names the byte offset),
- invalid YAML,
- a key given twice in one mapping (PyYAML would silently keep the last),
- an alias that refers to the node it is inside of (a recursive structure),
- keys that are not strings or integers.

Example:
    >>> doc = load_yaml_lines("a:\\n  b: 1\\n", "x.yaml")
    >>> doc.data, doc.line(("a", "b"))
    ({'a': {'b': 1}}, 2)
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from jaas.errors import ConfigError

__all__ = ["Lines", "Loc", "Located", "line_of", "load_located", "load_yaml_lines"]

Loc = tuple[str | int, ...]
Lines = dict[Loc, int]


class Located:
    """Plain Python data from a YAML document plus the 1-based line of each key path.

    Attributes:
        data: the document (dicts, lists and scalars), ``None`` when empty.
        lines: ``{key path: line}``; ``()`` is the document itself.
        path: the file name used in messages.
    """

    def __init__(self, data: Any, lines: Lines, path: str) -> None:
        self.data = data
        self.lines = lines
        self.path = path

    def __iter__(self) -> Any:
        """Unpack as ``data, lines``."""
        return iter((self.data, self.lines))

    def line(self, loc: Sequence[Any]) -> int | None:
        """Line of ``loc`` or of its nearest enclosing key that has one."""
        return line_of(self.lines, loc)

    def where(self, loc: Sequence[Any] = ()) -> str:
        """``FILE:LINE`` of ``loc`` (``FILE`` alone when no line is known)."""
        line = self.line(loc)
        return f"{self.path}:{line}" if line is not None else self.path


def load_located(path: str | os.PathLike[str]) -> Located:
    """Read and parse a YAML file.

    Raises:
        ConfigError: the file cannot be read, is not UTF-8 or is not acceptable YAML.
    """
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read the file: {exc.strerror or exc}") from None
    return load_yaml_lines(raw, p)


def load_yaml_lines(text: str | bytes, source: str | os.PathLike[str] = "<yaml>") -> Located:
    """Parse YAML ``text`` (``source`` names it in messages).

    The result unpacks as ``data, lines``.

    Raises:
        ConfigError: ``SOURCE:LINE: ...`` for each refused input (see the module doc).
    """
    name = os.fspath(source)
    if isinstance(text, bytes):
        raw = text
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = raw.count(b"\n", 0, exc.start) + 1
            raise ConfigError(
                f"{name}:{line}: not UTF-8 text (byte offset {exc.start}); save the file as UTF-8"
            ) from None
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        lines: Lines = {}
        data = None if node is None else _Builder(loader, name, lines).build(node, ())
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{name}:{mark.line + 1}" if mark is not None else name
        raise ConfigError(f"{where}: not valid YAML: {exc.problem or exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{name}: not valid YAML: {exc}") from None
    finally:
        loader.dispose()
    return Located(data, lines, name)


_PLAIN_TAGS = ("tag:yaml.org,2002:map", "tag:yaml.org,2002:seq", "tag:yaml.org,2002:omap")


class _Builder:
    def __init__(self, loader: yaml.SafeLoader, name: str, lines: Lines) -> None:
        self.loader = loader
        self.name = name
        self.lines = lines
        self.open: set[int] = set()  # ids of the collection nodes being built (for cycles)

    def build(self, node: yaml.Node, loc: Loc) -> Any:
        self.lines.setdefault(loc, node.start_mark.line + 1)
        if not isinstance(node, yaml.MappingNode | yaml.SequenceNode):
            return self.loader.construct_object(node, deep=True)
        if node.tag not in _PLAIN_TAGS:
            raise ConfigError(
                f"{self.name}:{node.start_mark.line + 1}: not valid YAML: tag {node.tag!r} "
                "is not allowed here"
            )
        if id(node) in self.open:
            key = ".".join(map(str, loc)) or "(top level)"
            raise ConfigError(
                f"{self.name}:{node.start_mark.line + 1}: {key}: recursive alias "
                "(an alias refers to a node it is inside of)"
            )
        self.open.add(id(node))
        try:
            if isinstance(node, yaml.SequenceNode):
                return [self.build(item, (*loc, i)) for i, item in enumerate(node.value)]
            return self._mapping(node, loc)
        finally:
            self.open.discard(id(node))

    def _mapping(self, node: yaml.MappingNode, loc: Loc) -> dict[Any, Any]:
        explicit = {id(k) for k, _ in node.value if k.tag != "tag:yaml.org,2002:merge"}
        try:
            self.loader.flatten_mapping(node)
        except RecursionError:
            raise ConfigError(
                f"{self.name}:{node.start_mark.line + 1}: recursive alias in a '<<' merge"
            ) from None
        out: dict[Any, Any] = {}
        first: dict[Any, int] = {}
        for key_node, value_node in node.value:
            line = key_node.start_mark.line + 1
            key = self.loader.construct_object(key_node, deep=True)
            if isinstance(key, bool) or not isinstance(key, str | int):
                raise ConfigError(f"{self.name}:{line}: bad key {key!r} (use a name)")
            if key in first and id(key_node) in explicit and first[key] > 0:
                raise ConfigError(
                    f"{self.name}:{line}: duplicate key {key!r} (first on line {first[key]})"
                )
            # keys merged in with '<<' may be overridden by the mapping's own keys
            first[key] = line if id(key_node) in explicit else -line
            sub = (*loc, key)
            self.lines[sub] = line
            out[key] = self.build(value_node, sub)
        return out


def line_of(lines: Lines | Located, loc: Sequence[Any]) -> int | None:
    """Line of ``loc`` (e.g. a pydantic error location) or of its nearest known prefix."""
    table = lines.lines if isinstance(lines, Located) else lines
    key = tuple(loc)
    while key:
        if key in table:
            return table[key]
        key = key[:-1]
    return table.get(())
