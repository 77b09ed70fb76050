"""Pratt parser and dimension checker of the selection language.

Hand-written (no ``eval``, ``compile`` or ``ast`` on user text): the grammar is ours, so
Python's attribute access, subscripts, strings and calls to arbitrary names simply do not
exist; every error names its character position; numbers carry units. A Pratt parser
keeps the Python stack shallow (a few frames per nesting level), and the nesting limit
is checked before the stack can overflow.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from difflib import get_close_matches
from fractions import Fraction
from typing import Literal, NoReturn

from jaas import units as _units
from jaas.engine.lang._lexer import Token, tokenize
from jaas.engine.lang._tree import (
    FUNCTIONS,
    Arith,
    Bool,
    BoolOp,
    Call,
    Cmp,
    Col,
    Neg,
    Node,
    Not,
    Num,
    Pow,
    Truth,
    columns_of,
    evaluate,
    to_text,
)
from jaas.errors import SelectionError

__all__ = ["MAX_NESTING", "UNITS", "Context", "Ty", "Typed", "dim_name", "parse_text"]

MAX_NESTING = 100  # parentheses, calls, unary operators and powers inside one another

Dim = tuple[tuple[str, Fraction], ...]  # sorted (base dimension, exponent), no zero exponents

# unit name -> (base dimension, factor to the internal unit); internal: MeV, m, ns.
UNITS: dict[str, tuple[str, Fraction]] = {
    **{u: ("energy", Fraction(repr(f))) for u, f in _units.ENERGY_UNITS.items()},
    **{u: ("length", Fraction(repr(f))) for u, f in _units.LENGTH_UNITS.items()},
    **{u: ("time", Fraction(repr(f))) for u, f in _units.TIME_UNITS.items()},
}
_INTERNAL = {"energy": "MeV", "length": "m", "time": "ns"}
_BOOL_WORDS = {"true": True, "True": True, "false": False, "False": False}
_INT64_MAX = 2**63 - 1

# token text -> (binding power, family); families are parsed as n-ary chains.
_INFIX: dict[str, tuple[int, str]] = {
    "or": (1, "or"),
    "and": (2, "and"),
    **dict.fromkeys(("<", "<=", ">", ">=", "==", "!="), (4, "cmp")),
    "+": (5, "add"),
    "-": (5, "add"),
    "*": (6, "mul"),
    "/": (6, "mul"),
    "**": (8, "pow"),
}
_NOT_BP = 3  # `not a < b` is `not (a < b)`
_UNARY_BP = 7  # `-x ** 2` is `-(x ** 2)`, as in Python


@dataclass(frozen=True, slots=True)
class Ty:
    """Type of a subexpression: a condition, or a number with a dimension.

    ``bare`` marks numbers written without a unit: they take the dimension of what they
    are added to or compared with.
    """

    kind: Literal["num", "bool"]
    dim: Dim = ()
    bare: bool = False


@dataclass(frozen=True, slots=True)
class Typed:
    node: Node
    ty: Ty
    pos: int


@dataclass
class Context:
    """What names mean: column units, derived columns, and derived columns being expanded."""

    units: Mapping[str, str | None]
    derived: Mapping[str, str]
    done: dict[str, Typed] = field(default_factory=dict)
    expanding: list[str] = field(default_factory=list)


def dim_name(dim: Dim) -> str | None:
    """``()`` -> None, ``(("energy", 1),)`` -> "energy", else e.g. "length**2"."""
    if not dim:
        return None
    parts = []
    for base, e in dim:
        parts.append(base if e == 1 else f"{base}**{e}")
    return "*".join(parts)


def _dim_combine(a: Dim, b: Dim, sign: int) -> Dim:
    out = dict(a)
    for base, e in b:
        out[base] = out.get(base, Fraction(0)) + sign * e
    return tuple(sorted((k, v) for k, v in out.items() if v != 0))


def _describe(t: Typed) -> str:
    snippet = to_text(t.node)
    if len(snippet) > 40:
        snippet = snippet[:37] + "..."
    if t.ty.kind == "bool":
        what = "condition"
    else:
        what = "number" if t.ty.bare else (dim_name(t.ty.dim) or "dimensionless number")
    return f"{what} {snippet!r}"


def parse_text(text: str, ctx: Context, *, label: str = "", nesting: int = 0) -> Typed:
    """Parse one expression ``text`` into a typed tree (derived columns inlined)."""
    try:
        return _Parser(text, ctx, label, nesting).parse()
    except RecursionError:  # belt and braces: the nesting limit should come first
        raise SelectionError(
            f"{label}expression is nested too deeply", text=text, position=0
        ) from None


class _Parser:
    def __init__(self, text: str, ctx: Context, label: str, nesting: int) -> None:
        self.text = text
        self.ctx = ctx
        self.label = label
        self.nesting = nesting
        try:
            self.tokens = tokenize(text)
        except SelectionError as e:
            if not label:
                raise
            raise SelectionError(label + e.reason, text=e.text, position=e.position) from None
        self.i = 0

    # -- helpers ---------------------------------------------------------------------
    def fail(self, message: str, pos: int) -> NoReturn:
        raise SelectionError(self.label + message, text=self.text, position=pos)

    def peek(self) -> Token:
        return self.tokens[self.i]

    def advance(self) -> Token:
        tok = self.tokens[self.i]
        if tok.kind != "eof":
            self.i += 1
        return tok

    def nest(self, pos: int, delta: int) -> None:
        self.nesting += delta
        if self.nesting > MAX_NESTING:
            self.fail(f"expression is nested too deeply (limit {MAX_NESTING} levels)", pos)

    @staticmethod
    def infix(tok: Token) -> tuple[int, str] | None:
        if tok.kind == "op" or (tok.kind == "ident" and tok.text in ("and", "or")):
            return _INFIX.get(tok.text)
        return None

    # -- grammar ---------------------------------------------------------------------
    def parse(self) -> Typed:
        if self.peek().kind == "eof":
            self.fail("empty selection", 0)
        result = self.expr(0)
        tok = self.peek()
        if tok.kind != "eof":
            if tok.text == ")":
                self.fail("unbalanced parentheses: this ')' has no matching '('", tok.pos)
            self.fail(f"unexpected {tok.text!r} after a complete expression", tok.pos)
        return result

    def expr(self, min_bp: int) -> Typed:
        left = self.prefix()
        while (info := self.infix(self.peek())) is not None and info[0] > min_bp:
            bp, family = info
            if family == "pow":
                op = self.advance()
                self.nest(op.pos, +1)
                left = self.power(left, self.expr(bp - 1), op)
                self.nest(op.pos, -1)
                continue
            operands, ops = [left], []
            while (more := self.infix(self.peek())) is not None and more[1] == family:
                ops.append(self.advance())
                operands.append(self.expr(bp))
            left = self.chain(family, ops, operands)
        return left

    def prefix(self) -> Typed:
        tok = self.advance()
        if tok.kind == "num":
            return self.number(tok)
        if tok.kind == "ident":
            name = tok.text
            if name == "not":
                self.nest(tok.pos, +1)
                operand = self.expr(_NOT_BP)
                self.nest(tok.pos, -1)
                return Typed(Not(self.condition(operand, "'not'")), Ty("bool"), tok.pos)
            if name in _BOOL_WORDS:
                return Typed(Bool(_BOOL_WORDS[name]), Ty("bool"), tok.pos)
            if name in ("and", "or"):
                self.fail(f"expected a value before {name!r}", tok.pos)
            if self.peek().text == "(" and self.peek().kind == "op":
                return self.call(tok)
            return self.name(tok)
        if tok.text in ("-", "+"):
            self.nest(tok.pos, +1)
            operand = self.expr(_UNARY_BP)
            self.nest(tok.pos, -1)
            self.need_number(operand, f"unary {tok.text!r}", tok.pos)
            if tok.text == "+":
                return Typed(operand.node, operand.ty, tok.pos)
            return Typed(Neg(operand.node), operand.ty, tok.pos)
        if tok.text == "(":
            self.nest(tok.pos, +1)
            inner = self.expr(0)
            self.close(tok, "'('")
            self.nest(tok.pos, -1)
            return Typed(inner.node, inner.ty, tok.pos)
        if tok.text == ")":
            self.fail("unbalanced parentheses: this ')' has no matching '('", tok.pos)
        if tok.kind == "eof":
            self.fail("expected a value, got the end of the selection", tok.pos)
        self.fail(f"expected a value, got {tok.text!r}", tok.pos)

    def close(self, opening: Token, what: str) -> None:
        tok = self.advance()
        if tok.text == ")" and tok.kind == "op":
            return
        if tok.kind == "eof":
            self.fail(f"unbalanced parentheses: {what} is never closed", opening.pos)
        self.fail(
            f"expected ')' to close {what} at position {opening.pos}, got {tok.text!r}", tok.pos
        )

    def number(self, tok: Token) -> Typed:
        text = tok.text
        mantissa, _, _ = text.lower().partition("e")
        is_int = text.isdigit()
        unit_tok = self.peek() if self.peek().kind == "ident" else None
        if unit_tok is not None and unit_tok.text not in ("and", "or", "not"):
            if unit_tok.text not in UNITS:
                if unit_tok.text in self.ctx.units or unit_tok.text in self.ctx.derived:
                    self.fail(
                        f"missing operator between {text!r} and {unit_tok.text!r}", unit_tok.pos
                    )
                known = " ".join([*UNITS, "µs"])
                self.fail(f"unknown unit {unit_tok.text!r} (units: {known})", unit_tok.pos)
            self.advance()
        else:
            unit_tok = None
        if is_int and len(text.lstrip("0")) > 19:
            self.fail(f"integer {text} does not fit in 64 bits; write it as a float", tok.pos)
        as_float = float(text)
        if math.isinf(as_float) or (as_float == 0.0 and mantissa.strip("0.")):
            self.fail(f"number {text} is out of range of 64-bit floats", tok.pos)
        exact = Fraction(text) if len(text) <= 100 else Fraction(as_float)
        if unit_tok is None:
            if is_int:
                if exact > _INT64_MAX:
                    self.fail(
                        f"integer {text} does not fit in 64 bits; write it as a float", tok.pos
                    )
                return Typed(Num(int(exact)), Ty("num", bare=True), tok.pos)
            return Typed(Num(as_float), Ty("num", bare=True), tok.pos)
        base, factor = UNITS[unit_tok.text]
        power = self.unit_power()
        exact *= factor**power
        value: int | float
        if exact.denominator == 1 and exact <= _INT64_MAX:
            value = int(exact)
        else:
            value = float(exact) if exact < 2**1023 else math.inf
            if math.isinf(value):
                self.fail(
                    f"number {text} {unit_tok.text} is out of range of 64-bit floats", tok.pos
                )
        unit = _INTERNAL[base] + ("" if power == 1 else f"**{power}")
        return Typed(Num(value, unit), Ty("num", ((base, Fraction(power)),)), tok.pos)

    def unit_power(self) -> int:
        """``m**2`` right after a number is a unit squared: ``4 m**2`` is 4 square metres."""
        toks = self.tokens[self.i : self.i + 3]
        if len(toks) < 2 or toks[0].text != "**" or toks[0].kind != "op":
            return 1
        sign = -1 if toks[1].text == "-" and toks[1].kind == "op" else 1
        digits = toks[2] if sign == -1 and len(toks) == 3 else toks[1]
        if digits.kind != "num" or not digits.text.isdigit():
            return 1
        if len(digits.text.lstrip("0")) != 1:  # 1 to 9
            self.fail("a unit power must be an integer from -9 to 9", digits.pos)
        self.i += 3 if sign == -1 else 2
        return sign * int(digits.text)

    def name(self, tok: Token) -> Typed:
        name = tok.text
        if name in self.ctx.derived:
            return self.derived(tok)
        if name not in self.ctx.units:
            self.fail(self.unknown_name(name), tok.pos)
        unit = self.ctx.units[name]
        if unit == "bool":
            return Typed(Col(name), Ty("bool"), tok.pos)
        if unit is None:
            return Typed(Col(name), Ty("num"), tok.pos)
        if unit in UNITS:
            base, factor = UNITS[unit]
            return Typed(Col(name, float(factor)), Ty("num", ((base, Fraction(1)),)), tok.pos)
        return Typed(Col(name), Ty("num", ((unit, Fraction(1)),)), tok.pos)  # e.g. "PE"

    def unknown_name(self, name: str) -> str:
        names = sorted({*self.ctx.units, *self.ctx.derived})
        key = name.lower()
        lower = {n.lower(): n for n in names}
        # a name that starts with a column ("Energy" -> "E"), longest first, then look-alikes
        hints = sorted((n for n in names if key.startswith(n.lower())), key=len, reverse=True)
        close = get_close_matches(key, list(lower), n=3, cutoff=0.6)
        hints += [lower[m] for m in close if lower[m] not in hints]
        message = f"unknown column {name!r}"
        if hints:
            message += "; did you mean " + " or ".join(repr(h) for h in hints[:3]) + "?"
        elif name in UNITS:
            message += f"; a unit follows a number, e.g. '1 {name}'"
        return message

    def derived(self, tok: Token) -> Typed:
        name = tok.text
        if name in self.ctx.done:
            t = self.ctx.done[name]
            return Typed(t.node, t.ty, tok.pos)
        if name in self.ctx.expanding:
            cycle = " -> ".join([*self.ctx.expanding[self.ctx.expanding.index(name) :], name])
            self.fail(f"derived columns refer to each other in a cycle: {cycle}", tok.pos)
        source = self.ctx.derived[name]
        if not isinstance(source, str):
            self.fail(f"derived column {name!r} must be given as text", tok.pos)
        self.ctx.expanding.append(name)
        label = f"in derived column {name!r}: "
        t = parse_text(source, self.ctx, label=label, nesting=self.nesting)
        self.ctx.expanding.pop()
        self.ctx.done[name] = t
        return Typed(t.node, t.ty, tok.pos)

    def call(self, tok: Token) -> Typed:
        name = tok.text
        if name not in FUNCTIONS:
            allowed = ", ".join(sorted(FUNCTIONS))
            what = "a column, not a function" if name in self.ctx.units else "not a known function"
            self.fail(f"{name!r} is {what}; allowed functions: {allowed}", tok.pos)
        opening = self.advance()
        self.nest(opening.pos, +1)
        args: list[Typed] = []
        if self.peek().text != ")":
            args.append(self.expr(0))
            while self.peek().text == ",":
                self.advance()
                args.append(self.expr(0))
        self.close(opening, f"the '(' of {name}()")
        self.nest(opening.pos, -1)
        arity = FUNCTIONS[name][0]
        if len(args) != arity:
            self.fail(f"{name}() takes {arity} argument(s), got {len(args)}", tok.pos)
        ty = self.call_type(name, args, tok)
        node = Call(name, tuple(a.node for a in args))
        if name == "where":
            node = Call(name, (self.condition(args[0], "where()"), args[1].node, args[2].node))
        return Typed(node, ty, tok.pos)

    def call_type(self, name: str, args: list[Typed], tok: Token) -> Ty:
        if name == "where":
            a, b = args[1], args[2]
            if a.ty.kind == b.ty.kind == "bool":
                return Ty("bool")
            return self.unify(a, b, "choose between", tok.pos)
        for a in args:
            self.need_number(a, f"{name}()", a.pos)
        if name in ("min", "max"):
            return self.unify(args[0], args[1], "take the " + name + " of", tok.pos)
        ty = args[0].ty
        if name == "sqrt":
            return Ty("num", tuple((b, e / 2) for b, e in ty.dim), ty.bare)
        if name in ("exp", "log", "log10") and ty.dim:
            unit = _INTERNAL.get(ty.dim[0][0], "1") if len(ty.dim) == 1 else "1"
            self.fail(
                f"{name}() needs a dimensionless argument, got {_describe(args[0])}; "
                f"divide by a unit, e.g. {name}({to_text(args[0].node)} / 1 {unit})",
                args[0].pos,
            )
        return ty

    # -- typing ----------------------------------------------------------------------
    def need_number(self, t: Typed, what: str, pos: int) -> None:
        if t.ty.kind != "num":
            self.fail(f"{what} needs a number, got {_describe(t)}", pos)

    def condition(self, t: Typed, what: str) -> Node:
        """The node of ``t`` as a condition; a unitless column is a flag (true if non-zero)."""
        if t.ty.kind == "bool":
            return t.node
        if isinstance(t.node, Col) and not t.ty.dim and not t.ty.bare:
            return Truth(t.node)
        self.fail(f"{what} needs a condition, got {_describe(t)}", t.pos)

    def unify(self, a: Typed, b: Typed, verb: str, pos: int) -> Ty:
        if a.ty.kind != "num" or b.ty.kind != "num":
            self.fail(f"cannot {verb} {_describe(a)} and {_describe(b)}", pos)
        if a.ty.bare:
            return b.ty
        if b.ty.bare or a.ty.dim == b.ty.dim:
            return a.ty
        self.fail(f"cannot {verb} {_describe(a)} and {_describe(b)}", pos)

    def power(self, base: Typed, exponent: Typed, op: Token) -> Typed:
        self.need_number(base, "'**'", op.pos)
        self.need_number(exponent, "'**'", op.pos)
        if exponent.ty.dim:
            self.fail(f"an exponent must be dimensionless, got {_describe(exponent)}", exponent.pos)
        dim = base.ty.dim
        if dim:
            if columns_of(exponent.node):
                self.fail(f"a {dim_name(dim)} can only be raised to a constant power", exponent.pos)
            value = float(evaluate(exponent.node, {}))
            if not math.isfinite(value):
                self.fail("the exponent is not a finite number", exponent.pos)
            e = Fraction(value).limit_denominator(1000)
            dim = tuple((b, x * e) for b, x in dim if x * e != 0)
        out = Typed(Pow(base.node, exponent.node), Ty("num", dim, base.ty.bare), base.pos)
        self.need_finite(out)
        return out

    def chain(self, family: str, ops: list[Token], operands: list[Typed]) -> Typed:
        pos = operands[0].pos
        texts = tuple(op.text for op in ops)
        if family in ("and", "or"):
            nodes = tuple(self.condition(t, f"{family!r}") for t in operands)
            return Typed(BoolOp(family, nodes), Ty("bool"), pos)
        if family == "cmp":
            return self.compare(ops, operands)
        for op, t in zip([ops[0], *ops], operands, strict=True):
            self.need_number(t, f"{op.text!r}", op.pos)
        ty = operands[0].ty
        if family == "add":
            verb = {"+": "add", "-": "subtract"}
            for op, t in zip(ops, operands[1:], strict=True):
                ty = self.unify(Typed(operands[0].node, ty, pos), t, verb[op.text], op.pos)
        else:
            dim: Dim = ()
            signs = [1] + [1 if o.text == "*" else -1 for o in ops]
            for sign, t in zip(signs, operands, strict=True):
                dim = _dim_combine(dim, t.ty.dim, sign)
            ty = Ty("num", dim, all(t.ty.bare for t in operands))
        out = Typed(Arith(texts, tuple(t.node for t in operands)), ty, pos)
        if not columns_of(out.node):  # a constant: folded by the reader, so must be finite
            for op, t in zip(ops, operands[1:], strict=True):
                if op.text == "/" and self.constant(t) == 0:
                    self.fail("division by zero", op.pos)
            self.need_finite(out)
        return out

    @staticmethod
    def constant(t: Typed) -> float:
        """The value of a constant operand (no columns)."""
        import numpy as np

        with np.errstate(all="ignore"):
            return float(np.asarray(evaluate(t.node, {})).reshape(-1)[0])

    def need_finite(self, t: Typed) -> None:
        """A constant sub-expression must be a finite number (no overflow, no NaN)."""
        if not columns_of(t.node) and not math.isfinite(self.constant(t)):
            self.fail("this constant is not a finite number", t.pos)

    def compare(self, ops: list[Token], operands: list[Typed]) -> Typed:
        any_bool = any(t.ty.kind == "bool" for t in operands)
        nodes = []
        for t in operands:
            if any_bool and t.ty.kind != "bool":  # `muon == true` with a unitless flag
                node = self.condition(t, "comparing with a condition")
                t = Typed(node, Ty("bool"), t.pos)
            nodes.append(t)
        for op, a, b in zip(ops, nodes, nodes[1:], strict=False):
            if a.ty.kind == "bool":
                if op.text not in ("==", "!="):
                    self.fail(f"{op.text!r} cannot order conditions; use == or !=", op.pos)
            else:
                self.unify(a, b, "compare", op.pos)
        node = Cmp(tuple(o.text for o in ops), tuple(t.node for t in nodes))
        return Typed(node, Ty("bool"), operands[0].pos)
