"""The selection language: parse text such as ``0.7 MeV < E < 12 MeV and r < 17.2 m``.

Grammar, loosest binding first (as in Python)::

    expr    := or
    or      := and ("or" and)*
    and     := not ("and" not)*
    not     := "not" not | compare
    compare := sum (("<" | "<=" | ">" | ">=" | "==" | "!=") sum)*   # chained: a < E < b
    sum     := product (("+" | "-") product)*
    product := unary (("*" | "/") unary)*
    unary   := ("-" | "+") unary | power
    power   := atom ("**" unary)?                                    # right-associative
    atom    := number [unit] | "true" | "false" | name | func "(" args ")" | "(" expr ")"

- Booleans are spelled ``and``, ``or``, ``not`` only (``&``, ``|``, ``~``, ``!`` are refused
  with a hint). ``/`` is true division; integers are 64-bit.
- Units follow a number: keV MeV GeV, mm cm m, ns us µs ms s. Values are converted to the
  internal units (MeV, m, ns) and carry their dimension. A number without a unit takes the
  dimension of what it is added to or compared with; ``E < 17.2 m`` is an error.
- Column units come from the caller (``schema_units(INDEX_SCHEMA)``); a column in a
  non-internal unit (say ``"mm"``) is converted on reading. Unit ``"bool"`` marks a
  condition column; a column without unit used as a condition means "non-zero".
- Functions: abs, sqrt, exp, log, log10 (dimensionless argument), min, max (2 arguments),
  where(cond, a, b). Nothing else is callable.
- A float32 column compared with a constant is compared at float32 precision, so a value
  stored as 0.7 satisfies ``E >= 0.7 MeV`` and not ``E < 0.7 MeV``. NaN compares False
  (``!=`` gives True, so that ``not (a == b)`` equals ``a != b``).
- Limits: 10,000 characters, 100 nesting levels. Errors are ``SelectionError`` with the
  position of the problem.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from jaas.engine.lang._lexer import MAX_LENGTH
from jaas.engine.lang._parser import MAX_NESTING, UNITS, Context, Ty, dim_name, parse_text
from jaas.engine.lang._tree import (
    FUNCTIONS,
    Col,
    Node,
    Truth,
    columns_of,
    evaluate,
    to_text,
    tree_size,
)
from jaas.errors import SelectionError

__all__ = [
    "FUNCTIONS",
    "MAX_LENGTH",
    "MAX_NESTING",
    "MAX_NODES",
    "UNITS",
    "Expr",
    "parse",
    "parse_condition",
    "schema_units",
]

MAX_NODES = 20_000  # tree size after inlining derived columns (they may be used many times)


@dataclass(frozen=True)
class Expr:
    """A compiled, immutable, hashable and picklable selection expression.

    Two expressions are equal when their trees are (the original ``text`` is kept for
    provenance but not compared). ``str(expr)`` is the canonical text, which re-parses
    (with the same column units, no derived columns needed) to an equal ``Expr``.

    Attributes:
        text: the text as written (derived columns not expanded).
        columns: index columns it reads, derived columns expanded.
        dimension: "bool" for a condition; "energy", "length", "time", a compound such
            as "length**2", or None for a dimensionless number.
    """

    text: str = field(compare=False)
    columns: frozenset[str]
    dimension: str | None
    node: Node = field(repr=False)

    @property
    def required_columns(self) -> frozenset[str]:
        """Same as ``columns``."""
        return self.columns

    @property
    def is_condition(self) -> bool:
        """True for a condition (a selection), False for a number."""
        return self.dimension == "bool"

    def evaluate(self, cols: Mapping[str, Any]) -> np.ndarray:
        """Evaluate over equal-length 1-d arrays, vectorised with numpy.

        Args:
            cols: column name -> array (numpy, or anything ``np.asarray`` accepts).
                Extra columns are ignored.

        Returns:
            A bool array for a condition, else a numeric array; a constant result is
            broadcast to the column length (a 0-d array if ``cols`` is empty).

        Example:
            >>> sel = parse_condition("E > 1 MeV", {"E": "MeV"})
            >>> sel.evaluate({"E": np.array([0.5, 2.0])}).tolist()
            [False, True]
        """
        shapes = {name: np.shape(cols[name]) for name in self.columns if name in cols}
        lengths = {name: shape[0] for name, shape in shapes.items() if len(shape) == 1}
        if len(set(lengths.values())) > 1:
            raise SelectionError(f"columns of {self.text!r} differ in length: {lengths}")
        try:
            result = np.asarray(evaluate(self.node, cols))
        except RecursionError:
            raise SelectionError(f"expression {self.text!r} is nested too deeply") from None
        if lengths:
            n = next(iter(lengths.values()))
        elif cols and np.ndim(first := next(iter(cols.values()))) == 1:
            n = len(first)
        else:
            return result
        if result.ndim == 0:
            result = np.full(n, result, dtype=result.dtype)
        return result

    def __str__(self) -> str:
        return to_text(self.node)


def parse(
    text: str,
    units: Mapping[str, str | None],
    derived: Mapping[str, str] | None = None,
) -> Expr:
    """Parse and dimension-check ``text``.

    Args:
        text: the expression, e.g. ``"sqrt(x**2 + y**2)"`` or ``"E > 1 MeV and not muon"``.
        units: column name -> unit ("MeV", "m", "ns", ...; None for unitless; "bool" for
            condition columns); see ``schema_units``.
        derived: derived column name -> expression text; may use other derived columns.

    Returns:
        The compiled ``Expr``.

    Raises:
        SelectionError: syntax, unknown name, dimension mismatch, limits; with position.

    Example:
        >>> e = parse("sqrt(x**2 + y**2) / 1 m", {"x": "m", "y": "m"})
        >>> e.columns == {"x", "y"}, e.dimension
        (True, None)
    """
    if not isinstance(text, str):
        raise SelectionError(f"a selection must be text, got {type(text).__name__}")
    derived = dict(derived or {})
    clash = sorted(set(derived) & set(units))
    if clash:
        raise SelectionError(f"derived columns {clash} have the names of index columns")
    typed = parse_text(text, Context(units, derived))
    size = tree_size(typed.node)
    if size > MAX_NODES:
        raise SelectionError(
            f"selection is too large: {size} operations after expanding derived columns "
            f"(limit {MAX_NODES})"
        )
    return _make(text, typed.node, typed.ty)


def parse_condition(
    text: str,
    units: Mapping[str, str | None],
    derived: Mapping[str, str] | None = None,
) -> Expr:
    """Like ``parse``, but the result must be a condition (a unitless column means != 0).

    Example:
        >>> parse_condition("muon and not wp", {"muon": "bool", "wp": "bool"}).dimension
        'bool'
    """
    e = parse(text, units, derived)
    if e.dimension == "bool":
        return e
    if e.dimension is None and isinstance(e.node, Col):  # a flag column: true if non-zero
        return _make(text, Truth(e.node), Ty("bool"))
    what = "a number" if e.dimension is None else _article(e.dimension)
    raise SelectionError(f"selection must be a condition, got {what}", text=text, position=0)


def _article(dimension: str) -> str:
    return ("an " if dimension[0] in "aeiou" else "a ") + dimension


def _make(text: str, node: Node, ty: Ty) -> Expr:
    dimension = "bool" if ty.kind == "bool" else dim_name(ty.dim)
    return Expr(text=text, columns=columns_of(node), dimension=dimension, node=node)


def schema_units(schema: pa.Schema) -> dict[str, str | None]:
    """Column units of an Arrow schema for ``parse``: field metadata ``unit``, "bool" for
    boolean fields, None otherwise.

    Example:
        >>> from jaas.formats.schema import INDEX_SCHEMA
        >>> u = schema_units(INDEX_SCHEMA)
        >>> u["E"], u["muon"], u["cls"]
        ('MeV', 'bool', None)
    """
    out: dict[str, str | None] = {}
    for f in schema:
        meta = f.metadata or {}
        unit = meta.get(b"unit")
        if unit is not None:
            out[f.name] = unit.decode()
        elif pa.types.is_boolean(f.type):
            out[f.name] = "bool"
        else:
            out[f.name] = None
    return out
