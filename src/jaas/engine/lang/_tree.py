"""Expression tree of the selection language: immutable nodes, canonical text, numpy evaluation.

Nodes are frozen dataclasses holding only values in internal units (MeV, m, ns), so a tree
is hashable, picklable and compares equal to the tree of its canonical text. Chains of
``+ -``, ``* /``, comparisons, ``and`` and ``or`` are n-ary nodes, so a long flat
expression stays a shallow tree.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeAlias

import numpy as np

from jaas.errors import SelectionError

__all__ = [
    "FUNCTIONS",
    "Arith",
    "Bool",
    "BoolOp",
    "Call",
    "Cmp",
    "Col",
    "Neg",
    "Node",
    "Not",
    "Num",
    "Pow",
    "Truth",
    "columns_of",
    "evaluate",
    "to_text",
    "tree_size",
]


@dataclass(frozen=True, slots=True)
class Num:
    """A number in internal units; ``unit`` is the internal unit name, None if bare."""

    value: int | float
    unit: str | None = None


@dataclass(frozen=True, slots=True)
class Bool:
    value: bool


@dataclass(frozen=True, slots=True)
class Col:
    """An index column; its values are multiplied by ``scale`` to reach internal units."""

    name: str
    scale: float = 1.0


@dataclass(frozen=True, slots=True)
class _Unary:
    operand: Node


@dataclass(frozen=True, slots=True)
class Neg(_Unary):
    """``-operand``."""


@dataclass(frozen=True, slots=True)
class Not(_Unary):
    """``not operand``."""


@dataclass(frozen=True, slots=True)
class Truth(_Unary):
    """A numeric flag column used as a condition: true where non-zero."""


@dataclass(frozen=True, slots=True)
class _Chain:
    ops: tuple[str, ...]
    operands: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Arith(_Chain):
    """``a op b op c ...`` left to right, ops all from ``+ -`` or all from ``* /``."""


@dataclass(frozen=True, slots=True)
class Pow:
    base: Node
    exponent: Node


@dataclass(frozen=True, slots=True)
class Cmp(_Chain):
    """Chained comparison ``a < b <= c``: ``a < b and b <= c``."""


@dataclass(frozen=True, slots=True)
class BoolOp:
    op: str  # "and" | "or"
    operands: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Call:
    func: str
    args: tuple[Node, ...]


Node: TypeAlias = Num | Bool | Col | Neg | Not | Truth | Arith | Pow | Cmp | BoolOp | Call

# The whole function whitelist: name -> (number of arguments, numpy implementation).
FUNCTIONS: dict[str, tuple[int, Callable[..., Any]]] = {
    "abs": (1, np.abs),
    "sqrt": (1, np.sqrt),
    "exp": (1, np.exp),
    "log": (1, np.log),
    "log10": (1, np.log10),
    "min": (2, np.minimum),
    "max": (2, np.maximum),
    "where": (3, np.where),
}

_ATOMS = (Num, Bool, Col, Call)


def to_text(node: Node) -> str:
    """Canonical text of ``node``: every compound operand in parentheses; re-parsable."""
    if isinstance(node, Truth):
        return to_text(node.operand)
    if isinstance(node, Num):
        return _num_text(node.value) + ("" if node.unit is None else f" {node.unit}")
    if isinstance(node, Bool):
        return "true" if node.value else "false"
    if isinstance(node, Col):
        return node.name
    if isinstance(node, Call):
        return f"{node.func}({', '.join(to_text(a) for a in node.args)})"
    if isinstance(node, Neg):
        return f"-{_operand(node.operand)}"
    if isinstance(node, Not):
        return f"not {_operand(node.operand)}"
    if isinstance(node, Pow):
        base = _operand(node.base)
        if isinstance(node.base, Num) and node.base.unit is not None:
            base = f"({base})"  # "4 m ** 2" would read as 4 square metres
        return f"{base} ** {_operand(node.exponent)}"
    if isinstance(node, BoolOp):
        return f" {node.op} ".join(_operand(x) for x in node.operands)
    parts = [_operand(node.operands[0])]
    for op, x in zip(node.ops, node.operands[1:], strict=True):
        parts.append(f" {op} {_operand(x)}")
    return "".join(parts)


def _num_text(value: int | float) -> str:
    return str(value) if isinstance(value, int) else repr(float(value))


def _operand(node: Node) -> str:
    while isinstance(node, Truth):
        node = node.operand
    text = to_text(node)
    return text if isinstance(node, _ATOMS) else f"({text})"


def columns_of(node: Node) -> frozenset[str]:
    """Names of the columns ``node`` reads."""
    found: set[str] = set()
    seen: set[int] = set()
    stack: list[Node] = [node]
    while stack:
        n = stack.pop()
        if id(n) in seen:
            continue
        seen.add(id(n))
        if isinstance(n, Col):
            found.add(n.name)
        stack.extend(_children(n))
    return frozenset(found)


def tree_size(node: Node) -> int:
    """Number of nodes with shared subtrees (derived columns) counted at every use."""
    sizes: dict[int, int] = {}
    stack: list[tuple[Node, bool]] = [(node, False)]
    while stack:
        n, children_done = stack.pop()
        if id(n) in sizes:
            continue
        kids = _children(n)
        if children_done:
            sizes[id(n)] = 1 + sum(sizes[id(k)] for k in kids)
        else:
            stack.append((n, True))
            stack.extend((k, False) for k in kids)
    return sizes[id(node)]


def _shared_ids(root: Node) -> set[int]:
    seen: set[int] = set()
    shared: set[int] = set()
    stack = [root]
    while stack:
        n = stack.pop()
        if id(n) in seen:
            shared.add(id(n))
            continue
        seen.add(id(n))
        stack.extend(_children(n))
    return shared


def _children(n: Node) -> tuple[Node, ...]:
    if isinstance(n, Neg | Not | Truth):
        return (n.operand,)
    if isinstance(n, Pow):
        return (n.base, n.exponent)
    if isinstance(n, Arith | Cmp | BoolOp):
        return n.operands
    if isinstance(n, Call):
        return n.args
    return ()


Value: TypeAlias = Any  # np.ndarray or numpy scalar


def evaluate(node: Node, cols: Mapping[str, Any]) -> Value:
    """Evaluate ``node`` over the arrays of ``cols`` (numpy, vectorised; scalars stay scalar).

    Integers are 64-bit (``+ - *`` keep integer type, like numpy); ``/``, ``**`` and the
    functions give float64. Invalid operations (``sqrt(-1)``, ``1/0``) give NaN or inf,
    and NaN compares False except with ``!=``.
    """
    with np.errstate(all="ignore"):
        return _Evaluator(cols, node).run(node)


class _Evaluator:
    def __init__(self, cols: Mapping[str, Any], root: Node) -> None:
        self.cols = cols
        # Derived columns appear as shared subtrees: compute them once. Other results are
        # not kept, so that numpy can reuse their memory at once.
        self.shared = _shared_ids(root)
        self.memo: dict[int, Value] = {}

    def run(self, node: Node) -> Value:
        key = id(node)
        if key not in self.shared:
            return self._eval(node)
        if key not in self.memo:
            self.memo[key] = self._eval(node)
        return self.memo[key]

    def owned(self, node: Node) -> bool:
        """Whether the value of ``node`` is a fresh array nobody else holds."""
        return not isinstance(node, Col | Truth | Num | Bool) and id(node) not in self.shared

    def _eval(self, node: Node) -> Value:
        if isinstance(node, Num):
            return np.int64(node.value) if isinstance(node.value, int) else np.float64(node.value)
        if isinstance(node, Bool):
            return np.bool_(node.value)
        if isinstance(node, Col):
            return self._column(node)
        if isinstance(node, Neg):
            return np.negative(self.run(node.operand))
        if isinstance(node, Not):
            return np.logical_not(self.run(node.operand))
        if isinstance(node, Truth):
            v = self.run(node.operand)
            return v if np.asarray(v).dtype == np.bool_ else np.not_equal(v, 0)
        if isinstance(node, Pow):
            value = self.run(node.base)
            base = np.asarray(value, dtype=np.float64)
            exponent = np.asarray(self.run(node.exponent), dtype=np.float64)
            out = base if base is not value and base.ndim else None  # a copy: reuse it
            if exponent.ndim == 0 and exponent == 2:  # x**2 is common and np.power is slow
                return np.square(base, out=out)
            return np.power(base, exponent, out=out if exponent.ndim == 0 else None)
        if isinstance(node, Arith):
            acc = self.run(node.operands[0])
            for i, (op, x) in enumerate(zip(node.ops, node.operands[1:], strict=True)):
                y = self.run(x)
                # acc is our own temporary after the first step: update it in place
                own = (i > 0 or self.owned(node.operands[0])) and isinstance(acc, np.ndarray)
                own = own and acc.ndim == 1
                if own and np.ndim(y) <= 1 and np.result_type(acc, y) == acc.dtype:
                    acc = _ARITH[op](acc, y, out=acc)
                else:
                    acc = _ARITH[op](acc, y)
            return acc
        if isinstance(node, Cmp):
            values = [self.run(x) for x in node.operands]
            result: Value = None
            for op, a, b in zip(node.ops, values, values[1:], strict=False):
                a, b = _same_precision(a, b)
                part = _COMPARE[op](a, b)
                result = part if result is None else np.logical_and(result, part)
            return result
        if isinstance(node, BoolOp):
            combine = np.logical_and if node.op == "and" else np.logical_or
            acc = self.run(node.operands[0])
            for x in node.operands[1:]:
                acc = combine(acc, self.run(x))
            return acc
        args = [self.run(a) for a in node.args]
        if node.func in ("min", "max"):  # compare a float32 column with a constant as float32
            args = list(_same_precision(args[0], args[1]))
        return FUNCTIONS[node.func][1](*args)

    def _column(self, node: Col) -> Value:
        try:
            raw = self.cols[node.name]
        except KeyError:
            have = ", ".join(sorted(self.cols)) or "none"
            raise SelectionError(
                f"column {node.name!r} is not in the data (columns given: {have})"
            ) from None
        a = np.asarray(raw)
        if a.ndim != 1:
            raise SelectionError(f"column {node.name!r} must be 1-dimensional, got shape {a.shape}")
        if a.dtype.kind == "u":  # so that -cls or cls - 2 do not wrap around
            a = a.astype(np.int64)
        elif a.dtype.kind not in "biuf":
            raise SelectionError(f"column {node.name!r} is not numeric (dtype {a.dtype})")
        if node.scale != 1.0:
            a = a * node.scale
        return a


def _same_precision(a: Value, b: Value) -> tuple[Value, Value]:
    """Cast a scalar to the dtype of a float32 array it meets, so ``E < 0.7`` is exact."""
    for x, y in ((a, b), (b, a)):
        low_precision = isinstance(x, np.ndarray) and x.dtype.kind == "f" and x.itemsize < 8
        if low_precision and x.ndim and np.ndim(y) == 0 and np.asarray(y).dtype.kind in "iuf":
            y = x.dtype.type(y)
            return (x, y) if x is a else (y, x)
    return a, b


_ARITH: dict[str, np.ufunc] = {
    "+": np.add,
    "-": np.subtract,
    "*": np.multiply,
    "/": np.true_divide,
}
_COMPARE: dict[str, Callable[[Value, Value], Value]] = {
    "<": np.less,
    "<=": np.less_equal,
    ">": np.greater,
    ">=": np.greater_equal,
    "==": np.equal,
    "!=": np.not_equal,
}
