"""Schema mappings: how a ROOT file written by other software maps onto the jaas index.

A YAML file names the tree, the run, how to build the trigger time, and for each index
column (``jaas.formats.schema.INDEX_SCHEMA``) a branch or an expression with its unit.
See docs/schema-mapping.md. Errors name the YAML file, the line and the bad key.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, PrivateAttr, ValidationError, model_validator

from jaas._yaml import Lines, line_of, load_yaml_lines
from jaas.errors import ConfigError
from jaas.formats.schema import INDEX_SCHEMA
from jaas.units import ENERGY_UNITS, LENGTH_UNITS, TIME_UNITS

__all__ = [
    "MAPPED_COLUMNS",
    "ColumnSpec",
    "SchemaMapping",
    "TimeSpec",
    "load_mapping",
    "parse_mapping",
]

# Columns a mapping may set; run, file_id and entry come from the catalog and the file.
MAPPED_COLUMNS = tuple(n for n in INDEX_SCHEMA.names if n not in ("run", "file_id", "entry"))
# Columns every mapping must provide (the event-reduction quantities); the others have
# documented fallbacks (see docs/schema-mapping.md).
REQUIRED_COLUMNS = ("t", "E", "x", "y", "z")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_LENGTHS = ("x", "y", "z", "r", "mx0", "my0", "mz0", "mx1", "my1", "mz1")
# column -> allowed units and their factor to the internal unit (jaas.units)
UNITS: dict[str, dict[str, float]] = {
    "t": TIME_UNITS,
    "E": ENERGY_UNITS,
    "pe": {"PE": 1.0},
    **dict.fromkeys(_LENGTHS, LENGTH_UNITS),
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ColumnSpec(_Strict):
    """One index column: ``(branch * scale + offset)`` or ``expr``, in ``unit``."""

    branch: str | None = None
    expr: str | None = None
    unit: str | None = None
    scale: float = 1.0
    offset: float = 0.0

    @model_validator(mode="after")
    def _one_source(self) -> ColumnSpec:
        if (self.branch is None) == (self.expr is None):
            raise ValueError("give exactly one of 'branch' or 'expr'")
        return self


class TimeSpec(_Strict):
    """Trigger time, computed exactly in int64 ns. One of three forms:

    - ``seconds`` (+ ``nanoseconds``): TTimeStamp style, two integer branches;
    - ``start`` (branch or constant, in ``start_unit``) + ``offset`` branch in ``unit``;
    - ``branch`` in ``unit`` (integer ns branches are taken exactly).
    """

    seconds: str | None = None
    nanoseconds: str | None = None
    start: str | int | None = None
    start_unit: str = "ns"
    offset: str | None = None
    branch: str | None = None
    unit: str = "ns"

    @model_validator(mode="after")
    def _one_form(self) -> TimeSpec:
        forms = [
            self.seconds is not None,
            self.start is not None or self.offset is not None,
            self.branch is not None,
        ]
        if sum(forms) != 1:
            raise ValueError(
                "give exactly one time form: {seconds, nanoseconds}, {start, offset, unit} "
                "or {branch, unit}"
            )
        if self.nanoseconds is not None and self.seconds is None:
            raise ValueError("'nanoseconds' needs 'seconds'")
        if forms[1] and (self.start is None or self.offset is None):
            raise ValueError("the start + offset form needs both 'start' and 'offset'")
        for key in ("unit", "start_unit"):
            if getattr(self, key) not in TIME_UNITS:
                raise ValueError(f"{key} must be one of {list(TIME_UNITS)}")
        return self


class SchemaMapping(_Strict):
    """A validated schema mapping; ``source`` and ``line()`` point back into the YAML."""

    tree: str
    run: int | None = None
    run_branch: str | None = None
    time: TimeSpec | None = None
    columns: dict[str, ColumnSpec] = {}
    # columns of any other name carried into the index as read (e.g. the file's event id)
    extra: dict[str, ColumnSpec] = {}
    defaults: dict[str, float | int | bool] = {}
    description: str = ""

    _source: str = PrivateAttr(default="<mapping>")
    _lines: Lines = PrivateAttr(default_factory=dict)

    @property
    def source(self) -> str:
        """The YAML file this mapping was read from."""
        return self._source

    def line(self, *loc: str | int) -> int | None:
        """The YAML line of a key path, e.g. ``line("columns", "E", "branch")``."""
        return line_of(self._lines, loc)

    def where(self, *loc: str | int) -> str:
        """``"map.yaml line 7"`` for a key path (for error messages)."""
        line = self.line(*loc)
        return f"{self._source} line {line}" if line is not None else self._source

    def digest(self) -> str:
        """A short hash of the mapping's content (names outputs made with it)."""
        text = json.dumps(self.model_dump(mode="json"), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:10]

    def branches(self) -> dict[tuple[str | int, ...], str]:
        """Branch names referenced directly (``branch``, time and run keys) by key path."""
        out: dict[tuple[str | int, ...], str] = {}
        if self.run_branch is not None:
            out[("run_branch",)] = self.run_branch
        if self.time is not None:
            for key in ("seconds", "nanoseconds", "offset", "branch"):
                value = getattr(self.time, key)
                if value is not None:
                    out[("time", key)] = value
            if isinstance(self.time.start, str):
                out[("time", "start")] = self.time.start
        for section in ("columns", "extra"):
            for name, spec in getattr(self, section).items():
                if spec.branch is not None:
                    out[(section, name, "branch")] = spec.branch
        return out


def load_mapping(path: str | os.PathLike[str]) -> SchemaMapping:
    """Read and validate a schema-mapping YAML file.

    Args:
        path: the YAML file.

    Raises:
        ConfigError: naming the file, the line and the bad key, with the nearest valid key.

    Example:
        >>> mapping = load_mapping("junosw-esd.yaml")   # doctest: +SKIP
        >>> mapping.tree
        'TEvent'
    """
    try:
        text = Path(path).read_bytes()  # decoded (strictly UTF-8) by the YAML loader
    except OSError as exc:
        raise ConfigError(f"{os.fspath(path)}: cannot read the schema mapping: {exc}") from exc
    return parse_mapping(text, source=path)


def parse_mapping(text: str | bytes, source: str | os.PathLike[str] = "<mapping>") -> SchemaMapping:
    """Validate a schema mapping given as YAML text (``source`` names it in errors)."""
    name = os.fspath(source)
    data, lines = load_yaml_lines(text, name)
    if data is None:
        raise ConfigError(f"{name}: the schema mapping is empty; it needs at least 'tree:'")
    try:
        mapping = SchemaMapping.model_validate(data)
    except ValidationError as exc:
        raise ConfigError("\n".join(_describe(e, lines, name) for e in exc.errors())) from None
    mapping._source = name
    mapping._lines = lines
    _check(mapping)
    return mapping


_KEYS: dict[str, tuple[str, ...]] = {
    "": tuple(SchemaMapping.model_fields),
    "time": tuple(TimeSpec.model_fields),
    "column": tuple(ColumnSpec.model_fields),
}


def _allowed_keys(loc: tuple[Any, ...]) -> tuple[str, ...]:
    if loc == ():
        return _KEYS[""]
    if loc == ("time",):
        return _KEYS["time"]
    if len(loc) == 2 and loc[0] in ("columns", "extra"):
        return _KEYS["column"]
    return ()


def _suggest(word: str, choices: Any) -> str:
    close = difflib.get_close_matches(str(word), list(choices), n=1, cutoff=0.5)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _describe(error: Any, lines: Lines, name: str) -> str:
    loc = tuple(error["loc"])
    line = line_of(lines, loc)
    where = f"{name} line {line}" if line is not None else name
    kind = error["type"]
    if kind == "extra_forbidden":
        key = loc[-1]
        allowed = _allowed_keys(loc[:-1])
        return f"{where}: unknown key {key!r}{_suggest(key, allowed)}"
    if kind == "missing":
        parent = ".".join(map(str, loc[:-1])) or "the top level"
        line = line_of(lines, loc[:-1])
        where = f"{name} line {line}" if line is not None else name
        return f"{where}: missing key {loc[-1]!r} in {parent}"
    path = ".".join(map(str, loc)) or "the top level"
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"{where}: {path}: {message}"


def _fail(mapping: SchemaMapping, loc: tuple[str | int, ...], message: str) -> ConfigError:
    return ConfigError(f"{mapping.where(*loc)}: {message}")


def _check(m: SchemaMapping) -> None:
    """Checks that need the whole mapping: column names, units, time, run, required."""
    for section in ("columns", "defaults"):
        for col in getattr(m, section):
            if col not in MAPPED_COLUMNS:
                extra = " (it is set by jaas)" if col in INDEX_SCHEMA.names else ""
                raise _fail(
                    m,
                    (section, col),
                    f"unknown index column {col!r}{extra}{_suggest(col, MAPPED_COLUMNS)}; "
                    f"index columns: {', '.join(MAPPED_COLUMNS)}",
                )
    for col, spec in m.extra.items():
        if not _IDENTIFIER.fullmatch(col) or len(col) > 64:
            raise _fail(
                m,
                ("extra", col),
                f"extra column name {col!r} must be a name usable in selections: letters, "
                "digits and _, not starting with a digit, at most 64 characters",
            )
        if col in INDEX_SCHEMA.names:
            raise _fail(m, ("extra", col), f"{col!r} is an index column: map it under 'columns:'")
        if spec.expr is not None or spec.unit is not None:
            raise _fail(
                m,
                ("extra", col),
                f"extra column {col!r} is copied from a branch as it is: give only "
                "'branch' (and optionally scale/offset), no 'expr' or 'unit'",
            )
    if (m.run is None) == (m.run_branch is None):
        raise _fail(m, (), "give exactly one of 'run' (a number) or 'run_branch' (a branch)")
    if (m.time is None) == ("t" not in m.columns):
        raise _fail(
            m, ("time",) if m.time else (), "give the trigger time once: 'time:' or 'columns: t:'"
        )
    for col, spec in m.columns.items():
        units = UNITS.get(col)
        if units is None and spec.unit is not None:
            raise _fail(m, ("columns", col, "unit"), f"column {col!r} has no unit")
        if units is not None and spec.unit is None:
            raise _fail(
                m,
                ("columns", col),
                f"declare the unit of column {col!r}: unit: one of {list(units)}",
            )
        if units is not None and spec.unit not in units:
            raise _fail(
                m,
                ("columns", col, "unit"),
                f"unit {spec.unit!r} of column {col!r} is not one of {list(units)}"
                f"{_suggest(str(spec.unit), units)}",
            )
    missing = [c for c in REQUIRED_COLUMNS if c not in m.columns and c not in m.defaults]
    if m.time is not None and "t" in missing:
        missing.remove("t")
    if missing:
        raise _fail(m, ("columns",), f"the mapping lacks required index columns {missing}")
